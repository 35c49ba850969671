"""The admin's door, logged and guarded.

Every staff login, every failed login and every permission refusal is a line on the
`credits.audit` logger (Django's auth signals, the API's 403s, the 403 page). Repeated failed
logins are locked out by django-axes (AXES_FAILURE_LIMIT, AXES_COOLOFF_MINUTES); its backend is
the first of AUTHENTICATION_BACKENDS. Calls of authenticate() without a request (the test
client's login(), a shell) come from code, not from the login form, and are not counted.

It imports no app, so it lives at the bottom (the API's error handler logs refusals through
it); its receivers are connected when the core app is ready (`core.apps`). The logger keeps
its name, `credits.audit`, which log filters rely on.
"""

import logging

from axes.backends import AxesStandaloneBackend
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

audit = logging.getLogger("credits.audit")


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check for requests; no request, nothing to count or refuse."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def _client_address(request) -> str:
    return request.META.get("REMOTE_ADDR", "") if request is not None else ""


@receiver(user_logged_in, dispatch_uid="credits.audit.login")
def log_login(sender, request, user, **kwargs):
    if user.is_staff:
        audit.info(
            "staff login: user=%s id=%s from=%s",
            user.get_username(),
            user.pk,
            _client_address(request),
        )


@receiver(user_login_failed, dispatch_uid="credits.audit.login_failed")
def log_login_failed(sender, credentials, request=None, **kwargs):
    audit.warning(
        "failed login: username=%r from=%s locked_out=%s",
        str(credentials.get("username", ""))[:150],
        _client_address(request),
        bool(getattr(request, "axes_locked_out", False)),
    )


def log_refusal(request, *, code: str, detail: str = "") -> None:
    user = getattr(request, "user", None)
    audit.warning(
        "permission refused: user=%s id=%s %s %s code=%s %s",
        user.get_username() if user is not None and user.is_authenticated else "anonymous",
        getattr(user, "pk", None),
        request.method,
        request.path,
        code,
        detail,
    )
