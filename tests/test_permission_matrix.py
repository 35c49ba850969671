"""The permission matrix: every staff endpoint and every admin action of our apps against four
users (staff with no permissions, a "Credit admins" member, a "Billing super admins" member, a
superuser), generated from one table each; and every customer endpoint of the ledger against
nobody, its customer, another customer and a superuser (each sees only their own).

The tables are checked against the URL resolver and the admin's registry: a new staff endpoint
or admin action without an entry here fails `test_every_*_has_an_entry`. A refusal is a 403 in
the error shape (the admin: no write) and changes no row anywhere.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.permissions import IsAdminUser
from rest_framework.test import APIClient

from billing.models import StripeEventIssue
from core.api.views import StaffApiView
from credits.models import CreditAccount, CreditApprovalRequest, CreditHold, CreditTransaction
from credits.services import credit_hold_create, credit_staff_grant
from migrations_app.models import MigrationRun, UserMigration
from tests.factories import (
    CreditAdminFactory,
    MigrationRunFactory,
    ProvisionedUserFactory,
    StaffUserFactory,
    SuperAdminFactory,
    UserFactory,
    UserMigrationFactory,
)

pytestmark = pytest.mark.django_db

NOBODY, CREDIT_ADMIN, SUPER_ADMIN, SUPERUSER = ROLES = (
    "staff-without-permissions",
    "credit-admin",
    "billing-super-admin",
    "superuser",
)
ALL = frozenset(ROLES)
SUPERS = frozenset({SUPER_ADMIN, SUPERUSER})
OUR_APPS = ("credits", "billing", "migrations_app")


def make_user(role):
    if role == NOBODY:
        return StaffUserFactory()
    if role == CREDIT_ADMIN:
        return CreditAdminFactory()
    if role == SUPER_ADMIN:
        return SuperAdminFactory()
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def customer():
    """A signed-up user holding the 20.00 signup grant."""
    return ProvisionedUserFactory(email="customer@example.com")


def world():
    """Every row a staff door can write, in a comparable form."""
    return (
        list(CreditTransaction.objects.order_by("pk").values_list("pk", "amount")),
        list(CreditApprovalRequest.objects.order_by("pk").values_list("pk", "status")),
        list(MigrationRun.objects.order_by("pk").values_list("pk", "status", "mode")),
        list(UserMigration.objects.order_by("pk").values_list("pk", "status", "attempts")),
        list(StripeEventIssue.objects.order_by("pk").values_list("pk", "is_resolved")),
        list(CreditHold.objects.order_by("pk").values_list("pk", "status", "reason")),
    )


# --- staff endpoints ----------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    name: str  # the URL's name
    method: str
    permission: str
    allowed: frozenset
    status: int  # the answer to those allowed
    request: Callable  # (customer) -> (path, body)


ENDPOINTS = [
    Endpoint(
        "staff-credits-adjust",
        "post",
        "credits.adjust_credits",
        ALL - {NOBODY},
        201,
        lambda customer: (
            "/api/admin/billing/credits/adjust",
            {"user_id": customer.pk, "amount": "5.00", "reason": "r", "idempotency_key": "m"},
        ),
    ),
    Endpoint(
        "staff-refund",
        "post",
        "credits.refund_credits",
        SUPERS,
        201,
        lambda customer: (
            "/api/admin/billing/refund",
            {"user_id": customer.pk, "amount": "5.00", "reason": "r", "idempotency_key": "m"},
        ),
    ),
    Endpoint(
        "staff-user-summary",
        "get",
        "billing.view_customer_summary",
        SUPERS,
        200,
        lambda customer: (f"/api/admin/billing/user/{customer.pk}/summary", None),
    ),
    Endpoint(
        "billing-health",
        "get",
        "credits.view_creditaccount",
        ALL - {NOBODY},
        200,
        lambda customer: ("/api/admin/billing/health", None),
    ),
    Endpoint(
        "migrate-status",
        "get",
        "migrations_app.view_migrationrun",
        SUPERS,
        200,
        lambda customer: ("/api/migrate/user-credits/", None),
    ),
    Endpoint(
        "migrate-status",
        "post",
        "migrations_app.preview_migration",
        SUPERS,
        202,
        lambda customer: ("/api/migrate/user-credits/", {"sources": ["usd_balance"]}),
    ),
    Endpoint(
        "migrate-status",
        "post:execute",
        "migrations_app.run_migration",
        SUPERS,
        202,
        lambda customer: (
            "/api/migrate/user-credits/",
            {"sources": ["usd_balance"], "dry_run": False},
        ),
    ),
    Endpoint(
        "migrate-run",
        "get",
        "migrations_app.view_migrationrun",
        SUPERS,
        200,
        lambda customer: (f"/api/migrate/runs/{MigrationRunFactory().pk}/", None),
    ),
    Endpoint(
        "migrate-rollback",
        "post",
        "migrations_app.rollback_migration",
        SUPERS,
        200,
        lambda customer: ("/api/migrate/rollback/", {"users": [customer.pk]}),
    ),
    Endpoint(
        "migrate-rollback",
        "post:force",
        "credits.adjust_unlimited",
        SUPERS,
        200,
        lambda customer: ("/api/migrate/rollback/", {"users": [customer.pk], "force": True}),
    ),
]


def _patterns(resolver, prefix=""):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def staff_views():
    """(url name, method) of every view under /api/ that only staff may open."""
    found = set()
    for route, pattern in _patterns(get_resolver()):
        view_class = getattr(pattern.callback, "view_class", None)
        if not route.startswith("api/") or view_class is None:
            continue
        staff_only = issubclass(view_class, StaffApiView) or any(
            isinstance(permission, type) and issubclass(permission, IsAdminUser)
            for permission in getattr(view_class, "permission_classes", [])
        )
        if staff_only:
            for method in ("get", "post", "put", "patch", "delete"):
                if hasattr(view_class, method):
                    found.add((pattern.name, method))
    return found


def test_every_staff_endpoint_has_an_entry():
    # given / when
    in_table = {(entry.name, entry.method.split(":")[0]) for entry in ENDPOINTS}
    # then: an endpoint nobody put in the table (or a stale entry) fails here
    assert staff_views() == in_table


def _endpoint_cases():
    for entry in ENDPOINTS:
        for role in ROLES:
            yield pytest.param(
                entry,
                role,
                id=f"{entry.method}-{entry.name}-{entry.permission}-{role}",
            )


@pytest.mark.parametrize(("entry", "role"), list(_endpoint_cases()))
def test_staff_endpoint_matrix(customer, entry, role):
    # given
    client = APIClient()
    client.force_authenticate(user=make_user(role))
    path, body = entry.request(customer)
    before = world()
    # when
    method = entry.method.split(":")[0]
    if method == "get":
        response = client.get(path)
    else:
        response = getattr(client, method)(path, body, format="json")
    # then
    if role in entry.allowed:
        assert response.status_code == entry.status, response.content
    else:
        assert response.status_code == 403, response.content
        error = response.json()["error"]
        assert set(error) == {"code", "message", "details"}
        assert error["code"] == "permission_denied"
        assert world() == before


# --- admin actions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    model: str  # app_label.model_name
    name: str
    permission: str
    allowed: frozenset
    setup: Callable  # (customer, settings) -> (selected pks, extra POST data)
    shows_page: str | None = None  # an allowed run answers with this page instead of writing
    marks: list = field(default_factory=list)


def _accounts(customer, settings):
    return [customer.credit_account.pk], {
        "amount": "5.00",
        "reason": "r",
        "submission_key": str(uuid.uuid4()),
        "apply": "1",
    }


def _pending(customer, settings):
    settings.CREDITS_APPROVAL_THRESHOLD = Decimal("50")
    pending = credit_staff_grant(
        account=customer.credit_account,
        amount=Decimal("100.00"),
        idempotency_key="matrix-pending",
        actor=SuperAdminFactory(),
        reason="r",
    )
    return [pending.pk], {}


def _active_hold(customer, settings):
    hold = credit_hold_create(
        account=customer.credit_account, amount=Decimal("5.00"), idempotency_key="matrix-hold"
    )
    return [hold.pk], {"reason": "r", "apply": "1"}


def _issue(customer, settings):
    issue = StripeEventIssue.objects.create(
        stripe_event_id="evt_matrix", event_type="invoice.paid", kind="unknown_price", detail="d"
    )
    return [issue.pk], {}


def _completed(customer, settings):
    return [UserMigrationFactory(user=customer).pk], {}


def _failed(customer, settings):
    return [UserMigrationFactory(user=customer, status="FAILED", error_message="x").pk], {}


ACTIONS = [
    Action(
        "credits.creditaccount", "grant_credits", "credits.grant_credits", ALL - {NOBODY}, _accounts
    ),
    Action("credits.creditaccount", "refund_credits", "credits.refund_credits", SUPERS, _accounts),
    Action(
        "credits.creditaccount",
        "adjust_credits",
        "credits.adjust_credits",
        ALL - {NOBODY},
        _accounts,
    ),
    Action(
        "credits.creditapprovalrequest",
        "approve_requests",
        "credits.grant_credits (the request's kind)",
        ALL - {NOBODY},
        _pending,
    ),
    Action(
        "credits.creditapprovalrequest",
        "reject_requests",
        "credits.grant_credits (the request's kind)",
        ALL - {NOBODY},
        _pending,
    ),
    Action(
        "credits.credithold",
        "release_holds",
        "credits.release_hold",
        ALL - {NOBODY},
        _active_hold,
    ),
    Action(
        "billing.stripeeventissue",
        "mark_resolved",
        "billing.change_stripeeventissue",
        frozenset({SUPERUSER}),
        _issue,
    ),
    Action(
        "migrations_app.usermigration",
        "roll_back",
        "migrations_app.rollback_migration",
        SUPERS,
        _completed,
        shows_page="admin/migrations_app/usermigration/rollback_confirmation.html",
    ),
    Action(
        "migrations_app.usermigration",
        "retry_failed",
        "migrations_app.retry_migration",
        SUPERS,
        _failed,
    ),
]


def admin_actions():
    found = set()
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label in OUR_APPS:
            for action in model_admin.actions or ():
                name = action if isinstance(action, str) else action.__name__
                found.add((model._meta.label_lower, name))
    return found


def test_every_admin_action_has_an_entry():
    # given / when
    in_table = {(entry.model, entry.name) for entry in ACTIONS}
    # then
    assert admin_actions() == in_table


def _action_cases():
    for entry in ACTIONS:
        for role in ROLES:
            yield pytest.param(
                entry, role, marks=entry.marks, id=f"{entry.model}-{entry.name}-{role}"
            )


@pytest.mark.parametrize(("entry", "role"), list(_action_cases()))
def test_admin_action_matrix(customer, settings, entry, role):
    # given
    client = Client()
    client.force_login(make_user(role))
    pks, data = entry.setup(customer, settings)
    url = f"/admin/{entry.model.replace('.', '/')}/"
    before = world()
    # when
    response = client.post(
        url, {"action": entry.name, ACTION_CHECKBOX_NAME: pks, "index": 0, **data}
    )
    # then
    assert response.status_code < 500
    shown = [template.name for template in getattr(response, "templates", [])]
    if role in entry.allowed:
        if entry.shows_page:
            assert entry.shows_page in shown
            assert world() == before
        else:
            assert world() != before, f"{role} ran {entry.name} and nothing was written"
    else:
        # refused: no confirmation page, and nothing written (requests keep their status)
        assert entry.shows_page is None or entry.shows_page not in shown
        assert world() == before


# --- the customer API ---------------------------------------------------------------------
# The ledger's customer endpoints (credits.api) against four callers: nobody, the customer,
# another customer, a superuser. Each serves its caller's own account only: what names the
# customer's row (a hold) is a 404 to anyone else, staff included (staff act through the staff
# doors, which name their permission), and no caller but the customer moves the customer's rows.

ANONYMOUS, OWNER, OTHER_CUSTOMER, STAFF_CUSTOMER = CALLERS = (
    "anonymous",
    "the-customer",
    "another-customer",
    "superuser",
)


@dataclass(frozen=True)
class CustomerEndpoint:
    name: str  # the URL's name
    method: str
    status: int  # the answer to the caller on their own account
    request: Callable  # (customer) -> (path, body)
    owned_code: str = ""  # names a row of the customer's: others get this 404 code


def _customer_hold(customer):
    return credit_hold_create(
        account=customer.credit_account, amount=Decimal("5.00"), idempotency_key="matrix-hold"
    )


CUSTOMER_ENDPOINTS = [
    CustomerEndpoint(
        "credits-transactions", "get", 200, lambda c: ("/api/credits/transactions/", None)
    ),
    CustomerEndpoint(
        "credits-spend",
        "post",
        201,
        lambda c: ("/api/credits/spend/", {"amount": "1.00", "idempotency_key": "m"}),
    ),
    CustomerEndpoint("credits-lots", "get", 200, lambda c: ("/api/credits/lots/", None)),
    CustomerEndpoint("credits-holds", "get", 200, lambda c: ("/api/credits/holds/", None)),
    CustomerEndpoint(
        "credits-holds",
        "post",
        201,
        lambda c: ("/api/credits/holds/", {"amount": "1.00", "idempotency_key": "m"}),
    ),
    CustomerEndpoint(
        "credits-hold-capture",
        "post",
        201,
        lambda c: (
            f"/api/credits/holds/{_customer_hold(c).pk}/capture/",
            {"idempotency_key": "m"},
        ),
        owned_code="hold_not_found",
    ),
    CustomerEndpoint(
        "credits-hold-release",
        "post",
        200,
        lambda c: (f"/api/credits/holds/{_customer_hold(c).pk}/release/", None),
        owned_code="hold_not_found",
    ),
]


def customer_views():
    """(url name, method) of every view of the ledger's customer API (credits.api)."""
    found = set()
    for route, pattern in _patterns(get_resolver()):
        view_class = getattr(pattern.callback, "view_class", None)
        if not route.startswith("api/") or view_class is None:
            continue
        if view_class.__module__.startswith("credits.api."):
            for method in ("get", "post", "put", "patch", "delete"):
                if hasattr(view_class, method):
                    found.add((pattern.name, method))
    return found


def the_customers_rows(customer):
    """What the customer owns: the account's figures, its entries, lots and holds."""
    account = CreditAccount.objects.get(pk=customer.credit_account.pk)
    return (
        (account.balance, account.held, account.total_spent),
        list(account.entries.order_by("pk").values_list("pk", "amount")),
        list(account.lots.order_by("pk").values_list("pk", "remaining")),
        list(account.holds.order_by("pk").values_list("pk", "status", "captured")),
    )


def test_every_customer_endpoint_of_the_ledger_has_an_entry():
    # given / when
    in_table = {(entry.name, entry.method) for entry in CUSTOMER_ENDPOINTS}
    # then
    assert customer_views() == in_table


def _customer_cases():
    for entry in CUSTOMER_ENDPOINTS:
        for caller in CALLERS:
            yield pytest.param(entry, caller, id=f"{entry.method}-{entry.name}-{caller}")


@pytest.mark.parametrize(("entry", "caller"), list(_customer_cases()))
def test_customer_endpoint_matrix(customer, entry, caller):
    # given: the customer's 20.00 and, for the hold doors, a hold of theirs
    path, body = entry.request(customer)
    client = APIClient()
    if caller == OWNER:
        client.force_authenticate(user=customer)
    elif caller == OTHER_CUSTOMER:
        client.force_authenticate(user=ProvisionedUserFactory(email="other@example.com"))
    elif caller == STAFF_CUSTOMER:
        client.force_authenticate(
            user=ProvisionedUserFactory(email="root@example.com", is_staff=True, is_superuser=True)
        )
    before = the_customers_rows(customer), world()
    # when
    response = getattr(client, entry.method)(path, body, format="json")
    # then
    if caller == OWNER:
        assert response.status_code == entry.status, response.content
        return
    if caller == ANONYMOUS:
        expected = (401, "not_authenticated")
    elif entry.owned_code:
        expected = (404, entry.owned_code)
    else:
        expected = (entry.status, None)  # their own account's answer
    assert response.status_code == expected[0], response.content
    if expected[1]:
        assert response.json()["error"]["code"] == expected[1]
    assert the_customers_rows(customer) == before[0]
    if expected[0] >= 400:
        assert world() == before[1]
