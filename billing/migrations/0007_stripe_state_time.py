from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0006_customer_summary_permission"),
    ]

    operations = [
        migrations.AddField(
            model_name="userprofile",
            name="stripe_state_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="stripeeventissue",
            name="kind",
            field=models.CharField(
                choices=[
                    ("unknown_price", "Unknown price"),
                    ("unknown_customer", "Unknown customer"),
                    ("malformed_payload", "Malformed payload"),
                    ("amount_mismatch", "Amount mismatch"),
                    ("purchase_not_allowed", "Purchase not allowed for the plan"),
                    ("refund_shortfall", "Refund larger than the credits left"),
                    ("refund_without_purchase", "Refund of no known purchase"),
                    ("period_already_granted", "Period already granted another amount"),
                    ("ledger_refused", "Ledger refused the entry"),
                    ("stale_event", "Older than the state held"),
                    ("dispute_opened", "Payment disputed: credits taken back"),
                    ("checkout_expired", "Checkout expired unpaid"),
                ],
                max_length=32,
            ),
        ),
    ]
