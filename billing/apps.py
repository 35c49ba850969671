from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        import stripe
        from django.conf import settings

        # One API version for every call, ours and dj-stripe's (which reads the setting too).
        stripe.api_version = settings.STRIPE_API_VERSION
        # Connects the Stripe webhook receivers to dj-stripe's signals. dj-stripe's own
        # handlers were connected first (its app comes earlier), so ours run after its sync.
        from billing.stripe import handlers  # noqa: F401
