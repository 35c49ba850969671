from rest_framework import serializers

from core.keys import API_CLIENT_KEY_MAX_LENGTH
from credits.api.fields import IdempotencyKeyField, StrictDecimalField
from credits.models import AMOUNT_DIGITS, AMOUNT_PLACES, CreditTransaction

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


class SpendInputSerializer(serializers.Serializer):
    amount = StrictDecimalField()
    idempotency_key = IdempotencyKeyField(max_length=API_CLIENT_KEY_MAX_LENGTH)
    description = serializers.CharField(
        max_length=255, required=False, allow_blank=True, default=""
    )

    def validate_idempotency_key(self, value: str) -> str:
        if not value.isprintable():
            raise serializers.ValidationError("Use printable characters only.")
        return value


class SpendOutputSerializer(serializers.Serializer):
    transaction = EntryOutputSerializer()
    balance = serializers.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)
