"""Requests per second: `GET /api/credits/balance/` against a bare Django view, under gunicorn.

Both are served by the same gunicorn (4 sync workers by default) with the project's settings
as deployed (DEBUG off, persistent database connections, their health checks) and one extra
URL, the bare view of benchmarks.balance_urls: a constant JSON body through the whole
middleware stack, no database. `wrk` loads each in turn; the ratio balance/bare is the figure
to watch, and the goal is balance >= 50% of bare. Nothing here asserts a time: it prints
figures. It exits 1 if a response was not a 200 or the served balance is not the one
expected, and 2 on a usage error.

- balance: the real endpoint, authenticated with `Authorization: Token <key>`, for a user
  with a profile, six lots (two expiring at the same instant, one later, three never) and an
  active hold, among a few hundred other accounts with lots of their own.
- bare: benchmarks.balance_urls.bare, sent the same header (it reads nothing).

The rounds alternate (balance, bare, then bare, balance, ...) after an uncounted warm-up of
each, so a drift of the machine hits both alike; every round's ratio is printed with the
median and the spread.

The run happens in a scratch database created and dropped the way Django's test runner does
it; the database DATABASE_URL names is never written to. It needs PostgreSQL, gunicorn
(`pip install -e '.[bench]'`) and wrk (`apt-get install wrk`). Run from the project root:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python benchmarks/bench_balance.py [--seconds 10] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks.scratch import run_in_scratch_database  # noqa: E402

GOAL = 0.50
BALANCE_PATH = "/api/credits/balance/"
BARE_PATH = "/bench/bare/"
ENDPOINTS = ("balance", "bare")
FILLER_USERS = 300
START_TIMEOUT = 60.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="GET /api/credits/balance/ against a bare Django view under gunicorn, "
        "loaded by wrk, on PostgreSQL (DATABASE_URL), in a scratch database.",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        help="seconds of wrk per endpoint and round (default: 10)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default: 5)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="uncounted seconds of wrk per endpoint before the first round (default: 3)",
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default: 4)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default: 16)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default: 2)")
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.warmup < 0 or args.rounds < 1 or args.workers < 1:
        parser.error("--seconds must be >= 1, --warmup >= 0, --rounds and --workers >= 1")
    if args.connections < args.wrk_threads or args.wrk_threads < 1:
        parser.error("--connections must be >= --wrk-threads >= 1")
    return args


def missing_tools() -> str:
    """Why the benchmark cannot run here, or "" when it can."""
    import importlib.util

    if importlib.util.find_spec("gunicorn") is None:
        return "needs gunicorn: pip install -e '.[bench]' (or 'gunicorn>=23,<24')"
    if shutil.which("wrk") is None:
        return "needs wrk on PATH: apt-get install wrk"
    return ""


# --- the data -----------------------------------------------------------------------------


def seed() -> str:
    """The measured user (profile, six lots, a hold) and filler accounts; return the token."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from billing.services import user_provision
    from credits.services import credit_grant, credit_hold_create

    user_model = get_user_model()
    soon = timezone.now().replace(microsecond=0) + timedelta(days=10)
    for index in range(FILLER_USERS):
        user = user_model.objects.create_user(username=f"bench-filler-{index}")
        user_provision(user=user, signup_grant=True)
        credit_grant(
            account=user.credit_account,
            amount=Decimal("5.00"),
            idempotency_key=f"bench:filler:{index}",
            expires_at=soon + timedelta(hours=index),
        )
    user = user_model.objects.create_user(username="bench-balance")
    user_provision(user=user, signup_grant=True)  # 20.00, promotional, never expires
    account = user.credit_account
    lots = [
        (Decimal("100.00"), "paid", None),
        (Decimal("30.00"), "promotional", soon),
        (Decimal("12.00"), "promotional", soon),
        (Decimal("260.00"), "monthly", soon + timedelta(days=20)),
        (Decimal("8.00"), "promotional", None),
    ]
    for index, (amount, category, expires_at) in enumerate(lots):
        credit_grant(
            account=account,
            amount=amount,
            idempotency_key=f"bench:lot:{index}",
            category=category,
            expires_at=expires_at,
        )
    credit_hold_create(
        account=account,
        amount=Decimal("15.00"),
        idempotency_key="bench:hold",
        ttl_seconds=24 * 3600,
    )
    return Token.objects.create(user=user).key


def expected_balance(token: str) -> tuple[dict, int]:
    """The balance body and its query count, from the view in this process."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Token {token}", SERVER_NAME="localhost")
    client.get(BALANCE_PATH)  # the first request imports and warms what it needs
    with CaptureQueriesContext(connection) as queries:
        response = client.get(BALANCE_PATH)
    if response.status_code != 200:
        raise RuntimeError(f"the balance answered {response.status_code} in process")
    return response.json(), len(queries)


# --- the server ---------------------------------------------------------------------------


def database_url() -> str:
    from django.db import connection

    settings_dict = connection.settings_dict
    credentials = quote(settings_dict["USER"] or "", safe="")
    if settings_dict["PASSWORD"]:
        credentials += ":" + quote(settings_dict["PASSWORD"], safe="")
    host = settings_dict["HOST"] or "127.0.0.1"
    port = f":{settings_dict['PORT']}" if settings_dict["PORT"] else ""
    at = "@" if credentials else ""
    return f"postgres://{credentials}{at}{host}{port}/{settings_dict['NAME']}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(*, workers: int, port: int, static_root: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.balance_settings",
        "DATABASE_URL": database_url(),
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        # Persistent connections, as deployed (the settings' default is 60 s).
        "CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
        # An empty folder: WhiteNoise warns about a missing one; no static file is asked for.
        "STATIC_ROOT": static_root,
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    env.pop("LEGACY_DATABASE_URL", None)
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--chdir",
        str(PROJECT_ROOT),
        "--log-level",
        "warning",
        "project.wsgi:application",
    ]
    # Its own process group, so stopping it reaches every worker.
    return subprocess.Popen(command, env=env, start_new_session=True)


def stop(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def get(url: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_until_serving(server: subprocess.Popen, base: str, token: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {server.returncode}")
        try:
            if get(base + BARE_PATH, token)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within {START_TIMEOUT:g} s")


# --- measurement --------------------------------------------------------------------------


@dataclass
class Measure:
    endpoint: str
    requests: int
    seconds: float
    requests_per_second: float
    latency: str
    bad_responses: int
    socket_errors: int


def wrk(url: str, token: str, *, seconds: float, threads: int, connections: int) -> Measure:
    command = [
        "wrk",
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(seconds))}s",
        "--header",
        f"Authorization: Token {token}",
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    done = re.search(r"(\d+) requests in ([\d.]+)(m?s)", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    latency = re.search(r"Latency\s+(\S+)", output)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if not (done and rate):
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    elapsed = float(done.group(2)) / (1000 if done.group(3) == "ms" else 1)
    return Measure(
        endpoint="",
        requests=int(done.group(1)),
        seconds=elapsed,
        requests_per_second=float(rate.group(1)),
        latency=latency.group(1) if latency else "?",
        bad_responses=int(bad.group(1)) if bad else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


# --- report -------------------------------------------------------------------------------


def print_rounds(rounds: list[dict[str, Measure]]) -> list[float]:
    header = ("round", "balance req/s", "latency", "bare req/s", "latency", "balance/bare")
    rows, ratios = [], []
    for index, pair in enumerate(rounds, start=1):
        balance, bare = pair["balance"], pair["bare"]
        ratio = balance.requests_per_second / bare.requests_per_second
        ratios.append(ratio)
        rows.append(
            (
                str(index),
                f"{balance.requests_per_second:,.0f}",
                balance.latency,
                f"{bare.requests_per_second:,.0f}",
                bare.latency,
                f"{ratio:.1%}",
            )
        )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(row):
        return "  ".join(f"{cell:>{width}}" for cell, width in zip(row, widths, strict=True))

    print(line(header))
    print("  ".join("-" * width for width in widths))
    for row in rows:
        print(line(row))
    return ratios


def run(args: argparse.Namespace) -> int:
    from django.db import connection

    missing = missing_tools()
    if missing:
        print(f"bench_balance: {missing}", file=sys.stderr)
        return 2
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (server_version,) = cursor.fetchone()
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    import gunicorn

    print(
        f"bench_balance: gunicorn {gunicorn.__version__}, {args.workers} sync workers; "
        f"{(wrk_version.stdout or wrk_version.stderr).split()[1]} with {args.wrk_threads} "
        f"threads and {args.connections} connections; {args.rounds} alternating rounds of "
        f"{args.seconds:g} s per endpoint after {args.warmup:g} s of warm-up each"
    )
    print(
        f"PostgreSQL {server_version}, scratch database {connection.settings_dict['NAME']}, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    print("seeding...", file=sys.stderr, flush=True)
    token = seed()
    expected, queries = expected_balance(token)
    connection.close()
    print(
        f"balance: {queries} {'query' if queries == 1 else 'queries'} a request as Django "
        "counts them (token authentication included)"
    )
    print()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    urls = {"balance": base + BALANCE_PATH, "bare": base + BARE_PATH}
    static_root = tempfile.TemporaryDirectory(prefix="bench_balance_static_")
    server = start_gunicorn(workers=args.workers, port=port, static_root=static_root.name)
    try:
        wait_until_serving(server, base, token)
        status, body = get(urls["balance"], token)
        if status != 200 or json.loads(body) != expected:
            print(f"balance under gunicorn: {status} {body[:300]!r}, expected {expected}")
            return 1
        load = dict(threads=args.wrk_threads, connections=args.connections)
        if args.warmup:
            for endpoint in ENDPOINTS:
                wrk(urls[endpoint], token, seconds=args.warmup, **load)
        rounds: list[dict[str, Measure]] = []
        for round_index in range(args.rounds):
            order = ENDPOINTS if round_index % 2 == 0 else ENDPOINTS[::-1]
            pair = {}
            for endpoint in order:
                print(
                    f"measuring {endpoint}, round {round_index + 1}/{args.rounds}",
                    file=sys.stderr,
                    flush=True,
                )
                pair[endpoint] = wrk(urls[endpoint], token, seconds=args.seconds, **load)
                pair[endpoint].endpoint = endpoint
            rounds.append(pair)
        status, body = get(urls["balance"], token)
    finally:
        stop(server)
        static_root.cleanup()

    ratios = print_rounds(rounds)
    print()
    median = statistics.median(ratios)
    verdict = "meets the goal" if median >= GOAL else "BELOW the goal"
    rates = {
        endpoint: statistics.median(pair[endpoint].requests_per_second for pair in rounds)
        for endpoint in ENDPOINTS
    }
    print(
        f"median: balance {rates['balance']:,.0f} req/s, bare {rates['bare']:,.0f} req/s; "
        f"balance/bare {median:.1%} (rounds {min(ratios):.1%} .. {max(ratios):.1%})"
    )
    print(f"goal: balance >= {GOAL:.0%} of bare: {verdict}")
    problems = [
        f"{m.endpoint}: {m.bad_responses:,} non-2xx responses, {m.socket_errors:,} socket errors"
        for pair in rounds
        for m in pair.values()
        if m.bad_responses or m.socket_errors
    ]
    if status != 200 or json.loads(body) != expected:
        problems.append(f"balance after the load: {status} {body[:300]!r}")
    if problems:
        print("responses: NOT ALL OK")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print(
        "responses: every one a 200; the balance served equals the view's in-process answer "
        "before and after the load."
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_in_scratch_database("bench_balance", lambda scratch: run(args))


if __name__ == "__main__":
    sys.exit(main())
