"""A fake Stripe API at HTTP: a threaded server on 127.0.0.1 that stripe-python is pointed at.

dj-stripe's own sync runs against it as it would against Stripe: each object is served at its
path (`GET /v1/customers/cus_...`), unknown ids answer Stripe's 404 error, and every request is
recorded (method, path, headers, form fields) so a test can assert what was sent. The objects
come from the builders in `tests.billing.stripe_api_objects`, in the shapes of the API version
the project pins (`STRIPE_API_VERSION`).

It answers in those shapes only, so it holds every request to that version: a request whose
`Stripe-Version` header is missing or names another version is answered with Stripe's 400
error and kept in `wrong_versions`, which the `fake_stripe` fixture asserts is empty when the
test ends. A test that passed while dj-stripe (or our code) asked for another version would
prove nothing about the shapes that version returns.
"""

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

# Paths of the collections served by id, and the prefix of each object's id.
COLLECTIONS = (
    "accounts",
    "charges",
    "checkout/sessions",
    "customers",
    "disputes",
    "invoices",
    "payment_intents",
    "prices",
    "products",
    "refunds",
    "subscriptions",
)


@dataclass
class Request:
    method: str
    path: str
    headers: dict
    form: dict = field(default_factory=dict)
    query: dict = field(default_factory=dict)


class FakeStripe:
    """Canned objects by path, and the requests received, in order."""

    def __init__(self, *, api_version: str):
        self.api_version = api_version
        self.wrong_versions: list[Request] = []
        self.objects: dict[str, dict] = {}
        self.requests: list[Request] = []
        self.account: dict | None = None
        self._idempotent: dict[tuple[str, str], dict] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    # --- what a test sets up and reads ---

    def add(self, *objects: dict) -> None:
        """Serve each object at /v1/<its collection>/<its id>."""
        for obj in objects:
            self.objects[f"/v1/{collection_of(obj)}/{obj['id']}"] = obj

    def received(self, method: str, path_prefix: str = "") -> list[Request]:
        with self._lock:
            return [
                r for r in self.requests if r.method == method and r.path.startswith(path_prefix)
            ]

    # --- answers ---

    def answer(self, request: Request) -> tuple[int, dict]:
        path = request.path
        version = request.headers.get("stripe-version")
        if version != self.api_version:
            self.wrong_versions.append(request)
            return 400, {
                "error": {
                    "type": "invalid_request_error",
                    "code": "api_version_unsupported",
                    "message": f"This fake answers API version {self.api_version} only, "
                    f"not {version or '(no Stripe-Version header)'}.",
                }
            }
        if request.method == "GET":
            if path == "/v1/account" and self.account is not None:
                return 200, self.account
            if path in self.objects:
                return 200, self.objects[path]
            if path.startswith("/v1/products/") and path.endswith("/features"):
                # A product's features: none (dj-stripe lists them when it syncs a product).
                return 200, {"object": "list", "data": [], "has_more": False, "url": path}
            return not_found(path)
        if request.method == "POST":
            key = request.headers.get("idempotency-key")
            if key and (path, key) in self._idempotent:
                return 200, self._idempotent[(path, key)]
            status, body = self.create(path, request.form)
            if key and status == 200:
                self._idempotent[(path, key)] = body
            return status, body
        return not_found(path)

    def create(self, path: str, form: dict) -> tuple[int, dict]:
        from tests.billing import stripe_api_objects as objects

        if path == "/v1/refunds":
            refund = objects.refund(
                payment_intent=form.get("payment_intent"), amount=int(form.get("amount", 0))
            )
            self.add(refund)
            return 200, refund
        if path == "/v1/checkout/sessions":
            session = objects.checkout_session_created(form)
            self.add(session)
            return 200, session
        return not_found(path)

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                request = Request(
                    method=self.command,
                    path=split.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    form=dict(parse_qsl(raw, keep_blank_values=True)),
                    query=dict(parse_qsl(split.query, keep_blank_values=True)),
                )
                with fake._lock:
                    fake.requests.append(request)
                    status, body = fake.answer(request)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", f"req_{uuid.uuid4().hex[:14]}")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, *args):
                pass

        return Handler


def collection_of(obj: dict) -> str:
    kind = obj["object"]
    if kind == "checkout.session":
        return "checkout/sessions"
    return {"payment_intent": "payment_intents"}.get(kind, f"{kind}s")


def not_found(path: str) -> tuple[int, dict]:
    return 404, {
        "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": f"No such object: '{path.rsplit('/', 1)[-1]}'",
        }
    }
