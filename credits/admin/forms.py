"""The staff action forms: what a grant, refund or adjustment asks for, and the service each
one calls. An action's form carries a submission key (a UUID made when the form is rendered, in
a hidden field); each account's idempotency key is built from it, so submitting the same form
twice writes once."""

from django import forms
from django.utils import timezone

from credits.api.fields import AmountFormField
from credits.exceptions import CreditError
from credits.models import CENT, EntryKind, LotCategory
from credits.services import (
    MAX_AMOUNT,
    credit_staff_adjust,
    credit_staff_grant,
    credit_staff_refund,
)
from credits.services.entries import STAFF_SOURCE
from credits.services.posting.lots import category_for
from credits.services.staff import check_grant_terms


class StaffAmountForm(forms.Form):
    amount = AmountFormField(
        min_value=CENT,
        max_value=MAX_AMOUNT,
        help_text="Credits for each selected account, at most 2 decimal places.",
    )
    reason = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Recorded on the ledger entry with your name.",
    )
    submission_key = forms.UUIDField(widget=forms.HiddenInput)

    def service_arguments(self) -> dict:
        """Arguments of the service beyond account, amount, key, actor and reason."""
        return {}


class StaffAdjustForm(StaffAmountForm):
    amount = AmountFormField(
        min_value=-MAX_AMOUNT,
        max_value=MAX_AMOUNT,
        help_text="Signed: positive adds credits, negative removes them. At most 2 decimal places.",
    )

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("An adjustment must not be zero.")
        return amount


class StaffGrantForm(StaffAmountForm):
    """A grant, with its lot's optional terms: a category (by default CREDITS_LOT_CATEGORIES'
    for a staff grant) and a future expiry (by default never). The service checks both; the
    form asks it first, so a refusal shows beside the field and nothing is submitted."""

    category = forms.ChoiceField(
        required=False,
        help_text="The lot's category, which orders what is spent first.",
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        default = LotCategory(category_for(EntryKind.GRANT, STAFF_SOURCE)).label.lower()
        self.fields["category"].choices = [("", f"Default ({default})"), *LotCategory.choices]
        self.fields["expires_at"].help_text = (
            f"Optional, in {timezone.get_current_timezone_name()}: what is left of these credits "
            "then expires. Empty: they never expire."
        )

    def clean(self):
        data = super().clean()
        try:
            check_grant_terms(**self.service_arguments())
        except CreditError as error:
            field = "expires_at" if "expires_at" in error.details else "category"
            if field in self.fields and field not in self.errors:
                self.add_error(field, error.message)
        return data

    def service_arguments(self) -> dict:
        data = getattr(self, "cleaned_data", {})
        return {
            "category": data.get("category") or None,
            "expires_at": data.get("expires_at"),
        }

    def describe_terms(self) -> str:
        """The lot's terms as a message says them ("" for the defaults)."""
        terms = self.service_arguments()
        words = []
        if terms["category"]:
            words.append(f"{terms['category']} lot")
        if terms["expires_at"]:
            expires = timezone.localtime(terms["expires_at"]).strftime("%Y-%m-%d %H:%M")
            words.append(f"expires {expires}")
        return ", ".join(words)


# (title, message on success, form, service) per kind.
STAFF_ACTIONS = {
    EntryKind.GRANT: (
        "Grant credits",
        "Granted {amount} credits to {email}; balance now {balance}.",
        StaffGrantForm,
        credit_staff_grant,
    ),
    EntryKind.REFUND: (
        "Refund credits",
        "Refunded {amount} credits of {email}; balance now {balance}.",
        StaffAmountForm,
        credit_staff_refund,
    ),
    EntryKind.ADJUSTMENT: (
        "Adjust balance",
        "Adjusted {email} by {amount} credits; balance now {balance}.",
        StaffAdjustForm,
        credit_staff_adjust,
    ),
}
