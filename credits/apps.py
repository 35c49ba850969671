from django.apps import AppConfig


class CreditsConfig(AppConfig):
    name = "credits"
    verbose_name = "Credits ledger"

    def ready(self):
        from project import audit, lookups  # audit: the login signals' receivers

        lookups.register()
        del audit
