from django.conf import settings
from rest_framework import serializers

from core.keys import API_CLIENT_KEY_MAX_LENGTH
from credits.api.fields import IdempotencyKeyField, StrictDecimalField, StrictIntegerField
from credits.models import AMOUNT_DIGITS, AMOUNT_PLACES, CreditHold, CreditLot, CreditTransaction

MAX_ID = 2**63 - 1  # a bigint primary key: a larger id names nothing


class EntryOutputSerializer(serializers.ModelSerializer):
    reverses = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = CreditTransaction
        fields = [
            "id",
            "kind",
            "amount",
            "balance_before",
            "balance_after",
            "source",
            "description",
            "reverses",
            "created_at",
        ]
        read_only_fields = fields


def _amount():
    return serializers.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)


def _client_key():
    return IdempotencyKeyField(max_length=API_CLIENT_KEY_MAX_LENGTH)


def _description():
    return serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class SpendInputSerializer(serializers.Serializer):
    amount = StrictDecimalField()
    idempotency_key = _client_key()
    description = _description()

    def validate_idempotency_key(self, value: str) -> str:
        if not value.isprintable():
            raise serializers.ValidationError("Use printable characters only.")
        return value


class SpendOutputSerializer(serializers.Serializer):
    transaction = EntryOutputSerializer()
    balance = _amount()


# --- lots and holds -----------------------------------------------------------------------


class LotOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = CreditLot
        fields = ["id", "category", "amount", "remaining", "priority", "effective_at", "expires_at"]
        read_only_fields = fields


class HoldOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = CreditHold
        fields = [
            "id",
            "amount",
            "captured",
            "status",
            "expires_at",
            "description",
            "created_at",
            "resolved_at",
        ]
        read_only_fields = fields


class HoldInputSerializer(serializers.Serializer):
    amount = StrictDecimalField()
    idempotency_key = _client_key()
    description = _description()

    def get_fields(self):
        # The bound is a setting: read it when the serializer is made (and the schema built),
        # not when this module is imported.
        fields = super().get_fields()
        maximum = settings.CREDITS_HOLD_MAX_TTL
        fields["ttl_seconds"] = StrictIntegerField(
            min_value=1,
            max_value=maximum,
            required=False,
            help_text=(
                f"Seconds until the hold expires (1 to {maximum}); by default "
                f"{settings.CREDITS_HOLD_DEFAULT_TTL}."
            ),
        )
        return fields


class CaptureInputSerializer(serializers.Serializer):
    amount = StrictDecimalField(
        required=False, help_text="At most the hold's amount; by default all of it."
    )
    idempotency_key = _client_key()


class HoldWriteOutputSerializer(serializers.Serializer):
    """A hold and its account's figures after the write (available = balance - held)."""

    hold = HoldOutputSerializer()
    balance = _amount()
    held = _amount()
    available = _amount()


class CaptureOutputSerializer(serializers.Serializer):
    transaction = EntryOutputSerializer(help_text="The spend entry the capture wrote.")
    hold = HoldOutputSerializer()
    balance = _amount()
    held = _amount()
    available = _amount()
