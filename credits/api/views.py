"""The user's own ledger: history and spending. Thin: parse, call a service, render."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from core.api.schema import error_responses
from core.keys import api_idempotency_key
from credits import selectors, services
from credits.api.examples import SPEND_EXAMPLES, TRANSACTIONS_EXAMPLES
from credits.api.serializers import (
    MAX_ID,
    EntryOutputSerializer,
    SpendInputSerializer,
    SpendOutputSerializer,
)
from credits.exceptions import AccountNotFound, IdempotencyConflict, InsufficientCredits
from credits.models import CreditAccount, CreditTransaction
from credits.services.refusals import spend_refusal_record


@contextmanager
def client_key_errors(client_key: str) -> Iterator[None]:
    """Answer a conflict with the key the client sent, never the scoped key the ledger
    stores (it carries the user's id and the API's prefix: internal)."""
    try:
        yield
    except IdempotencyConflict:
        raise IdempotencyConflict(idempotency_key=client_key) from None


def own_account(user) -> CreditAccount:
    """The caller's credit account, or 404 account_not_found."""
    account = selectors.credit_account_for_user(user=user)
    if account is None:
        raise AccountNotFound()
    return account


@contextmanager
def refusal_recorded(*, account: CreditAccount, amount, source: str) -> Iterator[None]:
    """Record a debit or hold refused for want of credits (check_credits counts them); what
    was refused wrote nothing, and the refusal goes on to the client."""
    try:
        yield
    except InsufficientCredits as refused:
        spend_refusal_record(
            account=account,
            amount=amount,
            code=str(refused.code),
            source=source,
            balance=Decimal(refused.details["balance"]),
        )
        raise


CURSOR_PATTERN = r"^[A-Za-z0-9+/]{1,200}={0,2}$"


class NewestFirstPagination(CursorPagination):
    """Cursors over the entry id, newest first.

    A cursor outside the schema's pattern (not base64, too long) or a page size that is not a
    positive integer is a 400 `invalid`; a well-formed cursor this API did not give out (it
    does not decode, or its position is not an entry id) names no page: 404 `not_found`. DRF
    alone put an undecodable position into the query (a 500) and ignored a bad page size."""

    ordering = "-id"
    # The list the schema's example links name.
    example_path = "transactions/"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    cursor_pattern = re.compile(CURSOR_PATTERN.replace("$", r"\Z"))
    position_pattern = re.compile(r"[0-9]{1,19}")

    def get_paginated_response_schema(self, schema):
        # DRF's example links name another API ("api.example.org/accounts/"): show ours.
        page = super().get_paginated_response_schema(schema)
        base = f"https://credits.example.com/api/credits/{self.example_path}"
        page["properties"]["next"]["example"] = f"{base}?cursor=cD0xMjM0"
        page["properties"]["previous"]["example"] = f"{base}?cursor=cj0xJnA9MTI4NQ%3D%3D"
        return page

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        digits = raw.lstrip("0")
        if not re.fullmatch(r"[0-9]+", raw) or not digits:
            raise ValidationError({"page_size": ["A whole number from 1 (at most 200 are sent)."]})
        # More than three digits is more than the maximum (and no int() of a huge string).
        return self.max_page_size if len(digits) > 3 else min(int(digits), self.max_page_size)

    def decode_cursor(self, request):
        raw = request.query_params.get(self.cursor_query_param)
        if raw is None:
            return None
        if not self.cursor_pattern.fullmatch(raw):
            raise ValidationError({"cursor": ["Not a cursor: send the one a page gave out."]})
        cursor = super().decode_cursor(request)  # NotFound (404) when it does not decode
        position = cursor.position
        if position is not None and not (
            self.position_pattern.fullmatch(position) and int(position) <= MAX_ID
        ):
            raise NotFound(self.invalid_cursor_message)
        return cursor


# The query parameters of every list paginated by NewestFirstPagination.
PAGE_PARAMETERS = [
    OpenApiParameter(
        "cursor",
        {"type": "string", "pattern": CURSOR_PATTERN},
        description="The `next` or `previous` link's cursor.",
        required=False,
    ),
    OpenApiParameter(
        "page_size",
        {"type": "integer", "minimum": 1},
        description="Rows per page (default 50); above 200, 200 are sent.",
        required=False,
    ),
]


@extend_schema(
    parameters=PAGE_PARAMETERS,
    responses={200: EntryOutputSerializer(many=True), **error_responses(400, 401, 404)},
    examples=TRANSACTIONS_EXAMPLES,
)
class TransactionListApi(ListAPIView):
    serializer_class = EntryOutputSerializer
    pagination_class = NewestFirstPagination

    def get_queryset(self):
        account = selectors.credit_account_for_user(user=self.request.user)
        if account is None:
            return CreditTransaction.objects.none()
        return selectors.credit_history(account=account)


class SpendApi(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "spend"

    @extend_schema(
        request=SpendInputSerializer,
        responses={
            201: SpendOutputSerializer,
            200: SpendOutputSerializer,
            **error_responses(400, 401, 402, 404, 409, 429),
        },
        examples=SPEND_EXAMPLES,
    )
    def post(self, request):
        serializer = SpendInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        account = own_account(request.user)
        with (
            refusal_recorded(account=account, amount=data["amount"], source="api"),
            client_key_errors(data["idempotency_key"]),
        ):
            entry = services.credit_spend(
                account=account,
                amount=data["amount"],
                idempotency_key=api_idempotency_key(
                    user_id=request.user.pk, client_key=data["idempotency_key"]
                ),
                description=data["description"],
                source="api",
            )
        account.refresh_from_db(fields=["balance"])
        body = SpendOutputSerializer({"transaction": entry, "balance": account.balance}).data
        return Response(
            body, status=status.HTTP_200_OK if entry.replayed else status.HTTP_201_CREATED
        )
