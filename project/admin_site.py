"""The admin site staff use: the credit, billing and migration apps first, dj-stripe last.

It stays the default `admin.site` (installed through `project.apps.CreditsAdminConfig`), so
every app's `admin.register` keeps working. The index shows dj-stripe's ~45 models folded in
one collapsed group (templates/admin/index.html), below the apps staff work in.
"""

from django.contrib import admin

# Apps in the order staff look for them; the rest follow by name.
FIRST_APPS = ("credits", "billing", "migrations_app")
# Apps folded into one collapsed group on the index.
COLLAPSED_APPS = ("djstripe",)


def _rank(app: dict) -> tuple:
    label = app["app_label"]
    if label in FIRST_APPS:
        return (0, FIRST_APPS.index(label), "")
    if label in COLLAPSED_APPS:
        return (2, COLLAPSED_APPS.index(label), "")
    return (1, 0, app["name"].lower())


class CreditsAdminSite(admin.AdminSite):
    # The side bar repeats the index on every page and takes 300 px a laptop's lists need
    # (on a 1366 px screen the ledger's and the migrations' last columns scrolled away).
    enable_nav_sidebar = False

    def get_app_list(self, request, app_label=None):
        return sorted(super().get_app_list(request, app_label), key=_rank)

    def index(self, request, extra_context=None):
        app_list = self.get_app_list(request)
        context = {
            "app_list": [app for app in app_list if app["app_label"] not in COLLAPSED_APPS],
            "collapsed_app_list": [app for app in app_list if app["app_label"] in COLLAPSED_APPS],
            **(extra_context or {}),
        }
        return super().index(request, extra_context=context)
