"""The migration over HTTP, for staff: where it stands, start a run, follow a run, roll users
back; and the monitoring checks. Thin: parse, call a service or selector, render."""

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from core.api.schema import error_responses
from core.api.views import StaffApiView
from credits.api.fields import StrictBooleanField, StrictDecimalField
from migrations_app.api_examples import (
    ROLLBACK_EXAMPLES,
    RUN_EXAMPLES,
    RUN_START_ERRORS,
    RUN_START_EXAMPLES,
    STATUS_EXAMPLES,
)
from migrations_app.engine.rollback import ROLLBACK_REASON
from migrations_app.run_request import RunRequest
from migrations_app.selectors import run_progress
from migrations_app.services import (
    MAX_ID,
    migration_rollback,
    migration_run_launch,
    migration_run_read,
    migration_status_read,
)
from migrations_app.sources import SOURCES

RATE_CURRENCIES = ("USD", "UAH")


# --- status and start ---------------------------------------------------------------------


class SourceStatusSerializer(serializers.Serializer):
    statuses = serializers.DictField(child=serializers.IntegerField())
    to_migrate = serializers.IntegerField()


class StatusSummarySerializer(serializers.Serializer):
    users = serializers.IntegerField()
    profiles = serializers.IntegerField()
    pro_users = serializers.IntegerField()
    pro_profiles = serializers.IntegerField()
    users_to_migrate = serializers.IntegerField()
    failed = serializers.IntegerField()
    data_mismatches = serializers.IntegerField()
    sources = serializers.DictField(child=SourceStatusSerializer())


class StatusFailureSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    email = serializers.CharField(allow_blank=True)
    source = serializers.CharField(help_text="The source name, e.g. usd_balance.")
    error = serializers.CharField(allow_blank=True)


class StatusOutputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["migration_needed", "in_progress", "up_to_date"])
    summary = StatusSummarySerializer()
    recommendation = serializers.CharField()
    failures = StatusFailureSerializer(
        many=True,
        help_text="The failed users (the first 100 by user id) with the error each recorded.",
    )


class RunInputSerializer(serializers.Serializer):
    sources = serializers.ListField(
        child=serializers.ChoiceField(choices=list(SOURCES)),
        required=False,
        allow_empty=False,
        min_length=1,
        max_length=len(SOURCES),
        help_text="Default: CREDITS_MIGRATION_SOURCES.",
    )
    dry_run = StrictBooleanField(
        default=True,
        help_text=(
            "Default true: a dry run, which writes nothing but its report. Send false to "
            "migrate (needs migrations_app.run_migration; a dry run needs "
            "migrations_app.preview_migration)."
        ),
    )
    percent = StrictDecimalField(
        max_digits=5,
        decimal_places=2,
        max_value=Decimal("100"),
        default=Decimal("100"),
        help_text="Staged rollout: users whose stable bucket is below P percent.",
    )
    rates = serializers.DictField(
        child=StrictDecimalField(max_digits=12, decimal_places=6),
        required=False,
        help_text='Credits per unit, e.g. {"USD": "1.0", "UAH": "0.024"}.',
    )
    users = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        allow_empty=False,
        min_length=1,
        max_length=1000,
        help_text="Only these user ids (they are migrated again after a rollback).",
    )
    batch_size = serializers.IntegerField(min_value=1, max_value=10_000, required=False)
    keep_legacy = StrictBooleanField(default=False)
    notify = StrictBooleanField(default=True, help_text="False: send no emails.")

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)

    def validate_rates(self, value):
        unknown = [currency for currency in value if currency not in RATE_CURRENCIES]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown currency {', '.join(unknown)}; rates are for USD and UAH."
            )
        return value

    def validate_users(self, value):
        ids = sorted(set(value))
        found = set(get_user_model().objects.filter(pk__in=ids).values_list("pk", flat=True))
        missing = [user_id for user_id in ids if user_id not in found]
        if missing:
            raise serializers.ValidationError(f"No such users: {missing[:20]}.")
        return ids


class RunStartedSerializer(serializers.Serializer):
    run_id = serializers.IntegerField()
    mode = serializers.CharField()
    status = serializers.CharField()
    status_url = serializers.CharField()


class MigrationStatusApi(StaffApiView):
    @extend_schema(
        summary="Where the migration stands",
        responses={200: StatusOutputSerializer, **error_responses(401, 403, 429)},
        examples=STATUS_EXAMPLES,
    )
    def get(self, request):
        return Response(StatusOutputSerializer(migration_status_read(actor=request.user)).data)

    @extend_schema(
        summary="Start a migration run (a dry run unless dry_run is false)",
        description=(
            'A dry run unless the body says "dry_run": false. Answers 202 at once; the run '
            "goes on on Celery workers (inline when Celery is "
            "eager). A dry run keeps its report on the run and writes nothing else. A second "
            "execute run of a source while one is running is refused with 409. A rate above "
            "CREDITS_MIGRATION_RATE_MAX needs credits.adjust_unlimited (else 400)."
        ),
        request=RunInputSerializer,
        responses={
            202: RunStartedSerializer,
            **error_responses(400, 401, 403, 409, 429, examples=RUN_START_ERRORS),
        },
        examples=RUN_START_EXAMPLES,
    )
    def post(self, request):
        serializer = RunInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = migration_run_launch(
            request=RunRequest.from_api(serializer.validated_data),
            actor=request.user,
            now=timezone.now(),
        )
        run.refresh_from_db(fields=["status"])  # eager Celery (no broker) has run it already
        url = reverse("migrate-run", kwargs={"run_id": run.pk})
        body = {"run_id": run.pk, "mode": run.mode, "status": run.status, "status_url": url}
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


# --- one run ------------------------------------------------------------------------------


class RunProgressSerializer(serializers.Serializer):
    processed = serializers.IntegerField()
    total = serializers.IntegerField()
    percent = serializers.FloatField(allow_null=True)
    batches_done = serializers.IntegerField()
    batches_total = serializers.IntegerField()


class RunErrorSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    source = serializers.CharField()
    error = serializers.CharField()


class RunOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sources = serializers.ListField(child=serializers.CharField())
    mode = serializers.CharField()
    status = serializers.CharField()
    parameters = serializers.DictField()
    progress = RunProgressSerializer()
    stats = serializers.DictField(
        help_text="Users by outcome, legacy totals, credits (strings), skipped reasons."
    )
    errors = RunErrorSerializer(many=True, help_text="The first 100 users that failed.")
    failed = serializers.IntegerField()
    error = serializers.CharField(allow_blank=True)
    triggered_by = serializers.IntegerField(allow_null=True)
    started_at = serializers.DateTimeField()
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class MigrationRunApi(StaffApiView):
    @extend_schema(
        summary="A migration run: progress, stats and errors",
        responses={200: RunOutputSerializer, **error_responses(401, 403, 404, 429)},
        examples=RUN_EXAMPLES,
    )
    def get(self, request, run_id: int):
        if run_id > MAX_ID:  # beyond a bigint: a malformed id, 404 as "abc" is at the router
            raise Http404
        run = migration_run_read(actor=request.user, run_id=run_id)
        if run is None:
            raise Http404
        return Response(RunOutputSerializer(run_progress(run=run)).data)


# --- rollback -----------------------------------------------------------------------------


class RollbackInputSerializer(serializers.Serializer):
    users = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        allow_empty=False,
        min_length=1,
        max_length=1000,
        help_text="The user ids to roll back.",
    )
    sources = serializers.ListField(
        child=serializers.ChoiceField(choices=list(SOURCES)),
        required=False,
        allow_empty=False,
        min_length=1,
        max_length=len(SOURCES),
        help_text="Default: CREDITS_MIGRATION_SOURCES.",
    )
    force = StrictBooleanField(
        default=False,
        help_text=(
            "Also take migrated credits the user already spent from their other credits, as "
            "far as they go, and record it (needs credits.adjust_unlimited). Without it what "
            "is left of the migration's lot is reversed and what was spent stays spent."
        ),
    )
    notify = StrictBooleanField(default=True, help_text="False: send no emails.")
    reason = serializers.CharField(max_length=1000, default=ROLLBACK_REASON)

    def validate_users(self, value):
        ids = sorted(set(value))
        found = set(get_user_model().objects.filter(pk__in=ids).values_list("pk", flat=True))
        missing = [user_id for user_id in ids if user_id not in found]
        if missing:
            raise serializers.ValidationError(f"No such users: {missing[:20]}.")
        return ids


class RollbackOutputSerializer(serializers.Serializer):
    run_id = serializers.IntegerField()
    status_url = serializers.CharField()
    users = serializers.DictField(
        child=serializers.IntegerField(), help_text="Rolled-back, refused, skipped users."
    )
    credits = serializers.CharField(help_text="Credits reversed (negative), as a string.")
    spent_before_rollback = serializers.CharField(
        help_text="Migrated credits the users had spent: without force they stay spent."
    )
    taken_from_account = serializers.CharField(
        help_text="What force took in their place from the users' other credits."
    )
    shortfall = serializers.CharField(
        help_text="Migrated credits left unreversed (spent, and not taken back by force)."
    )
    failures = serializers.ListField(
        child=serializers.DictField(), help_text="The users refused, and why."
    )


class MigrationRollbackApi(StaffApiView):
    @extend_schema(
        summary="Roll back users' migrations",
        description=(
            "Appends reversal entries and restores the legacy values, user by user (nothing "
            "is deleted). Needs migrations_app.rollback_migration; force needs "
            "credits.adjust_unlimited (else 403, and nothing changes). What is left of each "
            "migration's own lot is reversed; what a user spent of it stays spent (reported) "
            "unless force takes it from their other credits, as far as they go. A user whose "
            "active holds reserve credits of the migration is refused without force and "
            "listed in failures."
        ),
        request=RollbackInputSerializer,
        responses={200: RollbackOutputSerializer, **error_responses(400, 401, 403, 429)},
        examples=ROLLBACK_EXAMPLES,
    )
    def post(self, request):
        serializer = RollbackInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        report = migration_rollback(
            actor=request.user,
            force=data["force"],
            notify=data["notify"],
            sources=data.get("sources"),
            user_ids=data["users"],
            reason=data["reason"],
        ).as_dict()
        url = reverse("migrate-run", kwargs={"run_id": report["run_id"]})
        body = {
            "run_id": report["run_id"],
            "status_url": url,
            "users": report["users"],
            "credits": report["credits"],
            "spent_before_rollback": report["spent_before_rollback"],
            "taken_from_account": report["taken_from_account"],
            "shortfall": report["shortfall"],
            "failures": report["failures"],
        }
        return Response(RollbackOutputSerializer(body).data)
