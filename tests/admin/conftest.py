"""Staff in the admin: a customer with credits, the two roles, and clients logged in as them."""

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from credits.services import credit_spend
from tests.factories import (
    CreditAdminFactory,
    ProvisionedUserFactory,
    StaffUserFactory,
    SuperAdminFactory,
)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def post_action(client, url, action, pks, **data):
    return client.post(url, {"action": action, ACTION_CHECKBOX_NAME: pks, "index": 0, **data})


def changelist_url(model: str) -> str:
    return reverse(f"admin:{model.replace('.', '_')}_changelist")


@pytest.fixture
def customer(db):
    """A signed-up user with the 20.00 signup grant and one spend of 4.25: 15.75 left."""
    user = ProvisionedUserFactory(username="alice", email="alice@example.com")
    credit_spend(
        account=user.credit_account,
        amount=Decimal("4.25"),
        idempotency_key="alice-usage-1",
        source="api",
    )
    return user


@pytest.fixture
def account(customer):
    account = customer.credit_account
    account.refresh_from_db()
    return account


@pytest.fixture
def other_account(db):
    user = ProvisionedUserFactory(username="bob", email="bob@example.com")
    account = user.credit_account
    account.refresh_from_db()
    return account


@pytest.fixture
def credit_admin(db):
    return CreditAdminFactory(email="credit-admin@example.com")


@pytest.fixture
def super_admin(db):
    return SuperAdminFactory(email="super-admin@example.com")


@pytest.fixture
def second_super_admin(db):
    return SuperAdminFactory(email="second-super-admin@example.com")


@pytest.fixture
def bare_staff(db):
    """Staff without any permission."""
    return StaffUserFactory(email="bare-staff@example.com")


@pytest.fixture
def credit_admin_client(credit_admin):
    return client_for(credit_admin)


@pytest.fixture
def super_admin_client(super_admin):
    return client_for(super_admin)
