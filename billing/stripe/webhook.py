"""dj-stripe's webhook view, refusing an event of the other mode before anything is written.

A live event on a test deployment (or a test event on a live one) is answered 400 and logged;
no WebhookEventTrigger, Event or ledger row is written. Mounted at dj-stripe's own path in
project/urls.py, ahead of dj-stripe's URLs.
"""

import json
import logging

from django.conf import settings
from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from djstripe.views import ProcessWebhookView

logger = logging.getLogger(__name__)


def _error(code: str, message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "details": {}}}, status=status)


@method_decorator(csrf_exempt, name="dispatch")
class ModeCheckedWebhookView(ProcessWebhookView):
    def post(self, request, uuid):
        try:
            livemode = json.loads(request.body).get("livemode")
        except (ValueError, AttributeError):
            livemode = None
        if isinstance(livemode, bool) and livemode != settings.STRIPE_LIVE_MODE:
            logger.warning(
                "Refused a Stripe event with livemode=%s on a deployment with STRIPE_LIVE_MODE=%s "
                "(endpoint %s)",
                livemode,
                settings.STRIPE_LIVE_MODE,
                uuid,
            )
            return _error(
                "livemode_mismatch",
                f"A livemode={str(livemode).lower()} event on a "
                f"{'live' if settings.STRIPE_LIVE_MODE else 'test'}-mode deployment.",
            )
        return super().post(request, uuid)
