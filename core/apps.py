from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The bottom of the stack: what every app shares, importing none of them."""

    name = "core"
    verbose_name = "Core"

    def ready(self):
        # audit: the login signals' receivers, connected on import.
        from core import audit, lookups

        lookups.register()
        del audit
