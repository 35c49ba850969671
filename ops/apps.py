from django.apps import AppConfig


class OpsConfig(AppConfig):
    """The top of the stack: what staff run the service with (monitoring, a customer's
    summary), reading every app. No app imports it; only the project's URLs do."""

    name = "ops"
    verbose_name = "Operations"
