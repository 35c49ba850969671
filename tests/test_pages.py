"""The site's own pages: the landing page, the customer's login and balance page."""

import json
import os
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from credits.models import CreditAccount
from project import urls as project_urls
from project.admin_site import CreditsAdminSite
from tests.factories import CreditPackFactory, ProvisionedUserFactory, SuperAdminFactory
from tests.subprocesses import python

PROJECT_ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"


def test_the_landing_page_links_the_admin_the_api_docs_and_the_balance_page():
    # given
    client = Client()

    # when
    response = client.get("/")

    # then
    assert response.status_code == 200
    html = response.content.decode()
    for url in ("/admin/", "/api/docs/", "/account/credits/"):
        assert f'href="{url}"' in html
    assert 'name="viewport"' in html


def test_the_admin_view_site_link_opens_the_landing_page():
    # given
    client = Client()

    # when
    response = client.get(admin.site.site_url)

    # then
    assert admin.site.site_url == "/"
    assert response.status_code == 200


def test_the_balance_page_sends_an_anonymous_visitor_to_the_login_page():
    # given
    client = Client()

    # when
    response = client.get("/account/credits/")

    # then
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/account/credits/"


def test_a_customer_logs_in_on_the_site_login_page_and_lands_on_the_balance_page():
    # given
    user = ProvisionedUserFactory(is_staff=False)
    client = Client()
    page = client.get("/accounts/login/?next=/account/credits/")
    assert page.status_code == 200
    assert "admin" not in page.templates[0].name

    # when
    response = client.post(
        "/accounts/login/",
        {"username": user.username, "password": PASSWORD, "next": "/account/credits/"},
    )

    # then
    assert response.status_code == 302
    assert response["Location"] == "/account/credits/"


def test_a_wrong_password_stays_on_the_login_page_with_an_error():
    # given
    user = ProvisionedUserFactory(is_staff=False)
    client = Client()

    # when
    response = client.post("/accounts/login/", {"username": user.username, "password": "nope"})

    # then
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_balance_page_names_the_api_endpoints_its_script_reads_and_sets_the_csrf_cookie():
    # given
    user = ProvisionedUserFactory(is_staff=False)
    client = Client()
    client.force_login(user)

    # when
    response = client.get("/account/credits/")

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-balance-url="{reverse("credits-balance")}"' in html
    assert f'data-transactions-url="{reverse("credits-transactions")}"' in html
    assert "site/account_credits.js" in html
    assert "csrftoken" in response.cookies


@pytest.mark.urls("tests.test_pages")
def test_without_a_checkout_endpoint_the_balance_page_offers_no_buy_button():
    # given: a pack, but no checkout endpoint in this deployment's URLs
    CreditPackFactory()
    user = ProvisionedUserFactory(is_staff=False)
    client = Client()
    client.force_login(user)

    # when
    html = client.get("/account/credits/").content.decode()

    # then
    assert "Buy credits" not in html


def test_with_a_checkout_endpoint_the_balance_page_offers_the_active_packs():
    # given
    pack = CreditPackFactory(name="Starter", credits=Decimal("100.00"))
    CreditPackFactory(name="Retired", is_active=False)
    user = ProvisionedUserFactory(is_staff=False)
    client = Client()
    client.force_login(user)

    # when
    html = client.get("/account/credits/").content.decode()

    # then
    assert 'data-checkout-url="/api/credits/checkout/"' in html
    assert "Buy credits" in html
    assert f'<option value="{pack.pk}">Starter: 100.00 credits</option>' in html
    assert "Retired" not in html


# The project's URLs without the checkout route: a deployment that sells no credits
# (pytest.mark.urls, for the test above).
urlpatterns = [
    pattern
    for pattern in project_urls.urlpatterns
    if getattr(pattern, "name", None) != "credits-checkout"
]


def test_the_page_script_sets_api_text_only_through_text_content():
    # given
    client = Client()

    # when
    response = client.get("/static/site/account_credits.js")

    # then
    script = b"".join(response.streaming_content).decode()
    assert response.status_code == 200
    assert "innerHTML" not in script
    assert "insertAdjacentHTML" not in script
    assert "textContent" in script


# --- CORS for a separate frontend ----------------------------------------------------------

FRONTEND = "https://app.example.com"


def test_cors_is_off_by_default():
    # given
    user = ProvisionedUserFactory(is_staff=False)
    client = Client()
    client.force_login(user)

    # when
    response = client.get("/api/credits/balance/", headers={"Origin": FRONTEND})

    # then
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_an_allowed_origin_may_call_the_api_with_a_token_and_no_credentials(settings):
    # given
    settings.CORS_ALLOWED_ORIGINS = [FRONTEND]
    client = Client()

    # when
    preflight = client.options(
        "/api/credits/balance/",
        headers={
            "Origin": FRONTEND,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )

    # then
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in preflight.headers


def test_cors_covers_only_the_api_and_only_the_listed_origins(settings):
    # given
    settings.CORS_ALLOWED_ORIGINS = [FRONTEND]
    client = Client()

    # when
    page = client.get("/", headers={"Origin": FRONTEND})
    other = client.get("/api/schema/", headers={"Origin": "https://evil.example.com"})

    # then
    assert page.status_code == 200
    assert "Access-Control-Allow-Origin" not in page.headers
    assert "Access-Control-Allow-Origin" not in other.headers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", []),
        (
            "https://app.example.com, https://b.example.com",
            ["https://app.example.com", "https://b.example.com"],
        ),
    ],
)
def test_cors_allowed_origins_are_read_from_the_environment(raw, expected):
    # given
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "SECRET_KEY": os.environ["SECRET_KEY"],  # settings_test puts one there
    }
    env["CORS_ALLOWED_ORIGINS"] = raw
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]

    # when
    result = subprocess.run(
        [*python(), "-c", CORS_PROBE],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    # then
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected


CORS_PROBE = """
import json
import django
from django.conf import settings
from django.core.management import call_command
django.setup()
call_command("check", "corsheaders")
print(json.dumps(settings.CORS_ALLOWED_ORIGINS))
"""


# --- the admin index ---------------------------------------------------------------------


def test_the_admin_index_puts_credit_billing_and_migration_apps_first_and_folds_dj_stripe():
    # given
    client = Client()
    client.force_login(SuperAdminFactory(is_superuser=True, email="root@example.com"))

    # when
    response = client.get(reverse("admin:index"))

    # then
    assert response.status_code == 200
    html = response.content.decode()
    content = html[html.index('id="content-main"') :]
    folded_at = content.index('<details class="module collapsed-apps" id="collapsed-apps">')
    shown = re.findall(r'<div class="app-(\w+) module', content[:folded_at])
    folded = re.findall(r'<div class="app-(\w+) module', content[folded_at:])
    assert shown[:3] == ["credits", "billing", "migrations_app"]
    assert set(shown[3:]) == {"auth", "authtoken", "axes", "django_celery_beat"}
    assert folded == ["djstripe"]
    assert content.count("<details") == 1
    assert "open" not in content[folded_at : content.index("<summary>", folded_at)]


def test_the_admin_site_stays_the_default_site_with_every_registration():
    # then
    assert isinstance(admin.site, CreditsAdminSite)
    assert admin.site.is_registered(CreditAccount)
    assert admin.site.is_registered(get_user_model())


def test_an_app_page_of_the_admin_still_lists_only_that_app():
    # given
    client = Client()
    client.force_login(SuperAdminFactory(is_superuser=True, email="root@example.com"))

    # when
    response = client.get(reverse("admin:app_list", args=["djstripe"]))

    # then
    assert response.status_code == 200
    assert [app["app_label"] for app in response.context["app_list"]] == ["djstripe"]
