"""migrate_credits: each mode, its output (text and JSON) and its exit code."""

import io
import sys
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from billing.models import LegacyAccount, LegacyBilling, UserProfile
from credits.models import CreditAccount, CreditTransaction
from migrations_app.models import MigrationRun, RunMode, RunStatus, UserMigration
from tests.factories import LegacyAccountFactory, LegacyBillingFactory
from tests.helpers import ALL_SOURCES, Terminal, sources_args, table_contents

pytestmark = pytest.mark.django_db

User = get_user_model()

WRITTEN_BY_EXECUTE = (
    MigrationRun,
    UserMigration,
    CreditAccount,
    CreditTransaction,
    UserProfile,
    LegacyBilling,
)

REPORT_KEYS = {
    "mode",
    "run_id",
    "sources",
    "parameters",
    "users",
    "per_source",
    "legacy_totals",
    "credits",
    "rounding_remainder",
    "history_entries",
    "skipped",
    "failures",
    "data_mismatches",
}
OUTCOME_KEYS = {
    "user_id",
    "source",
    "outcome",
    "credits",
    "legacy_amounts",
    "rounding_remainder",
    "history_entries",
    "note",
    "error",
    "data_mismatch",
}
PARAMETER_KEYS = {"rates", "percent", "users", "batch_size", "workers", "keep_legacy", "notify"}


# --- analyze --------------------------------------------------------------------------------


def test_analyze_json(migrate, legacy_world):
    # given: the realistic legacy data of all four sources (legacy_world)
    # when
    _, report = migrate("--analyze", "--format", "json", *sources_args(), expect=1)
    # then
    assert set(report) == REPORT_KEYS | {"analysis"}
    assert report["mode"] == "analyze"
    assert report["analysis"] == {
        "users": 13,
        "active_users_30d": 2,  # power and regular; quiet's operations are 100 days old
        "average_operations_per_user": "214.7",  # (301 + 340 + 3) / 3
        "high_usage_users": 1,  # power (301 in 30 days), not regular (exactly 300)
        "data_mismatches": 1,
    }
    # gold's unknown plan fails it in user_fields as in usage_tiers
    assert report["users"] == {"migrate": 14, "failed": 4}
    assert report["credits"] == "1640.38"
    assert report["legacy_totals"]["USD"] == "13.83"
    assert report["legacy_totals"]["UAH"] == "1012.47"
    assert {item["user_id"] for item in report["failures"]} == {
        legacy_world.negative.pk,
        legacy_world.overdrawn.pk,
        legacy_world.gold.pk,
    }


def test_analyze_text(migrate, legacy_world):
    # given: the realistic legacy data of all four sources (legacy_world)
    # when
    _, out = migrate("--analyze", *sources_args(), expect=1)
    # then
    assert "== migrate_credits: Analysis ==" in out
    assert "  users                          13" in out
    assert "  active users 30d               2" in out
    assert "  average operations per user    214.7" in out
    assert "  high usage users               1" in out
    assert "  data mismatches                1" in out
    assert "user migrations (user x source): 14 would be migrated" in out
    assert "credits would be granted: 1,640.38" in out
    assert "would fail: 4" in out
    assert "[user_fields]: would fail: unknown plan 'gold' (not in CREDITS_PLANS)" in out


# --- dry run --------------------------------------------------------------------------------


def test_dry_run_is_the_default_mode(migrate, legacy_world):
    # given: the realistic legacy data of all four sources (legacy_world)
    # when: some users would fail (exit 1)
    _, out = migrate(expect=1)
    # then
    assert "== migrate_credits: Dry run: nothing will be written ==" in out
    assert "sources: user_fields, usd_balance" in out
    assert "Dry run: nothing was written. Run with --execute to migrate." in out
    assert not MigrationRun.objects.exists()
    assert not UserMigration.objects.exists()


def test_dry_run_shows_the_plan_user_by_user_and_a_summary(migrate, legacy_world):
    # given: the realistic legacy data of all four sources (legacy_world)
    # when
    _, out = migrate("--dry-run", *sources_args("usd_balance"), expect=1)
    # then
    assert (
        f"  user {legacy_world.mixed.pk:>8} [usd_balance] migrate           3.63 credits"
        "  from 3.33 USD, 12.34 UAH" in out
    )
    assert f"user {legacy_world.overdrawn.pk} overdrawn@example.com [usd_balance]" in out
    assert "user migrations (user x source): 4 would be migrated" in out
    assert "  legacy UAH        1,012.47" in out
    assert "  legacy USD        13.83" in out
    assert "credits would be granted: 38.13" in out
    assert "rounding remainder kept: -0.00072" in out  # -0.00384 + 0.00312
    assert "would fail: 1" in out


def test_dry_run_json(migrate, legacy_world):
    # given: the realistic legacy data of all four sources (legacy_world)
    # when
    _, report = migrate("--dry-run", "--format", "json", *sources_args("usd_balance"), expect=1)
    # then
    assert set(report) == REPORT_KEYS
    assert report["mode"] == "dry_run"
    assert report["run_id"] is None
    assert set(report["parameters"]) == PARAMETER_KEYS
    assert report["parameters"]["rates"] == {"USD": "1.0", "UAH": "0.024"}
    assert report["users"] == {"migrate": 4, "failed": 1}
    assert report["credits"] == "38.13"
    (failure,) = report["failures"]
    assert set(failure) == OUTCOME_KEYS
    assert failure["credits"] == "0.00"


# --- execute --------------------------------------------------------------------------------


def test_execute_with_yes_migrates_and_records_the_run(migrate):
    # given
    legacy = LegacyBillingFactory(balance_usd=Decimal("5.00"))
    # when
    _, out = migrate("--execute", "--yes", *sources_args("usd_balance"))
    # then
    run = MigrationRun.objects.get()
    assert run.mode == RunMode.EXECUTE
    assert run.status == RunStatus.COMPLETED
    assert run.processed == run.total == 1
    assert run.finished_at is not None
    assert f"== migrate_credits: Execute (run {run.pk}) ==" in out
    assert "user migrations (user x source): 1 were migrated" in out
    assert "credits were granted: 5.00" in out
    assert UserMigration.objects.get(user_id=legacy.user_id).run == run


def test_execute_json(migrate):
    # given
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    # when
    _, report = migrate("--execute", "--yes", "--format", "json", *sources_args("usd_balance"))
    # then
    assert set(report) == REPORT_KEYS | {"backups"}
    assert report["mode"] == "execute"
    assert report["run_id"] == MigrationRun.objects.get().pk
    assert report["users"] == {"migrated": 1}
    assert report["credits"] == "5.00"
    assert len(report["backups"]) == 1


def test_execute_with_failures_exits_1_and_marks_the_run(migrate):
    # given
    LegacyBillingFactory(balance_usd=Decimal("-1.00"))
    LegacyBillingFactory(balance_usd=Decimal("1.00"))
    # when
    _, out = migrate("--execute", "--yes", *sources_args("usd_balance"), expect=1)
    # then
    assert "1 users failed or were refused" in out
    assert MigrationRun.objects.get().status == RunStatus.COMPLETED_WITH_ERRORS


def test_execute_without_yes_and_without_a_terminal_refuses(migrate, monkeypatch):
    # given
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    LegacyAccountFactory(credits_balance=Decimal("5.00"))
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    before = table_contents(*WRITTEN_BY_EXECUTE)
    # when
    _, out = migrate("--execute", expect=2)
    # then
    assert "Refusing to execute without a terminal to confirm on; pass --yes." in out
    assert table_contents(*WRITTEN_BY_EXECUTE) == before


def test_execute_on_a_terminal_asks_and_stops_without_yes(migrate, monkeypatch):
    # given
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    before = table_contents(*WRITTEN_BY_EXECUTE)
    # when
    _, out = migrate("--execute", *sources_args("usd_balance"), expect=2)
    # then
    assert "Not confirmed; nothing was written." in out
    assert table_contents(*WRITTEN_BY_EXECUTE) == before


def test_execute_on_a_terminal_goes_on_when_confirmed(migrate, monkeypatch):
    # given
    legacy = LegacyBillingFactory(balance_usd=Decimal("5.00"))
    prompts = []
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or "yes")
    # when
    migrate("--execute", *sources_args("usd_balance"))
    # then
    assert prompts == ["Migrate 1 user (5.00 credits) now? Type yes to go on: "]
    assert CreditAccount.objects.get(user_id=legacy.user_id).balance == Decimal("5.00")


# --- status ---------------------------------------------------------------------------------


def test_status_before_and_after_execute(migrate):
    # given
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    LegacyBillingFactory(balance_usd=Decimal("6.00"))
    # when
    _, before = migrate("--status", "--format", "json", *sources_args("usd_balance"))
    migrate("--execute", "--yes", *sources_args("usd_balance"))
    _, after = migrate("--status", "--format", "json", *sources_args("usd_balance"))
    # then
    assert set(before) == {"status", "summary", "recommendation", "failures"}
    assert before["status"] == "migration_needed"
    assert before["summary"]["users_to_migrate"] == 2
    assert before["summary"]["sources"] == {"usd_balance": {"statuses": {}, "to_migrate": 2}}
    assert after["status"] == "up_to_date"
    assert after["summary"]["users_to_migrate"] == 0
    assert after["summary"]["failed"] == 0
    assert after["summary"]["sources"] == {
        "usd_balance": {"statuses": {"COMPLETED": 2}, "to_migrate": 0}
    }
    assert set(after["summary"]) == {
        "users",
        "profiles",
        "pro_users",
        "pro_profiles",
        "users_to_migrate",
        "failed",
        "data_mismatches",
        "sources",
    }


def test_status_text_counts_failures(migrate, legacy_world):
    # given
    migrate("--execute", "--yes", *sources_args(), expect=1)
    # when
    _, out = migrate("--status", *sources_args())
    # then
    assert "== migrate_credits: Status ==" in out
    assert "status: migration needed" in out
    assert "  failed             4" in out
    assert "  data mismatches    1" in out
    assert "  usd_balance: 1 to migrate; completed 4, failed 1" in out
    assert "4 failed: read their errors" in out


# --- verbose --------------------------------------------------------------------------------


def test_the_default_caps_the_user_lines_and_verbose_lists_every_user(migrate):
    # given
    users = [LegacyBillingFactory(balance_usd=Decimal("1.00")).user_id for _ in range(23)]
    source = sources_args("usd_balance")
    # when
    _, capped = migrate("--dry-run", *source)
    _, verbose = migrate("--dry-run", "--verbose", *source)
    # then
    capped_lines = [line for line in capped.splitlines() if line.startswith("  user ")]
    verbose_lines = [line for line in verbose.splitlines() if line.startswith("  user ")]
    assert len(capped_lines) == 20
    assert "  ... (more users; --verbose lists them all)" in capped
    assert len(verbose_lines) == 23
    assert "--verbose lists them all" not in verbose
    assert [int(line.split()[1]) for line in verbose_lines] == users
    assert "user migrations (user x source): 23 would be migrated" in capped


# --- JSON of every mode ---------------------------------------------------------------------


def test_json_keys_are_stable_across_modes(migrate, legacy_world):
    # given
    source = sources_args(*ALL_SOURCES)
    # when
    _, dry_run = migrate("--format", "json", *source, expect=1)
    _, executed = migrate("--execute", "--yes", "--format", "json", *source, expect=1)
    _, verified = migrate("--verify", "--format", "json", *source)
    _, rolled_back = migrate(
        "--rollback", "--yes", "--user", str(legacy_world.pro.pk), "--format", "json", *source
    )
    _, status = migrate("--status", "--format", "json", *source)
    # then
    assert set(dry_run) == REPORT_KEYS
    assert set(executed) == REPORT_KEYS | {"backups"}
    # a rollback also says what its users had spent, what force took instead, what is short
    assert set(rolled_back) == REPORT_KEYS | {
        "spent_before_rollback",
        "taken_from_account",
        "shortfall",
    }
    assert set(verified) == {"mode", "sources", "clean", "users", "totals", "discrepancies"}
    assert set(status) == {"status", "summary", "recommendation", "failures"}
    assert dry_run["sources"] == list(ALL_SOURCES)
    # amounts are strings, never floats
    assert dry_run["credits"] == executed["credits"] == "1640.38"
    assert rolled_back["users"] == {"rolled_back": 3}
    assert rolled_back["credits"] == "-470.25"  # 260 + 10.50 + 199.75 (usage_tiers)
    assert rolled_back["spent_before_rollback"] == rolled_back["shortfall"] == "0.00"
    assert all(
        isinstance(value, str)
        for totals in verified["totals"].values()
        for value in totals.values()
    )


def test_legacy_rows_of_users_that_no_longer_exist_are_skipped(migrate):
    # given: legacy rows name users by id, without a constraint
    LegacyBilling.objects.create(user_id=987654, balance_usd=Decimal("5.00"))
    LegacyAccount.objects.create(user_id=987654, credits_balance=Decimal("5.00"))
    kept = LegacyBillingFactory(balance_usd=Decimal("1.00"))
    # when
    _, report = migrate("--execute", "--yes", "--format", "json")
    # then
    assert report["skipped"] == {"no such user": 2}
    assert report["users"] == {"skipped": 2, "migrated": 1}
    assert not UserMigration.objects.filter(user_id=987654).exists()
    assert LegacyBilling.objects.get(user_id=987654).balance_usd == Decimal("5.00")
    assert CreditAccount.objects.get(user_id=kept.user_id).balance == Decimal("1.00")
    assert User.objects.count() == 1


def test_a_user_is_marked_migrated_once_every_configured_source_is_done(migrate):
    # given: data in both default sources
    legacy = LegacyBillingFactory(balance_usd=Decimal("1.00"))
    LegacyAccountFactory(user=legacy.user, credits_balance=Decimal("2.00"))
    # when
    migrate("--execute", "--yes", *sources_args("usd_balance"))
    # then
    profile = UserProfile.objects.get(user_id=legacy.user_id)
    assert profile.migration_completed_at is None
    # when
    migrate("--execute", "--yes", *sources_args("user_fields"))
    # then
    profile.refresh_from_db()
    assert profile.migration_completed_at is not None
    assert CreditAccount.objects.get(user_id=legacy.user_id).balance == Decimal("3.00")


def test_execute_with_json_on_a_terminal_needs_yes_rather_than_a_prompt(migrate, monkeypatch):
    # given: a prompt would break the JSON on stdout
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: pytest.fail("asked on stdout"))
    before = table_contents(*WRITTEN_BY_EXECUTE)
    # when
    _, out = migrate("--execute", "--format", "json", *sources_args("usd_balance"), expect=2)
    # then
    assert "--execute --format json is for scripts: pass --yes." in out
    assert table_contents(*WRITTEN_BY_EXECUTE) == before
