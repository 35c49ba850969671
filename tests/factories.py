"""factory_boy factories, in one place. Ledger entries are never built by a factory: they are
written through `credits.services`, the only writer."""

from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.models import (
    LegacyAccount,
    LegacyBilling,
    LegacyCreditTransaction,
    LegacyOperation,
    LegacyPayment,
    LegacyUsage,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save(update_fields=["password"])


class ProvisionedUserFactory(UserFactory):
    """A user onboarded like a signup: profile, credit account and the signup grant."""

    @factory.post_generation
    def provision(obj, create, extracted, **kwargs):
        if create:
            from billing.services import user_provision

            user_provision(user=obj, signup_grant=kwargs.get("signup_grant", True))


class CreditPackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "billing.CreditPack"
        django_get_or_create = ("stripe_price_id",)

    stripe_price_id = factory.Sequence(lambda n: f"price_pack_{n}")
    name = factory.Sequence(lambda n: f"Pack {n}")
    credits = Decimal("100.00")
    amount_cents = 1000
    currency = "usd"


class PlanPriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "billing.PlanPrice"
        django_get_or_create = ("stripe_price_id",)

    stripe_price_id = factory.LazyAttribute(lambda price: f"price_{price.plan}_{price.interval}")
    plan = "pro"
    interval = "month"


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    """dj-stripe's endpoint row: its secret verifies signatures, its uuid is in the URL."""

    class Meta:
        model = "djstripe.WebhookEndpoint"

    id = factory.Sequence(lambda n: f"we_test_{n}")
    livemode = False
    api_version = "2024-06-20"
    enabled_events = factory.LazyFunction(lambda: ["*"])
    secret = factory.Sequence(lambda n: f"whsec_test_secret_{n:024d}")
    status = "enabled"
    url = "https://credits.example.com/stripe/webhook/"
    djstripe_validation_method = "verify_signature"


CREDIT_ADMINS = "Credit admins"
BILLING_SUPER_ADMINS = "Billing super admins"


def staff_group(name: str):
    """A staff group made by the data migrations migrations_app 0003_staff_groups (and 0006,
    which gives billing super admins the run and preview permissions; billing 0006 and credits
    0012, which give a permission each).

    Tests on a transactional database flush the tables after them, groups included; the
    migration's own function makes them again, with the same permissions.
    """
    import importlib
    from types import SimpleNamespace

    from django.contrib.auth.models import Group
    from django.db import connection

    group = Group.objects.filter(name=name).first()
    if group is None:
        editor = SimpleNamespace(connection=connection)
        migration = importlib.import_module("migrations_app.migrations.0003_staff_groups")
        migration.create_groups(None, editor)
        later = importlib.import_module(
            "migrations_app.migrations.0006_run_and_preview_permissions"
        )
        later.grant(None, editor)
        summary = importlib.import_module("billing.migrations.0006_customer_summary_permission")
        summary.give(None, editor)
        release = importlib.import_module(
            "credits.migrations.0014_release_hold_permission_for_staff_groups"
        )
        release.give(None, editor)
        group = Group.objects.get(name=name)
    return group


class StaffUserFactory(UserFactory):
    """A staff member; `groups=[...]` names staff groups, `permissions=["app.codename"]` adds
    single permissions."""

    is_staff = True

    @factory.post_generation
    def groups(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.groups.add(*[staff_group(name) for name in extracted])

    @factory.post_generation
    def permissions(obj, create, extracted, **kwargs):
        if create and extracted:
            from django.contrib.auth.models import Permission

            for name in extracted:
                app_label, codename = name.split(".")
                obj.user_permissions.add(
                    Permission.objects.get(content_type__app_label=app_label, codename=codename)
                )


class CreditAdminFactory(StaffUserFactory):
    """A member of "Credit admins": grants and adjusts up to CREDITS_ADMIN_LIMIT."""

    username = factory.Sequence(lambda n: f"credit-admin{n}")

    @factory.post_generation
    def groups(obj, create, extracted, **kwargs):
        if create:
            obj.groups.add(*[staff_group(name) for name in extracted or [CREDIT_ADMINS]])


class SuperAdminFactory(StaffUserFactory):
    """A member of "Billing super admins": refunds, larger amounts, approvals, rollbacks."""

    username = factory.Sequence(lambda n: f"super-admin{n}")

    @factory.post_generation
    def groups(obj, create, extracted, **kwargs):
        if create:
            obj.groups.add(*[staff_group(name) for name in extracted or [BILLING_SUPER_ADMINS]])


class MigrationRunFactory(factory.django.DjangoModelFactory):
    """A migration run as the command or the API leaves it; running, with a fresh heartbeat,
    unless told otherwise."""

    class Meta:
        model = "migrations_app.MigrationRun"

    source = "usd_balance"
    mode = "execute"
    status = "running"
    heartbeat_at = factory.LazyFunction(timezone.now)


class UserMigrationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "migrations_app.UserMigration"

    user = factory.SubFactory(UserFactory)
    source = "usd_balance"
    status = "COMPLETED"


# --- the legacy billing tables: the "before" world the migration reads -------------------------
# Each builds its own user unless given one.


def current_period() -> str:
    """The period usage_tiers reads: this month, as the command computes it."""
    return timezone.now().strftime("%Y-%m")


def previous_period() -> str:
    first_of_month = timezone.now().replace(day=1)
    return (first_of_month - timedelta(days=1)).strftime("%Y-%m")


class LegacyBillingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LegacyBilling

    user = factory.SubFactory(UserFactory)
    balance_usd = Decimal("0.00")
    balance_uah = Decimal("0.00")


class LegacyAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LegacyAccount

    user = factory.SubFactory(UserFactory)
    plan = "free"
    credits_balance = Decimal("0.00")


class LegacyPaymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LegacyPayment

    user = factory.SubFactory(UserFactory)
    stripe_payment_intent_id = factory.Sequence(lambda n: f"pi_legacy_{n}")
    amount = 1000
    currency = "usd"
    status = "PAID"
    created_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=90))


class LegacyCreditTransactionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LegacyCreditTransaction

    user = factory.SubFactory(UserFactory)
    delta = Decimal("10.00")
    reason = "purchase"
    created_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=60))


class LegacyOperationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LegacyOperation

    user = factory.SubFactory(UserFactory)
    kind = "request"
    created_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))


class LegacyUsageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LegacyUsage

    user = factory.SubFactory(UserFactory)
    period = factory.LazyFunction(current_period)
    amount_used = Decimal("0.00")


def operations(user, count: int, *, days_ago: float = 1, kind: str = "request") -> None:
    """`count` legacy operations of `user`, `days_ago` days before now, in one INSERT."""
    when = timezone.now() - timedelta(days=days_ago)
    LegacyOperation.objects.bulk_create(
        [LegacyOperation(user=user, kind=kind, created_at=when) for _ in range(count)]
    )
