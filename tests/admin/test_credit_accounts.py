"""Credit accounts in the admin: the list, and the grant, refund and adjust actions with their
intermediate form, for each role. A refused action writes nothing: balances, entry counts and
approval requests are checked after each."""

from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import UserProfile
from credits.models import CreditApprovalRequest, CreditTransaction, EntryKind
from credits.selectors import ledger_sum
from tests.admin.conftest import changelist_url, client_for, messages_of, post_action
from tests.factories import ProvisionedUserFactory, UserMigrationFactory
from tests.helpers import ledger_state

pytestmark = pytest.mark.django_db

ACCOUNTS = changelist_url("credits.creditaccount")


def form_page(client, action, pks):
    """The action's intermediate page; returns (response, its submission key)."""
    response = post_action(client, ACCOUNTS, action, pks)
    assert response.status_code == 200
    return response, str(response.context["form"].initial["submission_key"])


def apply(client, action, pks, *, amount, reason, key):
    return post_action(
        client, ACCOUNTS, action, pks, amount=amount, reason=reason, submission_key=key, apply="1"
    )


# --- the list -----------------------------------------------------------------------------


def test_list_shows_email_plan_balance_totals_and_migrated(credit_admin_client, account):
    # given
    UserProfile.objects.filter(user=account.user).update(plan="pro")

    # when
    response = credit_admin_client.get(ACCOUNTS)

    # then
    assert response.status_code == 200
    content = response.content.decode()
    for text in ("alice@example.com", "pro", "15.75", "20.00", "4.25", "icon-no.svg"):
        assert text in content
    headers = [header["text"] for header in response.context["result_headers"]]
    assert headers[1:] == [
        "email",
        "plan",
        "balance",
        "total earned",
        "total spent",
        "migrated",
        "updated at",
    ]


@pytest.mark.parametrize("query", ["alice@example.com", "alice"], ids=["email", "username"])
def test_list_searches_by_email(credit_admin_client, account, other_account, query):
    # when
    response = credit_admin_client.get(ACCOUNTS, {"q": query})

    # then
    assert [row.pk for row in response.context["cl"].result_list] == [account.pk]


def test_list_searches_by_user_id(credit_admin_client, account, other_account):
    # when
    response = credit_admin_client.get(ACCOUNTS, {"q": str(other_account.user_id)})

    # then
    assert [row.pk for row in response.context["cl"].result_list] == [other_account.pk]


def test_list_filters_by_plan_and_migrated(credit_admin_client, account, other_account):
    # given: alice migrated by a source, bob still waiting
    UserMigrationFactory(user=account.user)
    UserProfile.objects.filter(user=other_account.user).update(
        plan="business", migration_completed_at=None
    )

    # when
    by_plan = credit_admin_client.get(ACCOUNTS, {"user__profile__plan": "business"})
    not_migrated = credit_admin_client.get(ACCOUNTS, {"migrated": "no"})
    migrated = credit_admin_client.get(ACCOUNTS, {"migrated": "yes"})

    # then
    assert [row.pk for row in by_plan.context["cl"].result_list] == [other_account.pk]
    assert [row.pk for row in not_migrated.context["cl"].result_list] == [other_account.pk]
    assert [row.pk for row in migrated.context["cl"].result_list] == [account.pk]


# --- who sees what ------------------------------------------------------------------------


def test_actions_offered_follow_the_role(credit_admin_client, super_admin_client, account):
    # when
    credit_admin_actions = credit_admin_client.get(ACCOUNTS).context["action_form"]
    super_admin_actions = super_admin_client.get(ACCOUNTS).context["action_form"]

    # then
    def names(form):
        return {name for name, _ in form.fields["action"].choices if name}

    assert names(credit_admin_actions) == {"grant_credits", "adjust_credits"}
    assert names(super_admin_actions) == {"grant_credits", "adjust_credits", "refund_credits"}


def test_staff_without_permission_is_refused_the_page(bare_staff, account):
    # when
    response = client_for(bare_staff).get(ACCOUNTS)

    # then
    assert response.status_code == 403


def test_staff_with_view_permission_only_sees_no_actions(account):
    # given
    from tests.factories import StaffUserFactory

    viewer = StaffUserFactory(permissions=["credits.view_creditaccount"])

    # when
    response = client_for(viewer).get(ACCOUNTS)

    # then
    assert response.status_code == 200
    assert response.context["action_form"] is None
    assert b"grant_credits" not in response.content


def test_a_customer_is_sent_to_the_login_page(customer, account):
    # when
    response = client_for(customer).get(ACCOUNTS)

    # then
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


# --- granting -----------------------------------------------------------------------------


def test_the_grant_form_looks_like_the_admin(credit_admin_client, account):
    # when
    response, key = form_page(credit_admin_client, "grant_credits", [account.pk])

    # then
    content = response.content.decode()
    assert [t.name for t in response.templates][:2] == [
        "admin/credits/creditaccount/staff_action.html",
        "admin/base_site.html",
    ]
    assert 'class="breadcrumbs"' in content
    assert 'class="submit-row"' in content
    assert f'name="submission_key" value="{key}"' in content
    assert "alice@example.com" in content
    assert "Your limit is 1000 credits per account" in content


def test_credit_admin_grants_and_sees_the_result(credit_admin_client, credit_admin, account):
    # given
    _, key = form_page(credit_admin_client, "grant_credits", [account.pk])

    # when
    response = apply(
        credit_admin_client,
        "grant_credits",
        [account.pk],
        amount="50",
        reason="Goodwill after an outage",
        key=key,
    )

    # then
    assert response.status_code == 302
    assert messages_of(response) == [
        "Granted 50.00 credits to alice@example.com; balance now 65.75."
    ]
    account.refresh_from_db()
    assert account.balance == Decimal("65.75") == ledger_sum(account=account)
    entry = account.entries.order_by("-id").first()
    assert (entry.kind, entry.amount, entry.actor_id, entry.reason) == (
        EntryKind.GRANT,
        Decimal("50.00"),
        credit_admin.pk,
        "Goodwill after an outage",
    )
    assert entry.idempotency_key == f"admin:grant:{key}:{account.pk}"


def test_submitting_the_same_form_twice_writes_once(credit_admin_client, account):
    # given
    _, key = form_page(credit_admin_client, "grant_credits", [account.pk])
    apply(credit_admin_client, "grant_credits", [account.pk], amount="5", reason="r", key=key)
    entry = account.entries.order_by("-id").first()

    # when
    again = apply(
        credit_admin_client, "grant_credits", [account.pk], amount="5", reason="r", key=key
    )

    # then
    assert messages_of(again)[-1] == (
        f"Nothing written again for alice@example.com: this form was already applied "
        f"(entry #{entry.pk})."
    )
    account.refresh_from_db()
    assert account.balance == Decimal("20.75")
    assert account.entries.count() == 3


def test_each_form_rendering_has_its_own_key(credit_admin_client, account):
    # when
    _, first = form_page(credit_admin_client, "grant_credits", [account.pk])
    _, second = form_page(credit_admin_client, "grant_credits", [account.pk])

    # then
    assert first != second


def test_one_grant_for_many_accounts_reports_each(credit_admin_client, account, other_account):
    # given
    _, key = form_page(credit_admin_client, "grant_credits", [account.pk, other_account.pk])

    # when
    response = apply(
        credit_admin_client,
        "grant_credits",
        [account.pk, other_account.pk],
        amount="10.50",
        reason="Launch bonus",
        key=key,
    )

    # then
    assert messages_of(response) == [
        "Granted 10.50 credits to alice@example.com; balance now 26.25.",
        "Granted 10.50 credits to bob@example.com; balance now 30.50.",
    ]
    assert ledger_state(account, other_account).balances == [
        Decimal("26.25"),
        Decimal("30.50"),
    ]


LENIENT = "Send a decimal string of ASCII digits such as"


@pytest.mark.parametrize(
    ("amount", "reason", "error"),
    [
        ("50", "", "This field is required."),
        ("50", "   ", "This field is required."),
        ("-5", "Negative", "Ensure this value is greater than or equal to 0.01."),
        ("0", "Zero", "Ensure this value is greater than or equal to 0.01."),
        ("fifty", "Words", "Enter a number."),
        ("1.001", "Too precise", "Ensure that there are no more than 2 decimal places."),
        ("", "No amount", "This field is required."),
        ("1_0", "Underscore", LENIENT),
        ("\u0661\u0662", "Arabic-Indic digits", LENIENT),
        ("\uff11\uff12", "Fullwidth digits", LENIENT),
        ("1e3", "Exponent", LENIENT),
    ],
    ids=[
        *("empty-reason", "blank-reason", "negative", "zero", "non-numeric", "decimals", "empty"),
        *("underscore", "arabic-indic", "fullwidth", "exponent"),
    ],
)
def test_bad_input_is_shown_and_nothing_is_written(
    credit_admin_client, account, amount, reason, error
):
    # given
    _, key = form_page(credit_admin_client, "grant_credits", [account.pk])
    before = ledger_state(account)

    # when
    response = apply(
        credit_admin_client, "grant_credits", [account.pk], amount=amount, reason=reason, key=key
    )

    # then
    assert response.status_code == 200
    content = response.content.decode()
    assert error in content
    assert "Nothing was written: correct the errors below." in content
    assert 'class="errornote"' in content
    assert ledger_state(account) == before


def test_a_form_without_its_submission_key_is_refused(credit_admin_client, account):
    # given
    before = ledger_state(account)

    # when
    response = apply(
        credit_admin_client, "grant_credits", [account.pk], amount="5", reason="r", key=""
    )

    # then
    assert response.status_code == 200
    assert "Nothing was written" in response.content.decode()
    assert ledger_state(account) == before


def test_credit_admin_is_refused_a_grant_over_the_limit(credit_admin_client, account):
    # given
    _, key = form_page(credit_admin_client, "grant_credits", [account.pk])
    before = ledger_state(account)

    # when
    response = apply(
        credit_admin_client,
        "grant_credits",
        [account.pk],
        amount="1000.01",
        reason="Too generous",
        key=key,
    )

    # then
    assert messages_of(response) == [
        "Nothing written for alice@example.com: The amount is above your limit per action "
        "(CREDITS_ADMIN_LIMIT); a billing super admin can do it. Asked for 1000.01; limit 1000."
    ]
    assert ledger_state(account) == before


def test_credit_admin_is_refused_a_refund(credit_admin_client, account):
    # given
    before = ledger_state(account)

    # when: posting the action the page does not offer
    response = apply(
        credit_admin_client, "refund_credits", [account.pk], amount="1", reason="r", key="x"
    )

    # then
    assert response.status_code == 302
    assert messages_of(response) == ["No action selected."]
    assert ledger_state(account) == before


# --- refunds, adjustments, approval -------------------------------------------------------


def test_super_admin_refunds_and_a_failure_is_reported_per_account(
    super_admin_client, account, other_account
):
    # given: alice holds 15.75, bob 20.00
    _, key = form_page(super_admin_client, "refund_credits", [account.pk, other_account.pk])

    # when
    response = apply(
        super_admin_client,
        "refund_credits",
        [account.pk, other_account.pk],
        amount="18",
        reason="Charged twice",
        key=key,
    )

    # then
    assert messages_of(response) == [
        "Nothing written for alice@example.com: The account does not hold enough credits. "
        "Balance 15.75; asked for 18.00.",
        "Refunded 18.00 credits of bob@example.com; balance now 2.00.",
    ]
    balances = ledger_state(account, other_account).balances
    assert balances == [Decimal("15.75"), Decimal("2.00")]
    refund = other_account.entries.order_by("-id").first()
    assert (refund.kind, refund.amount, refund.reason) == (
        EntryKind.REFUND,
        Decimal("-18.00"),
        "Charged twice",
    )


def test_credit_admin_adjusts_down(credit_admin_client, account):
    # given
    _, key = form_page(credit_admin_client, "adjust_credits", [account.pk])

    # when
    response = apply(
        credit_admin_client,
        "adjust_credits",
        [account.pk],
        amount="-5.75",
        reason="Double-counted usage",
        key=key,
    )

    # then
    assert messages_of(response) == [
        "Adjusted alice@example.com by -5.75 credits; balance now 10.00."
    ]
    account.refresh_from_db()
    assert account.balance == Decimal("10.00") == ledger_sum(account=account)


def test_an_adjustment_of_zero_is_refused(credit_admin_client, account):
    # given
    _, key = form_page(credit_admin_client, "adjust_credits", [account.pk])
    before = ledger_state(account)

    # when
    response = apply(
        credit_admin_client, "adjust_credits", [account.pk], amount="0", reason="r", key=key
    )

    # then
    assert "An adjustment must not be zero." in response.content.decode()
    assert ledger_state(account) == before


def test_above_the_threshold_a_grant_waits_for_approval(super_admin_client, super_admin, account):
    # given
    _, key = form_page(super_admin_client, "grant_credits", [account.pk])
    entries_before = CreditTransaction.objects.count()

    # when
    response = apply(
        super_admin_client,
        "grant_credits",
        [account.pk],
        amount="5000.01",
        reason="Enterprise contract",
        key=key,
    )

    # then
    request = CreditApprovalRequest.objects.get()
    assert messages_of(response) == [
        f"Request #{request.pk} for alice@example.com: 5000.01 credits are above the approval "
        "threshold and wait for another staff member's approval."
    ]
    assert request.requested_by_id == super_admin.pk
    assert CreditTransaction.objects.count() == entries_before
    account.refresh_from_db()
    assert account.balance == Decimal("15.75")


def test_a_grant_for_a_user_without_profile_still_lists(credit_admin_client):
    # given: a user onboarded elsewhere, with an account but no profile
    user = ProvisionedUserFactory(username="carol", email="carol@example.com")
    UserProfile.objects.filter(user=user).delete()

    # when
    response = credit_admin_client.get(ACCOUNTS)

    # then
    assert response.status_code == 200
    assert "carol@example.com" in response.content.decode()
