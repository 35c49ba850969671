"""factory_boy factories, in one place. Ledger entries are never built by a factory: they are
written through `credits.services`, the only writer."""

import factory
from django.contrib.auth import get_user_model


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
