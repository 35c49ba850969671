from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        # Connects the Stripe webhook receivers to dj-stripe's signals. dj-stripe's own
        # handlers were connected first (its app comes earlier), so ours run after its sync.
        from billing.stripe import handlers  # noqa: F401
