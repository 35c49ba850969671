"""Test settings: the project's settings with the test database planned for speed.

dj-stripe's own migrations take over a minute (hundreds of operations, each re-rendering the
model state), so third-party apps' tables are created straight from their models instead. They
are all synced together, because Django syncs unmigrated apps before it migrates any, and
dj-stripe's tables point at auth's. The project's own migrations (constraints, the PostgreSQL
ledger trigger, data migrations) still run for every test database, and tests/test_migrations.py
applies every migration, dj-stripe's included, from zero on PostgreSQL. django-celery-beat is
migrated like the project's apps: a billing data migration creates the monthly grant's schedule
in its tables, and its migrations are few and quick.
"""

import os

# The settings refuse to start without SECRET_KEY when DEBUG is off. The tests sign with a key
# of their own; set in the environment, it is inherited by the subprocesses tests start.
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-" + "x" * 40)

from project.settings import *  # noqa: F403

OWN_APPS = {"credits", "billing", "migrations_app"}
MIGRATED_APPS = OWN_APPS | {"django_celery_beat"}
MIGRATION_MODULES = {
    app.rsplit(".", 1)[-1]: None
    for app in INSTALLED_APPS  # noqa: F405
    if app.rsplit(".", 1)[-1] not in MIGRATED_APPS
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
# Serve static files from the apps' folders; the tests never run collectstatic.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
# High rates, so no test is throttled by accident; tests/test_throttling.py sets a low one.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {
        "spend": "100000/minute",
        "holds": "100000/minute",
        "staff": "100000/minute",
    },
}
