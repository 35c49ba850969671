"""Migration admin: users' migrations and runs, read-only, with two staff actions that call the
engine ("Roll back" after a confirmation page, "Retry failed") and a dashboard page.

Nothing here decides anything: the engine's `rollback_preview` and the services'
`migration_rollback` and `migration_run_retry` (which check the permissions) do the work,
and the dashboard reads `migrations_app.selectors`.
"""

import json
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from credits.admin import CompactListMedia, ReadOnlyAdminMixin, truncated
from migrations_app.authorization import (
    RETRY_PERMISSION,
    ROLLBACK_PERMISSION,
    RUN_PERMISSION,
    UNLIMITED_PERMISSION,
)
from migrations_app.engine.preview import migration_preview_user
from migrations_app.engine.report import Outcome
from migrations_app.engine.rollback import ROLLBACK_REASON, rollback_preview, rollback_totals
from migrations_app.exceptions import MigrationError
from migrations_app.models import MigrationRun, MigrationStatus, UserMigration
from migrations_app.run_request import RunRequest
from migrations_app.selectors import migration_dashboard
from migrations_app.services import migration_rollback, migration_run_launch, migration_run_retry

# Which buttons to show; the services refuse without these permissions all the same.
# Forcing takes spent migrated credits from a user's other credits: a larger adjustment.
FORCE_PERMISSION = UNLIMITED_PERMISSION


def pretty_json(value) -> str:
    return format_html(
        '<pre class="pretty-json">{}</pre>',
        json.dumps(value, indent=2, sort_keys=True, cls=DjangoJSONEncoder),
    )


class RollbackForm(forms.Form):
    reason = forms.CharField(
        max_length=1000,
        initial=ROLLBACK_REASON,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Recorded on every reversal entry with your name.",
    )
    force = forms.BooleanField(
        required=False,
        label="Force",
        help_text=(
            "For users who spent migrated credits: also take what they spent from their "
            "other credits, as far as they go, and record it. Without it what is left of the "
            "migration is reversed and what was spent stays spent."
        ),
    )
    notify = forms.BooleanField(
        required=False,
        initial=True,
        label="Email the users",
        help_text=('Each user rolled back gets the "your account was rolled back" email, once.'),
    )


@admin.register(UserMigration)
class UserMigrationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "user_email",
        "source",
        "status",
        "credits",
        "legacy",
        "attempts",
        "mismatch",
        "migrated_on",
        "short_error",
    ]
    list_filter = ["status", "source", "data_mismatch"]
    search_fields = ["user__email", "user__username", "=user__id"]
    search_help_text = "Search by email, username or user id."
    list_select_related = ["user"]
    readonly_fields = [
        "user",
        "source",
        "status",
        "legacy_amount",
        "legacy_currency",
        "rate",
        "pretty_legacy_amounts",
        "pretty_rates",
        "initial_credits_granted",
        "rounding_remainder",
        "historical_operations",
        "data_mismatch",
        "mismatch_detail",
        "attempts",
        "generation",
        "run",
        "migration_date",
        "updated_at",
        "pretty_error",
        "pretty_rollback_data",
    ]
    fields = readonly_fields
    actions = ["roll_back", "retry_failed"]
    change_list_template = "admin/migrations_app/usermigration/change_list.html"

    @admin.display(description="user", ordering="user__email")
    def user_email(self, row):
        return row.user.email or row.user.get_username()

    @admin.display(description="credits", ordering="initial_credits_granted")
    def credits(self, row):
        return row.initial_credits_granted

    @admin.display(description="mismatch", boolean=True, ordering="data_mismatch")
    def mismatch(self, row):
        return row.data_mismatch

    @admin.display(description="migrated", ordering="migration_date")
    def migrated_on(self, row):
        return row.migration_date.strftime("%Y-%m-%d %H:%M") if row.migration_date else "-"

    @admin.display(description="legacy")
    def legacy(self, row):
        return ", ".join(f"{amount} {currency}" for currency, amount in row.legacy_amounts.items())

    Media = CompactListMedia

    @admin.display(description="error")
    def short_error(self, row):
        return truncated(row.error_message, 60)

    @admin.display(description="error")
    def pretty_error(self, row):
        return format_html("<pre>{}</pre>", row.error_message) if row.error_message else "-"

    @admin.display(description="rollback data")
    def pretty_rollback_data(self, row):
        return pretty_json(row.rollback_data)

    @admin.display(description="legacy amounts")
    def pretty_legacy_amounts(self, row):
        return pretty_json(row.legacy_amounts)

    @admin.display(description="rates")
    def pretty_rates(self, row):
        return pretty_json(row.rates)

    def has_rollback_permission(self, request):
        return request.user.has_perm(ROLLBACK_PERMISSION)

    def has_retry_permission(self, request):
        return request.user.has_perm(RETRY_PERMISSION)

    @admin.action(description="Roll back selected migrations", permissions=["rollback"])
    def roll_back(self, request, queryset):
        pks = list(queryset.values_list("pk", flat=True))
        can_force = request.user.has_perm(FORCE_PERMISSION)
        if "apply" in request.POST:
            form = RollbackForm(request.POST)
            if form.is_valid() and form.cleaned_data["force"] and not can_force:
                form.add_error("force", "Only a billing super admin may force a rollback.")
            if form.is_valid():
                emails = _emails(queryset.values_list("user_id", flat=True))
                try:
                    migration_rollback(
                        pks=pks,
                        actor=request.user,
                        force=form.cleaned_data["force"],
                        notify=form.cleaned_data["notify"],
                        reason=form.cleaned_data["reason"],
                        on_user=lambda outcome: self._report(
                            request, outcome, emails, reason=form.cleaned_data["reason"]
                        ),
                    )
                except MigrationError as refused:
                    self.message_user(request, refused.message, messages.ERROR)
                return None
            self.message_user(
                request, "Nothing was rolled back: correct the errors below.", messages.ERROR
            )
        else:
            form = RollbackForm()
        if not can_force:
            form.fields["force"].disabled = True
        lines = rollback_preview(pks)
        context = {
            **self.admin_site.each_context(request),
            "title": "Roll back migrations",
            "opts": self.model._meta,
            "form": form,
            "lines": lines,
            "totals": rollback_totals(lines),
            "can_force": can_force,
            "action": "roll_back",
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(
            request, "admin/migrations_app/usermigration/rollback_confirmation.html", context
        )

    @admin.action(description="Retry failed migrations", permissions=["retry"])
    def retry_failed(self, request, queryset):
        others = queryset.exclude(status=MigrationStatus.FAILED).count()
        pks = list(queryset.filter(status=MigrationStatus.FAILED).values_list("pk", flat=True))
        if not pks:
            self.message_user(request, "None of the selected migrations failed.", messages.WARNING)
            return None
        emails = _emails(queryset.values_list("user_id", flat=True))
        try:
            migration_run_retry(
                pks=pks,
                actor=request.user,
                on_user=lambda outcome: self._report(request, outcome, emails),
            )
        except MigrationError as refused:  # already running, not allowed, or out of bounds
            self.message_user(request, refused.message, messages.ERROR)
            return None
        if others:
            self.message_user(
                request, f"{others} selected migrations had not failed; left alone.", messages.INFO
            )
        return None

    def _report(self, request, outcome, emails: dict[int, str], reason: str = ""):
        """One message per user the engine handled (`emails` by user id, loaded once), and an
        admin LogEntry on the migration for each one rolled back or migrated again."""
        # Messages never start with an email: the admin capitalises a message's first letter.
        email = emails.get(outcome.user_id, f"user {outcome.user_id}")
        who = f"{email} ({outcome.source})"
        if outcome.outcome == Outcome.ROLLED_BACK:
            extra = f"; {outcome.note}" if outcome.note else ""
            message = f"Rolled back {who}: {-outcome.credits} credits reversed{extra}."
            self.message_user(request, message, messages.SUCCESS)
            self._log(request, outcome, f"{message} Reason: {reason}")
        elif outcome.outcome == Outcome.MIGRATED:
            message = f"Migrated {who}: {outcome.credits} credits granted."
            self.message_user(request, message, messages.SUCCESS)
            self._log(request, outcome, f"Retried: {message}")
        elif outcome.outcome in (Outcome.REFUSED, Outcome.FAILED):
            self.message_user(
                request, f"{outcome.outcome.title()} for {who}: {outcome.error}", "error"
            )
        else:
            message = f"Skipped {who}: {outcome.note}."
            self.message_user(request, message, messages.INFO)

    def _log(self, request, outcome, message: str):
        row = UserMigration.objects.filter(user_id=outcome.user_id, source=outcome.source).first()
        if row is not None:
            self.log_change(request, row, message)

    # --- the same actions as buttons on a migration's page ----------------------------------

    # (action, label, the status a row must have for the button to show)
    object_actions = [
        ("roll_back", "Roll back", MigrationStatus.COMPLETED),
        ("retry_failed", "Retry", MigrationStatus.FAILED),
    ]

    def _object_action_url(self, row, action):
        return reverse("admin:migrations_app_usermigration_object_action", args=[row.pk, action])

    def change_view(self, request, object_id, form_url="", extra_context=None):
        row = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if row is not None:
            allowed = self.get_actions(request)
            extra_context["object_action_buttons"] = [
                (self._object_action_url(row, action), label)
                for action, label, status in self.object_actions
                if action in allowed and row.status == status
            ]
        return super().change_view(request, object_id, form_url, extra_context)

    def object_action_view(self, request, object_id, action):
        """Roll back or retry one migration: the list action's confirmation and service."""
        allowed = self.get_actions(request)
        if action not in {name for name, _label, _status in self.object_actions}:
            raise PermissionDenied
        if action not in allowed:
            raise PermissionDenied
        row = self.get_object(request, unquote(object_id))
        if row is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        change_url = reverse("admin:migrations_app_usermigration_change", args=[row.pk])
        selected = self.get_queryset(request).filter(pk=row.pk)
        if action == "retry_failed" and request.method != "POST":
            context = {
                **self.admin_site.each_context(request),
                "title": "Retry this migration",
                "opts": self.opts,
                "row": row,
                "cancel_url": change_url,
            }
            return TemplateResponse(
                request, "admin/migrations_app/usermigration/retry_confirmation.html", context
            )
        func, _name, _description = allowed[action]
        response = func(self, request, selected)
        if response is None:
            return HttpResponseRedirect(change_url)
        response.context_data["cancel_url"] = change_url
        return response

    # --- the dashboard --------------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "dashboard/",
                self.admin_site.admin_view(self.dashboard_view),
                name="migrations_app_dashboard",
            ),
            path(
                "find/",
                self.admin_site.admin_view(self.find_view),
                name="migrations_app_usermigration_find",
            ),
            path(
                "find/<int:user_id>/migrate/",
                self.admin_site.admin_view(self.migrate_user_view),
                name="migrations_app_usermigration_migrate_user",
            ),
            path(
                "<path:object_id>/do/<str:action>/",
                self.admin_site.admin_view(self.object_action_view),
                name="migrations_app_usermigration_object_action",
            ),
            *super().get_urls(),
        ]

    # --- a customer, migrated or not ---------------------------------------------------------

    FIND_LIMIT = 20

    def find_view(self, request):
        """Find any user by email, username or id, with what each source holds for them: their
        migration, or the dry-run plan when they are not migrated yet (no credit account)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        query = request.GET.get("q", "").strip()[:254]
        users = []
        if query:
            match = Q(email__iexact=query) | Q(username__iexact=query)
            if query.isdigit() and len(query) < 19:
                match |= Q(pk=int(query))
            elif len(query) >= 3:
                match |= Q(email__icontains=query)
            found = (
                get_user_model()
                .objects.filter(match)
                .select_related("credit_account")
                .order_by("email", "pk")[: self.FIND_LIMIT]
            )
            for user in found:
                lines = migration_preview_user(user_id=user.pk)
                account = getattr(user, "credit_account", None)
                users.append((user, account, lines, any(line.can_migrate for line in lines)))
        context = {
            **self.admin_site.each_context(request),
            "title": "Find a customer, migrated or not",
            "opts": self.model._meta,
            "query": query,
            "users": users,
            "limit": self.FIND_LIMIT,
            "can_migrate": request.user.has_perm(RUN_PERMISSION),
        }
        return TemplateResponse(request, "admin/migrations_app/usermigration/find.html", context)

    def migrate_user_view(self, request, user_id):
        """Migrate one user from the sources the plan says they can be migrated from: an
        execute run for that user (`migration_run_launch`, which checks the permission)."""
        if request.method != "POST":
            raise PermissionDenied
        user = get_user_model().objects.filter(pk=user_id).first()
        if user is None:
            raise Http404
        sources = [
            line.source for line in migration_preview_user(user_id=user.pk) if line.can_migrate
        ]
        back = (
            reverse("admin:migrations_app_usermigration_find")
            + "?"
            + urlencode({"q": user.email or user.pk})
        )
        who = user.email or user.get_username()
        if not sources:
            self.message_user(request, f"Nothing to migrate for {who}.", messages.WARNING)
            return HttpResponseRedirect(back)
        try:
            run = migration_run_launch(
                request=RunRequest(sources=sources, user_ids=[user.pk], dry_run=False),
                actor=request.user,
            )
        except MigrationError as refused:
            self.message_user(request, refused.message, messages.ERROR)
            return HttpResponseRedirect(back)
        run.refresh_from_db(fields=["status"])
        state = run.get_status_display().lower()
        self.message_user(
            request,
            f"Migration run #{run.pk} for {who} from {', '.join(sources)}: {state}.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(back)

    def dashboard_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Credit migration dashboard",
            "opts": self.model._meta,
            **migration_dashboard(),
        }
        return TemplateResponse(request, "admin/migrations_app/dashboard.html", context)


def _emails(user_ids):
    return dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "email"))


@admin.register(MigrationRun)
class MigrationRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "mode",
        "source",
        "status",
        "processed",
        "triggered_by",
        "started_at",
        "finished_at",
    ]
    list_filter = ["mode", "status"]
    readonly_fields = [
        "source",
        "mode",
        "status",
        "processed",
        "total",
        "triggered_by",
        "started_at",
        "heartbeat_at",
        "finished_at",
        "error",
        "pretty_parameters",
        "pretty_stats",
    ]
    fields = readonly_fields

    @admin.display(description="parameters")
    def pretty_parameters(self, run):
        return pretty_json(run.parameters)

    @admin.display(description="stats")
    def pretty_stats(self, run):
        return pretty_json(run.stats)
