"""POST /api/credits/checkout/ {pack}: a Stripe Checkout Session for a credit pack, its URL back.

The session is made for the user's Stripe customer (or their email when they have none yet),
with the pack's price as its one line item and `metadata.price_id`, which the webhook reads
(billing.stripe.services.purchases) to grant the pack once it is paid. Each request carries an
idempotency key (the body's `idempotency_key` or the `Idempotency-Key` header, scoped to the
user); Stripe is asked with `credits-checkout:<user id>:<key>`, so a replayed request gets the
same session back and creates no second one.

Who may: the authenticated, active user, for their own account only, and only a `CreditPack`'s
price (no free amount). This door names no Django permission, unlike the staff doors to money:
Stripe takes the buyer's own money before anything is granted, so the bound is the buyer, and
every user would need the permission anyway (a default group to maintain for a right nobody is
without). The service holds the bound itself, not the view: the user is the request's user and
nothing in the request names another (the session's customer, email and `client_reference_id`
are the user's own); staff have no extra power here; a user whose plan may not buy packs
(`CREDITS_PURCHASE_PLANS`) is refused before Stripe is asked, as the webhook would not grant
what they paid for.
"""

import stripe
from django.conf import settings
from djstripe.settings import djstripe_settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api_examples import CHECKOUT_ERRORS, CHECKOUT_EXAMPLES, CHECKOUT_FORBIDDEN
from billing.exceptions import BillingError
from billing.models import CreditPack, UserProfile
from core.api.schema import ErrorSerializer, error_responses
from core.keys import CHECKOUT_CLIENT_KEY_MAX_LENGTH, stripe_checkout_key
from credits.api.fields import IdempotencyKeyField

KEY_HEADER = "Idempotency-Key"


class PackNotFound(BillingError):
    code = "pack_not_found"
    message = "No active credit pack has this id."
    status_code = 404


class CheckoutNotAllowed(BillingError):
    code = "permission_denied"
    message = "Only an active user may buy credits, for their own account."
    status_code = 403


class PurchaseNotAllowed(BillingError):
    code = "purchase_not_allowed"
    message = "Your plan may not buy credit packs."
    status_code = 403


class CheckoutFailed(BillingError):
    code = "stripe_checkout_failed"
    message = "Stripe could not create the checkout session; nothing was charged."
    status_code = 502


def stripe_checkout_create(*, user, pack_id: int, idempotency_key: str) -> dict:
    """Create (or, for a replayed key, get back) the Checkout Session of one credit pack for
    the user's own account."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        raise CheckoutNotAllowed()
    pack = CreditPack.objects.filter(pk=pack_id, is_active=True).first()
    if pack is None:
        raise PackNotFound(pack=pack_id)
    profile = UserProfile.objects.filter(user=user).first()
    plan = profile.plan if profile is not None else UserProfile._meta.get_field("plan").default
    if plan not in settings.CREDITS_PURCHASE_PLANS:
        raise PurchaseNotAllowed(plan=plan)
    customer = {}
    if profile is not None and profile.stripe_customer_id:
        customer["customer"] = profile.stripe_customer_id
    elif user.email:
        customer["customer_email"] = user.email
    try:
        session = stripe.checkout.Session.create(
            api_key=djstripe_settings.STRIPE_SECRET_KEY,
            stripe_version=djstripe_settings.STRIPE_API_VERSION,
            idempotency_key=stripe_checkout_key(user_id=user.pk, client_key=idempotency_key),
            mode="payment",
            line_items=[{"price": pack.stripe_price_id, "quantity": 1}],
            success_url=settings.CREDITS_CHECKOUT_SUCCESS_URL,
            cancel_url=settings.CREDITS_CHECKOUT_CANCEL_URL,
            client_reference_id=str(user.pk),
            metadata={"price_id": pack.stripe_price_id, "credit_pack_id": str(pack.pk)},
            **customer,
        )
    except stripe.StripeError as error:
        raise CheckoutFailed(stripe_code=error.code or "") from error
    return {"id": session.id, "url": session.url, "pack": pack.pk}


class CheckoutInputSerializer(serializers.Serializer):
    pack = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    idempotency_key = IdempotencyKeyField(
        max_length=CHECKOUT_CLIENT_KEY_MAX_LENGTH,
        required=False,
        help_text=f"Or the {KEY_HEADER} header; one of them is required.",
    )

    def validate(self, data):
        header = self.context["request"].headers.get(KEY_HEADER, "").strip()
        key = data.get("idempotency_key", "").strip() or header
        if not key:
            raise serializers.ValidationError(
                {"idempotency_key": [f"Send an idempotency_key or the {KEY_HEADER} header."]}
            )
        data["idempotency_key"] = key
        return data


class CheckoutOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    url = serializers.URLField()
    pack = serializers.IntegerField()


class CheckoutApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=CheckoutInputSerializer,
        responses={
            201: CheckoutOutputSerializer,
            **error_responses(400, 401, 404, 502, examples=CHECKOUT_ERRORS),
            403: OpenApiResponse(
                ErrorSerializer,
                description="Not allowed: an inactive user (code `permission_denied`), or a "
                "plan that may not buy packs (code `purchase_not_allowed`); Stripe not asked.",
                examples=CHECKOUT_FORBIDDEN,
            ),
        },
        examples=CHECKOUT_EXAMPLES,
    )
    def post(self, request):
        serializer = CheckoutInputSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        body = stripe_checkout_create(
            user=request.user,
            pack_id=serializer.validated_data["pack"],
            idempotency_key=serializer.validated_data["idempotency_key"],
        )
        return Response(CheckoutOutputSerializer(body).data, status=status.HTTP_201_CREATED)
