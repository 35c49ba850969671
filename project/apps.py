from django.contrib.admin.apps import AdminConfig


class CreditsAdminConfig(AdminConfig):
    """Django's admin with `admin.site` an instance of the project's site (ordering)."""

    default_site = "project.admin_site.CreditsAdminSite"
