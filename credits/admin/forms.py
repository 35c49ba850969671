"""The staff action forms: what a grant, refund or adjustment asks for, and the service each
one calls. An action's form carries a submission key (a UUID made when the form is rendered, in
a hidden field); each account's idempotency key is built from it, so submitting the same form
twice writes once."""

from django import forms

from credits.api.fields import AmountFormField
from credits.models import CENT, EntryKind
from credits.services import (
    MAX_AMOUNT,
    credit_staff_adjust,
    credit_staff_grant,
    credit_staff_refund,
)


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


# (title, message on success, form, service) per kind.
STAFF_ACTIONS = {
    EntryKind.GRANT: (
        "Grant credits",
        "Granted {amount} credits to {email}; balance now {balance}.",
        StaffAmountForm,
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
