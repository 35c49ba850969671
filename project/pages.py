"""The site's own pages: a landing page and the customer's balance page.

They live in `project/` because they link every app (the admin, the API docs, the ledger's
endpoints) and only `project/` may import everything. The balance page renders no figures
itself: its script reads them from the same DRF endpoints a separate frontend would call, so
the page is also the worked example for frontend teams.
"""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.csrf import ensure_csrf_cookie

from billing.models import CreditPack

# The URL name of `POST /api/credits/checkout/ {pack}`; the page offers "Buy credits" only
# when a deployment has it.
CHECKOUT_URL_NAME = "credits-checkout"


def _url_or_none(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


def landing(request):
    """Link to the admin, the API docs and the balance page."""
    return render(request, "site/landing.html")


@login_required
@ensure_csrf_cookie
def account_credits(request):
    """The customer's balance and history, read by the page's script from the API."""
    checkout_url = _url_or_none(CHECKOUT_URL_NAME)
    context = {
        "balance_url": reverse("credits-balance"),
        "transactions_url": reverse("credits-transactions"),
        "checkout_url": checkout_url,
        # The packs a customer may buy; the checkout endpoint takes the pack's id.
        "packs": CreditPack.objects.filter(is_active=True) if checkout_url else [],
    }
    return render(request, "site/account_credits.html", context)
