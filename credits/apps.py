from django.apps import AppConfig


class CreditsConfig(AppConfig):
    name = "credits"
    verbose_name = "Credits ledger"

    def ready(self):
        from credits import checks  # noqa: F401  (registers the lot settings' checks)
