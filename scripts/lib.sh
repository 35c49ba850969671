# Shared by scripts/run and scripts/test: the virtual environment and the local services.

PYTHON="${PYTHON:-python3}"
VENV=".venv"

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        echo "==> Creating $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    # Reinstall when pyproject.toml changed since the last install.
    if [ ! -f "$VENV/.installed" ] || [ pyproject.toml -nt "$VENV/.installed" ]; then
        echo "==> Installing the project and its dependencies into $VENV"
        "$VENV/bin/pip" install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
        "$VENV/bin/pip" install --quiet -e ".[dev]" 2>&1 | grep -v "is ignored" || true
        "$VENV/bin/python" -c "import django, rest_framework, djstripe, pytest" \
            || { echo "error: installing the dependencies failed" >&2; exit 1; }
        touch "$VENV/.installed"
    fi
}

is_local_url() {
    case "$1" in
        *@127.0.0.1*|*@localhost*|*//127.0.0.1*|*//localhost*) return 0 ;;
        *) return 1 ;;
    esac
}

postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

# Start a local service that is installed but stopped; fail loudly when it is not installed.
ensure_postgres() {
    postgres_up && return 0
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        echo "==> Starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
        for _ in $(seq 1 30); do postgres_up && return 0; sleep 1; done
    fi
    echo "error: PostgreSQL is needed on 127.0.0.1:5432 and is not running or not installed" >&2
    exit 1
}

ensure_redis() {
    redis_up && return 0
    if command -v redis-server >/dev/null; then
        echo "==> Starting Redis"
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
            >/dev/null || true
        for _ in $(seq 1 30); do redis_up && return 0; sleep 1; done
    fi
    echo "error: Redis is needed on 127.0.0.1:6379 and is not running or not installed" >&2
    exit 1
}

# Debian's chromium for the tests marked `browser`: Playwright drives this one and never
# downloads a browser of its own.
CHROMIUM="/usr/bin/chromium"

ensure_chromium() {
    [ -x "$CHROMIUM" ] && return 0
    if command -v apt-get >/dev/null; then
        echo "==> Installing Debian's chromium"
        local sudo=""
        if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
        $sudo apt-get update -qq || true
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || true
    fi
    [ -x "$CHROMIUM" ] && return 0
    echo "error: the browser tests need Debian's chromium at $CHROMIUM (apt-get install -y chromium)" >&2
    exit 1
}
