"""Console email, counted: while `migrate_credits` migrates or rolls back with Django's console
backend (the embedded default), the emails it sends are counted instead of printed, so
thousands of message bodies do not bury its output and progress bar; the command prints one
line per kind of email at the end. Any other backend is left alone and sends as configured.

The emails leave through Django's `get_connection()`, which reads settings.EMAIL_BACKEND at
each send, so for the length of the run the setting names `CountingBackend` and is restored
afterwards. Without a broker the notification tasks run eagerly in the thread that committed
the batch, and on PostgreSQL batches commit on worker threads: the tally takes a lock.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend

CONSOLE_BACKEND = "django.core.mail.backends.console.EmailBackend"
COUNTING_BACKEND = "migrations_app.console_email.CountingBackend"


class EmailTally:
    """How many emails were sent, by the lead of their subject: the text before a colon, since
    what follows it is the user's own figure ("Your credits are ready: you received 5.00")."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_subject: Counter[str] = Counter()

    def add(self, subjects: list[str]) -> None:
        leads = [subject.split(":", 1)[0].strip() for subject in subjects]
        with self.lock:
            self.by_subject.update(leads)

    def counts(self) -> list[tuple[str, int]]:
        """Each kind of email and how many were sent, the most frequent first."""
        with self.lock:
            return self.by_subject.most_common()


class Active:
    """The tally of the run under way (one per process: the command runs one mode)."""

    tally: EmailTally | None = None


class CountingBackend(BaseEmailBackend):
    """Counts the messages it is given and sends none of them."""

    def send_messages(self, email_messages) -> int:
        messages = list(email_messages)
        if Active.tally is not None:
            Active.tally.add([message.subject for message in messages])
        return len(messages)


@contextmanager
def console_email_counted() -> Iterator[EmailTally | None]:
    """With the console backend configured, count the emails sent inside the block and yield
    the tally; with any other backend, yield None and change nothing."""
    configured = settings.EMAIL_BACKEND
    if configured != CONSOLE_BACKEND:
        yield None
        return
    tally = Active.tally = EmailTally()
    settings.EMAIL_BACKEND = COUNTING_BACKEND
    try:
        yield tally
    finally:
        settings.EMAIL_BACKEND = configured
        Active.tally = None
