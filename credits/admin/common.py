"""What the credit, billing and migration admins share: short list cells, user labels, refusal
messages with their figures, the lists' stylesheet and a read-only base."""

from django.utils.html import format_html
from django.utils.text import Truncator

from core.exceptions import DomainError


def truncated(text: str, length: int = 48):
    """A long text in a list column: cut to `length` characters, the whole text on hover (and
    on the object's own page), so rows stay one line on a laptop screen."""
    if not text:
        return "-"
    return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(length))


def user_label(user) -> str:
    """A user as staff search for them: the email, else the username."""
    if user is None:
        return "-"
    return user.email or user.get_username()


def error_with_figures(error: DomainError) -> str:
    """A refusal's message with the figures it carries (balance, available, what is left), so
    a staff member sees why without opening the ledger. Holds are named (held, available) only
    when they reserve something: otherwise available is the balance, said once."""
    details = dict(error.details)
    if details.get("held") in ("0", "0.00") or details.get("available") == details.get("balance"):
        details.pop("held", None)
        details.pop("available", None)
    figures = [
        f"{label} {details[name]}"
        for name, label in (
            ("balance", "balance"),
            ("held", "held"),
            ("available", "available"),
            ("requested", "asked for"),
            ("amount", "asked for"),
            ("left", "left of your daily limit"),
            ("limit", "limit"),
        )
        if details.get(name) not in (None, "")
    ]
    if not figures:
        return error.message
    return f"{error.message} {'; '.join(figures).capitalize()}."


class CompactListMedia:
    """The lists' stylesheet: one-line rows, long texts cut (whole on hover)."""

    css = {"all": ["admin/credits_lists.css"]}


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
