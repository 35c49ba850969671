"""The Django admin as staff use it: the ledger is readable and never editable there.

Balances change only through `credits.services`; the admin shows accounts and entries read-only,
refuses to add, change or delete entries, and onboards a user added by hand like a signup.
"""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from billing.models import UserProfile
from billing.services import SIGNUP_SOURCE
from core.keys import signup_grant_key
from credits.exceptions import InvalidAmount
from credits.models import CreditAccount, CreditTransaction, EntryKind
from credits.services import credit_grant
from tests.admin.conftest import client_for
from tests.factories import ProvisionedUserFactory, UserFactory

User = get_user_model()

pytestmark = pytest.mark.django_db


def account_url(name, *args):
    return reverse(f"admin:credits_creditaccount_{name}", args=args)


def entry_url(name, *args):
    return reverse(f"admin:credits_credittransaction_{name}", args=args)


def result_pks(response):
    return {obj.pk for obj in response.context["cl"].result_list}


@pytest.fixture
def superuser():
    return UserFactory(username="root", email="root@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(superuser):
    """A superuser's client (`customer` and `account` come from tests/admin/conftest.py)."""
    return client_for(superuser)


# --- credit accounts ----------------------------------------------------------------------


def test_account_changelist_loads(admin_client, account):
    # when
    response = admin_client.get(account_url("changelist"))

    # then
    assert response.status_code == 200
    assert result_pks(response) == {account.pk}
    assert b"15.75" in response.content
    assert account_url("add").encode() not in response.content


def test_account_changelist_searches_by_email(admin_client, account):
    # given
    ProvisionedUserFactory(username="bob", email="bob@example.com")

    # when
    response = admin_client.get(account_url("changelist"), {"q": "alice@example.com"})

    # then
    assert response.status_code == 200
    assert result_pks(response) == {account.pk}


def test_account_change_page_shows_balance_read_only(admin_client, account):
    # when
    response = admin_client.get(account_url("change", account.pk))

    # then
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "balance" not in form.fields
    assert "total_earned" not in form.fields
    assert "total_spent" not in form.fields
    content = response.content.decode()
    assert 'name="balance"' not in content
    assert 'name="_save"' not in content
    assert "15.75" in content


def test_posting_a_changed_balance_does_not_change_it(admin_client, account):
    # given
    entries_before = CreditTransaction.objects.count()

    # when
    response = admin_client.post(
        account_url("change", account.pk),
        {"balance": "1000000.00", "total_earned": "1000000.00", "_save": "Save"},
    )

    # then
    assert response.status_code == 403
    account.refresh_from_db()
    assert account.balance == Decimal("15.75")
    assert account.total_earned == Decimal("20.00")
    assert account.total_spent == Decimal("4.25")
    assert CreditTransaction.objects.count() == entries_before


def test_account_add_and_delete_are_refused(admin_client, account):
    # when
    add = admin_client.post(account_url("add"), {"user": account.user_id})
    delete = admin_client.post(account_url("delete", account.pk), {"post": "yes"})

    # then
    assert (add.status_code, delete.status_code) == (403, 403)
    assert CreditAccount.objects.filter(pk=account.pk).exists()
    assert CreditAccount.objects.count() == 1


def test_account_page_shows_the_ledger_read_only_newest_first(admin_client, account):
    # given
    credit_grant(account=account, amount=Decimal("7.00"), idempotency_key="alice-bonus")

    # when
    response = admin_client.get(account_url("change", account.pk))

    # then
    assert response.status_code == 200
    assert response.context["inline_admin_formsets"] == []
    page = response.context["ledger_page"]
    shown = [entry.pk for entry in page]
    assert shown == list(account.entries.order_by("-id").values_list("pk", flat=True))
    assert len(shown) == 3
    content = response.content.decode()
    for amount in ("20.00", "-4.25", "7.00", "22.75"):
        assert amount in content
    assert 'name="entries-0-amount"' not in content
    assert response.context["ledger_url"] in content


def test_account_page_paginates_the_ledger(admin_client, account, settings):
    # given: the signup grant and a spend, and 28 grants: 30 entries over two pages of 25
    for number in range(28):
        credit_grant(account=account, amount=Decimal("1.00"), idempotency_key=f"alice-{number}")
    newest_first = list(account.entries.order_by("-id").values_list("pk", flat=True))

    # when
    first = admin_client.get(account_url("change", account.pk))
    second = admin_client.get(account_url("change", account.pk), {"entries_page": 2})

    # then
    assert [entry.pk for entry in first.context["ledger_page"]] == newest_first[:25]
    assert [entry.pk for entry in second.context["ledger_page"]] == newest_first[25:]
    assert "Page 1 of 2 (30 entries)" in first.content.decode()
    assert "?entries_page=2#ledger" in first.content.decode()


# --- ledger entries -----------------------------------------------------------------------


def test_entry_changelist_loads_with_filters(admin_client, account):
    # when
    response = admin_client.get(entry_url("changelist"))

    # then
    assert response.status_code == 200
    assert result_pks(response) == set(account.entries.values_list("pk", flat=True))
    filter_titles = {spec.title for spec in response.context["cl"].filter_specs}
    assert {"kind", "source", "created at"} <= filter_titles
    assert entry_url("add").encode() not in response.content


@pytest.mark.parametrize(
    ("query", "kinds"),
    [
        ({"kind__exact": EntryKind.SPEND}, [EntryKind.SPEND]),
        ({"kind__exact": EntryKind.GRANT}, [EntryKind.GRANT]),
        ({"source__exact": SIGNUP_SOURCE}, [EntryKind.GRANT]),
        ({"source__exact": "api"}, [EntryKind.SPEND]),
        ({"kind__exact": EntryKind.REFUND}, []),
    ],
    ids=["kind-spend", "kind-grant", "source-signup", "source-api", "kind-refund-none"],
)
def test_entry_changelist_filters(admin_client, account, query, kinds):
    # when
    response = admin_client.get(entry_url("changelist"), query)

    # then
    assert response.status_code == 200
    assert [obj.kind for obj in response.context["cl"].result_list] == kinds


def test_entry_changelist_filters_by_date_and_searches_by_key(admin_client, account):
    # given
    spend = account.entries.get(kind=EntryKind.SPEND)
    year = spend.created_at.year

    # when
    by_year = admin_client.get(entry_url("changelist"), {"created_at__year": year})
    by_key = admin_client.get(entry_url("changelist"), {"q": "alice-usage-1"})

    # then
    assert by_year.status_code == 200
    assert result_pks(by_year) == set(account.entries.values_list("pk", flat=True))
    assert by_key.status_code == 200
    assert result_pks(by_key) == {spend.pk}


def test_entry_add_is_refused(admin_client, account):
    # given
    entries_before = CreditTransaction.objects.count()

    # when
    page = admin_client.get(entry_url("add"))
    post = admin_client.post(
        entry_url("add"),
        {
            "account": account.pk,
            "kind": EntryKind.GRANT,
            "amount": "1000.00",
            "balance_before": "15.75",
            "balance_after": "1015.75",
            "idempotency_key": "admin-forged",
        },
    )

    # then
    assert (page.status_code, post.status_code) == (403, 403)
    assert CreditTransaction.objects.count() == entries_before
    account.refresh_from_db()
    assert account.balance == Decimal("15.75")


def test_entry_change_page_is_read_only(admin_client, account):
    # given
    spend = account.entries.get(kind=EntryKind.SPEND)

    # when
    page = admin_client.get(entry_url("change", spend.pk))
    post = admin_client.post(
        entry_url("change", spend.pk), {"amount": "-0.01", "balance_after": "15.99"}
    )

    # then
    assert page.status_code == 200
    assert page.context["adminform"].form.fields == {}
    content = page.content.decode()
    assert 'name="amount"' not in content
    assert 'name="_save"' not in content
    assert "-4.25" in content
    assert post.status_code == 403
    spend.refresh_from_db()
    assert spend.amount == Decimal("-4.25")
    assert spend.balance_after == Decimal("15.75")


def test_entry_delete_is_refused(admin_client, account):
    # given
    spend = account.entries.get(kind=EntryKind.SPEND)
    entries_before = CreditTransaction.objects.count()

    # when
    page = admin_client.get(entry_url("delete", spend.pk))
    post = admin_client.post(entry_url("delete", spend.pk), {"post": "yes"})

    # then
    assert (page.status_code, post.status_code) == (403, 403)
    assert CreditTransaction.objects.filter(pk=spend.pk).exists()
    assert CreditTransaction.objects.count() == entries_before


def test_entry_bulk_delete_action_is_not_offered(admin_client, account):
    # given
    pks = list(account.entries.values_list("pk", flat=True))

    # when
    page = admin_client.get(entry_url("changelist"))
    post = admin_client.post(
        entry_url("changelist"),
        {"action": "delete_selected", "_selected_action": pks, "post": "yes", "index": 0},
    )

    # then
    assert b"delete_selected" not in page.content
    assert post.status_code in (200, 302)
    assert CreditTransaction.objects.count() == len(pks)
    account.refresh_from_db()
    assert account.balance == Decimal("15.75")


# --- users and profiles -------------------------------------------------------------------


def test_user_added_in_admin_is_provisioned_like_a_signup(admin_client):
    # when
    response = admin_client.post(
        reverse("admin:auth_user_add"),
        {
            "username": "walk-in",
            "usable_password": "true",
            "password1": "a long and unusual passphrase 81",
            "password2": "a long and unusual passphrase 81",
            "_save": "Save",
        },
    )

    # then
    assert response.status_code == 302, response.context and response.context["adminform"].errors
    user = User.objects.get(username="walk-in")
    profile = UserProfile.objects.get(user=user)
    assert profile.migration_completed_at is not None
    account = CreditAccount.objects.get(user=user)
    assert account.balance == Decimal("20.00")
    assert account.total_earned == Decimal("20.00")
    grant = account.entries.get()
    assert grant.kind == EntryKind.GRANT
    assert grant.amount == Decimal("20.00")
    assert grant.source == SIGNUP_SOURCE
    assert grant.idempotency_key == signup_grant_key(user_id=user.pk)


def test_user_added_in_admin_gets_no_grant_when_disabled(admin_client, settings):
    # given
    settings.CREDITS_SIGNUP_GRANT = Decimal("0")

    # when
    response = admin_client.post(
        reverse("admin:auth_user_add"),
        {
            "username": "no-grant",
            "usable_password": "false",
            "_save": "Save",
        },
    )

    # then
    assert response.status_code == 302
    user = User.objects.get(username="no-grant")
    assert UserProfile.objects.filter(user=user).exists()
    account = CreditAccount.objects.get(user=user)
    assert account.balance == Decimal("0.00")
    assert account.entries.count() == 0


def test_user_added_in_admin_is_not_kept_when_provisioning_fails(admin_client, settings):
    # given: a signup grant the ledger refuses (3 decimal places), so provisioning fails
    # after the user row was saved
    settings.CREDITS_SIGNUP_GRANT = Decimal("0.001")
    users_before = User.objects.count()

    # when
    with pytest.raises(InvalidAmount):
        admin_client.post(
            reverse("admin:auth_user_add"),
            {"username": "half-made", "usable_password": "false", "_save": "Save"},
        )

    # then
    assert User.objects.count() == users_before
    assert not User.objects.filter(username="half-made").exists()
    assert UserProfile.objects.count() == 0
    assert CreditAccount.objects.count() == 0


def test_user_changed_in_admin_is_not_granted_again(admin_client, customer, account):
    # given
    change_url = reverse("admin:auth_user_change", args=[customer.pk])
    entries_before = CreditTransaction.objects.count()

    # when
    response = admin_client.post(
        change_url,
        {
            "username": customer.username,
            "first_name": "Alice",
            "last_name": "",
            "email": customer.email,
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "_save": "Save",
        },
    )

    # then
    assert response.status_code == 302, response.context and response.context["adminform"].errors
    customer.refresh_from_db()
    assert customer.first_name == "Alice"
    assert CreditTransaction.objects.count() == entries_before
    account.refresh_from_db()
    assert account.balance == Decimal("15.75")


def test_profile_changelist_loads_and_searches_by_email(admin_client, customer):
    # given
    other = ProvisionedUserFactory(username="bob", email="bob@example.com")

    # when
    everyone = admin_client.get(reverse("admin:billing_userprofile_changelist"))
    found = admin_client.get(
        reverse("admin:billing_userprofile_changelist"), {"q": "alice@example.com"}
    )

    # then
    assert everyone.status_code == 200
    assert result_pks(everyone) == {customer.profile.pk, other.profile.pk}
    assert found.status_code == 200
    assert result_pks(found) == {customer.profile.pk}


def test_profile_change_page_loads_and_profile_add_is_refused(admin_client, customer):
    # when
    change = admin_client.get(
        reverse("admin:billing_userprofile_change", args=[customer.profile.pk])
    )
    add = admin_client.get(reverse("admin:billing_userprofile_add"))

    # then
    assert change.status_code == 200
    assert "user" not in change.context["adminform"].form.fields
    assert "migration_completed_at" not in change.context["adminform"].form.fields
    assert add.status_code == 403
