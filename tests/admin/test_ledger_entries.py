"""Ledger entries in the admin: read-only, filterable, and exported to CSV as a stream of the
filtered list."""

import csv
import io
from decimal import Decimal

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from credits.services import credit_grant
from tests.admin.conftest import changelist_url, client_for

pytestmark = pytest.mark.django_db

ENTRIES = changelist_url("credits.credittransaction")
EXPORT = reverse("admin:credits_credittransaction_export")


def rows_of(response):
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_the_list_links_to_the_export_of_the_same_filters(credit_admin_client, account):
    # when
    response = credit_admin_client.get(ENTRIES, {"kind__exact": "spend"})

    # then
    assert f'href="{EXPORT}?kind__exact=spend"' in response.content.decode()


def test_export_streams_every_entry_as_csv(credit_admin_client, credit_admin, account):
    # given
    credit_grant(
        account=account,
        amount=Decimal("7.00"),
        idempotency_key="bonus",
        actor=credit_admin,
        reason="=HYPERLINK(evil)",
    )

    # when
    response = credit_admin_client.get(EXPORT)

    # then
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="ledger-entries-')
    rows = rows_of(response)
    assert [(row["kind"], row["amount"], row["balance_after"]) for row in rows] == [
        ("grant", "7.00", "22.75"),
        ("spend", "-4.25", "15.75"),
        ("grant", "20.00", "20.00"),
    ]
    newest = rows[0]
    assert newest["user_email"] == "alice@example.com"
    assert newest["actor_email"] == "credit-admin@example.com"
    assert newest["idempotency_key"] == "bonus"
    # a formula in free text is defused for spreadsheets
    assert newest["reason"] == "'=HYPERLINK(evil)"
    assert list(rows[0]) == [
        "id",
        "created_at",
        "account_id",
        "user_email",
        "kind",
        "amount",
        "balance_before",
        "balance_after",
        "source",
        "description",
        "idempotency_key",
        "actor_email",
        "reason",
        "reverses_id",
        "migrated_from",
        "stripe_event_id",
    ]


def test_export_keeps_the_filters_and_search(credit_admin_client, account, other_account):
    # when
    spends = rows_of(credit_admin_client.get(EXPORT, {"kind__exact": "spend"}))
    bobs = rows_of(credit_admin_client.get(EXPORT, {"q": "bob@example.com"}))
    by_key = rows_of(credit_admin_client.get(EXPORT, {"q": "alice-usage-1"}))

    # then
    assert [(row["user_email"], row["kind"]) for row in spends] == [("alice@example.com", "spend")]
    assert [(row["user_email"], row["kind"]) for row in bobs] == [("bob@example.com", "grant")]
    assert [row["amount"] for row in by_key] == ["-4.25"]


def test_export_reads_the_rows_while_streaming(credit_admin_client, account):
    # given: a response whose rows have not been read yet
    response = credit_admin_client.get(EXPORT)
    credit_grant(account=account, amount=Decimal("1.00"), idempotency_key="late")

    # when
    rows = rows_of(response)

    # then: the entry written after the response was made is in it: the rows are read
    # (through .iterator()) only as the body is consumed, never loaded up front
    assert len(rows) == 2 + 1
    assert rows[0]["idempotency_key"] == "late"


def test_export_with_a_bad_filter_goes_back_to_the_list(credit_admin_client, account):
    # when
    response = credit_admin_client.get(EXPORT, {"no_such_field": "1"})

    # then
    assert response.status_code == 302
    assert response["Location"] == f"{ENTRIES}?e=1"


def test_export_is_refused_without_view_permission(bare_staff, account):
    # when
    response = client_for(bare_staff).get(EXPORT)

    # then
    assert response.status_code == 403


def test_entries_filter_by_source_and_search_by_user_id(credit_admin_client, account):
    # when
    by_source = credit_admin_client.get(ENTRIES, {"source__exact": "api"})
    by_user = credit_admin_client.get(ENTRIES, {"q": str(account.user_id)})

    # then
    assert [entry.kind for entry in by_source.context["cl"].result_list] == ["spend"]
    assert {entry.account_id for entry in by_user.context["cl"].result_list} == {account.pk}
    assert len(by_user.context["cl"].result_list) == 2
