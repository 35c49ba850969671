"""The OpenAPI schema, its docs, and the API held to it.

The schema is read from the live `/api/schema/` and schemathesis drives every operation with
generated requests, valid and invalid, as a user and as staff, through the Django WSGI app:
no 5xx, and every response (status, content type, body) as the schema says.
"""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate as validate_openapi
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS as SCHEMATHESIS_CHECKS
from schemathesis.checks import load_all_checks
from schemathesis.config._checks import (
    POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES,
    PositiveDataAcceptanceConfig,
)
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.factories import LegacyBillingFactory, ProvisionedUserFactory, UserFactory

pytestmark = pytest.mark.django_db

OPERATIONS = {
    ("GET", "/api/credits/balance/"),
    ("GET", "/api/credits/transactions/"),
    ("POST", "/api/credits/spend/"),
    ("GET", "/api/credits/lots/"),
    ("GET", "/api/credits/holds/"),
    ("POST", "/api/credits/holds/"),
    ("POST", "/api/credits/holds/{hold_id}/capture/"),
    ("POST", "/api/credits/holds/{hold_id}/release/"),
    ("POST", "/api/credits/checkout/"),
    ("GET", "/api/migrate/user-credits/"),
    ("POST", "/api/migrate/user-credits/"),
    ("GET", "/api/migrate/runs/{run_id}/"),
    ("POST", "/api/migrate/rollback/"),
    ("GET", "/api/admin/billing/health"),
    ("POST", "/api/admin/billing/credits/adjust"),
    ("POST", "/api/admin/billing/refund"),
    ("GET", "/api/admin/billing/user/{user_id}/summary"),
}
load_all_checks()
# Every check schemathesis has (the CLI's `--checks all`): a server error, status, content type,
# headers and body against the schema, negative data rejected, positive data accepted, ...
CHECKS = SCHEMATHESIS_CHECKS.get_all()
# Refusals of schema-valid requests that no schema can express: the field names a row that
# does not exist. Only these fields, only on these operations, may make a valid request a 400.
REFUSALS_NO_SCHEMA_EXPRESSES = {
    ("POST", "/api/migrate/user-credits/"): {"users"},
    ("POST", "/api/migrate/rollback/"): {"users"},
    # A Stripe refund needs the payment intent: a requirement on one field that depends on
    # another's value, which the schema states in words but OpenAPI 3.0 cannot check.
    ("POST", "/api/admin/billing/refund"): {"payment_intent_id"},
}
EXAMPLES = 8


@pytest.fixture
def schema_document(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_the_schema_is_valid_openapi(schema_document):
    # then: a validator nobody here wrote accepts it (raises otherwise), e.g. no default a
    # field's own constraints refuse, which generated clients would send
    validate_openapi(schema_document)


def test_every_endpoint_is_in_the_schema(schema_document):
    operations = {
        (method.upper(), path) for path, item in schema_document["paths"].items() for method in item
    }
    assert operations == OPERATIONS
    assert schema_document["openapi"].startswith("3.")


def test_the_error_shape_is_a_component_and_every_refusal_is_described(schema_document):
    components = schema_document["components"]["schemas"]
    assert components["Error"]["properties"]["error"]["$ref"].endswith("/ErrorDetail")
    assert set(components["ErrorDetail"]["required"]) == {"code", "message", "details"}
    paths = schema_document["paths"]
    expected = {
        ("post", "/api/credits/spend/"): {"400", "401", "402", "404", "409", "429"},
        ("get", "/api/credits/lots/"): {"400", "401", "404"},
        ("get", "/api/credits/holds/"): {"400", "401", "404"},
        ("post", "/api/credits/holds/"): {"400", "401", "402", "404", "409", "429"},
        ("post", "/api/credits/holds/{hold_id}/capture/"): {"400", "401", "404", "409", "429"},
        ("post", "/api/credits/holds/{hold_id}/release/"): {"401", "404", "409", "429"},
        ("post", "/api/migrate/user-credits/"): {"400", "401", "403", "409", "429"},
        ("get", "/api/migrate/user-credits/"): {"401", "403", "429"},
        ("get", "/api/migrate/runs/{run_id}/"): {"401", "403", "404", "429"},
        ("post", "/api/migrate/rollback/"): {"400", "401", "403", "429"},
        ("get", "/api/admin/billing/health"): {"401", "403", "429"},
        ("get", "/api/credits/balance/"): {"401"},
        ("post", "/api/admin/billing/credits/adjust"): {"400", "401", "403", "404", "409", "429"},
        ("post", "/api/admin/billing/refund"): {"400", "401", "402", "403", "404", "429", "502"},
        ("get", "/api/admin/billing/user/{user_id}/summary"): {"401", "403", "404", "429"},
    }
    for (method, path), codes in expected.items():
        responses = paths[path][method]["responses"]
        assert codes <= set(responses), (method, path)
        for code in codes:
            schema = responses[code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, code)


def _resolve(schema, document):
    """A component schema with its $refs inlined, for a validator that reads no document."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            return _resolve(document["components"]["schemas"][name], document)
        if len(schema.get("allOf", ())) == 1:
            # OpenAPI 3.0's nullable reference, {"allOf": [{"$ref"}], "nullable": true}: the
            # validator checks allOf's schema alone (null refused), so merge it in.
            rest = {key: value for key, value in schema.items() if key != "allOf"}
            return {**_resolve(schema["allOf"][0], document), **_resolve(rest, document)}
        return {key: _resolve(value, document) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_resolve(item, document) for item in schema]
    return schema


def test_every_operation_documents_realistic_examples_that_fit_its_schema(schema_document):
    """The docs show examples written for this API (drf-spectacular's OpenApiExample) for every
    request body and every answer, success and error; each is valid for its schema, so the
    docs never show a made-up shape (or the generated "-2983.99" spends they once did)."""
    from openapi_schema_validator import OAS30Validator

    checked = 0
    for path, item in schema_document["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            targets = [(f"{method} {path} request", body)] if body else []
            for status, response in operation["responses"].items():
                content = response.get("content", {}).get("application/json")
                if content:
                    targets.append((f"{method} {path} {status}", content))
            for where, content in targets:
                examples = content.get("examples", {})
                assert examples, f"{where}: no example"
                schema = _resolve(content["schema"], schema_document)
                for name, example in examples.items():
                    errors = list(OAS30Validator(schema).iter_errors(example["value"]))
                    assert not errors, (where, name, [error.message for error in errors])
                    checked += 1
                    if status_is_error := where.rsplit(" ", 1)[-1][:1] in "45":
                        assert example["value"]["error"]["code"], where
                    assert status_is_error or "api:" not in str(example["value"]), where
    assert checked >= 60


def test_the_docs_are_served_with_local_assets(client):
    # when
    page = client.get("/api/docs/")
    # then: Swagger UI from our static files, nothing from a CDN
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    for cdn in ("cdn.jsdelivr", "unpkg.com", "cdnjs"):
        assert cdn not in html
    asset = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200


def exercise(operation, mode, headers, calls):
    """Send EXAMPLES generated requests to the operation and hold each response to the schema."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def one(case):
        # when
        response = case.call(headers=headers)
        calls.append(response.status_code)
        # then
        checks = CHECKS
        refusable = REFUSALS_NO_SCHEMA_EXPRESSES.get((case.method.upper(), operation.path))
        if refusable and mode == GenerationMode.POSITIVE and response.status_code == 400:
            assert set(response.json()["error"]["details"]) <= refusable, response.json()
            checks = [check for check in CHECKS if check is not positive_data_acceptance]
        case.validate_response(response, checks=checks, headers=headers)

    try:
        one()
    except Unsatisfiable:
        # An operation without parameters or body has no invalid request to make.
        assert mode == GenerationMode.NEGATIVE, operation.path


@pytest.fixture
def keep_the_test_connection():
    """As Django's test client does: a request must not close the connection that holds
    the test's transaction (schemathesis calls the WSGI app itself)."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.mark.slow
@pytest.mark.usefixtures("keep_the_test_connection")
def test_the_api_answers_as_its_schema_says_for_users_and_staff():
    # given: a user with credits and a ledger, staff, and legacy data to migrate
    user = ProvisionedUserFactory()
    staff = UserFactory(is_staff=True)
    LegacyBillingFactory(balance_usd="5.00")
    schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler())
    # A valid spend may find too little credit: 402, a refusal the schema describes (like 409).
    schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=[*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "402"]
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {(op.method.upper(), op.path) for op in operations} == OPERATIONS
    calls = []
    for who in (user, staff):
        # The staff writes take their key from the body or this header (which the schema
        # cannot require in one place or the other): with it, every write has a key.
        headers = {
            "Authorization": f"Token {Token.objects.create(user=who).key}",
            "Idempotency-Key": "schemathesis",
        }
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                exercise(operation, mode, headers, calls)
    assert len(calls) >= len(operations) * 2
    assert all(code < 500 for code in calls)
