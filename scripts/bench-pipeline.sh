#!/usr/bin/env bash
# The whole pipeline, side by side with the original's design, in one run:
# ../shared/peer (FastAPI → Celery on Redis → search → LLM → ServiceDesk
# Plus) and ours (ingress → JetStream → context-gatherer → llm-enhancer →
# writeback, history-projector beside), each driven by the peer's drive.py
# against the peer's zero-latency stand-ins, with the same data:
#
#   sustained: N tickets as fast as CONC connections allow
#   steady:    50 and 150 tickets/s for SECONDS each
#
# and the peak resident memory of each of our stage processes. Our search is
# the lexical one (no embedder), as the peer's is.
#
#   scripts/bench-pipeline.sh [N] [SECONDS]        (run by `just bench-pipeline`)
#
# Expects the bench stack's environment (AI_AGENTS_*); installs Redis
# (Debian) and the peer's Python packages (.dev/peer-venv) when missing.
set -euo pipefail
N=${1:-3000}
SECONDS_PER_RATE=${2:-30}
CONC=32
root=$(cd "$(dirname "$0")/.." && pwd)
peer=${PEER_DIR:-$root/../shared/peer}
dataset=${DATASET:-$root/../shared/data/retrieval-dev.json}
venv="$root/.dev/peer-venv"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
log() { printf '\n== %s\n' "$*"; }

[ -d "$peer/pipeline" ] || { echo "the peer is not at $peer (set PEER_DIR)"; exit 2; }
command -v redis-server >/dev/null || {
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import fastapi, celery, httpx, psycopg' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check fastapi uvicorn 'celery[redis]' httpx 'psycopg[binary]'
fi
PY="$venv/bin/python"
cargo build -q --release -p aiagents
bin="$root/target/release/aiagents"

# --- CPU accounting, the same for both -------------------------------------
# While a run drives, every 0.5 s: the CPU ticks (1/100 s, reaped children
# included) of each process of either pipeline, of the shared stand-ins and
# of the driver, then the machine's busy and total ticks. Counted from the
# first sample that sees the driver, so start-up work is left out. Bash
# builtins only, so that sampling itself costs next to nothing.
group_of() { # CMDLINE: sets group to its group's name, or to nothing
  case "$1" in
    *drive.py*) group=driver ;;
    *"uvicorn standins:app"*) group=stand-ins ;;
    *"uvicorn ingress:app"*) group=peer-ingress ;;
    *"celery -A tasks"*) group=celery-workers ;;
    *redis-server*) group=redis ;;
    *nats-server*) group=nats-server ;;
    *"aiagents run "*) group=${1##*aiagents run } ;;
    postgres* | */bin/postgres*) group=postgres ;;
    *) group= ;;
  esac
}
sample_cpu() { # OUT
  local dir pid args line rest group
  local -a words fields
  while :; do
    for dir in /proc/[0-9]*; do
      pid=${dir#/proc/}
      mapfile -d '' words 2>/dev/null <"$dir/cmdline" || continue
      args="${words[*]}"
      group_of "$args"
      [ -n "$group" ] || continue
      read -r line 2>/dev/null <"$dir/stat" || continue
      rest=${line##*) }
      read -r -a fields <<<"$rest"
      echo "${group%% *}:$pid $((fields[11] + fields[12] + fields[13] + fields[14]))"
    done
    read -r -a fields </proc/stat
    echo "machine-busy $((fields[1] + fields[2] + fields[3] + fields[6] + fields[7] + fields[8]))"
    echo "machine-total $((fields[1] + fields[2] + fields[3] + fields[4] + fields[5] + fields[6] + fields[7] + fields[8]))"
    sleep 0.5
  done >"$1"
}
# CPU seconds per 1,000 tickets of each group, and how busy the machine was.
cpu_program='
    /^driver:/ { seen = 1 }
    !seen && !always { next }
    { if (!($1 in first)) first[$1] = $2; last[$1] = $2 }
    END {
      for (key in first) if (key !~ /^machine/) { split(key, k, ":"); sum[k[1]] += last[key] - first[key] }
      for (group in sum) { printf "  %-18s %6.2f\n", group, sum[group] / 100 * 1000 / n; total += sum[group] }
      printf "= %-18s %6.2f\n", "all", total / 100 * 1000 / n
      printf "= machine busy: %.0f %% of both cores\n", 100 * (last["machine-busy"] - first["machine-busy"]) / (last["machine-total"] - first["machine-total"])
    }'
cpu_report() { # SAMPLES N
  echo "CPU per 1,000 tickets (s), from the driver's start:"
  awk -v n="$2" "$cpu_program" "$1" | sort | sed 's/^= /  /'
}
# What our processes use with no traffic at all, for SECONDS.
idle_report() { # SECONDS
  local samples
  samples=$(mktemp "$work/samples.XXXXXX")
  sample_cpu "$samples" &
  local sampler=$!
  sleep "$1"
  kill -KILL "$sampler"; wait "$sampler" 2>/dev/null || true
  echo "CPU per minute, idle (s):"
  # "Per 1,000 tickets" with 1,000 * SECONDS / 60 tickets is per minute.
  awk -v n=$((1000 * $1 / 60)) -v always=1 "$cpu_program" "$samples" | sort | sed 's/^= /  /'
}
# Runs a command with the sampler alongside, then reports. Each run has a
# samples file of its own.
with_cpu() { # N COMMAND...
  local n=$1 samples
  shift
  samples=$(mktemp "$work/samples.XXXXXX")
  sample_cpu "$samples" &
  local sampler=$!
  "$@"
  kill -KILL "$sampler"; wait "$sampler" 2>/dev/null || true
  cpu_report "$samples" "$n"
}

# --- The peer (PEER=0 skips it, to profile ours alone) ---------------------
if [ "${PEER:-1}" != 0 ]; then
peer_db="peer_$(date +%s)"
psql_owner() { "$AI_AGENTS_PG_BINDIR/psql" -q "$AI_AGENTS_TEST_ADMIN_URL" "$@"; }
psql_owner -c "create database $peer_db" >/dev/null
peer_dsn="${AI_AGENTS_TEST_ADMIN_URL%/*}/$peer_db"
run_peer() { # label N RATE
  log "peer (FastAPI + Celery + Redis): $1"
  with_cpu "$2" env REDIS_PORT=16390 STANDINS_PORT=47330 PEER_PORT=47331 \
    bash "$peer/pipeline/run_peer.sh" "$PY" "$peer_dsn" "$dataset" "$2" "$3" "$CONC" 2>&1 | grep -v '^$'
}
run_peer "sustained, $N tickets, $CONC connections" "$N" 0
run_peer "steady 50 tickets/s for ${SECONDS_PER_RATE}s" $((50 * SECONDS_PER_RATE)) 50
run_peer "steady 150 tickets/s for ${SECONDS_PER_RATE}s" $((150 * SECONDS_PER_RATE)) 150
psql_owner -c "drop database $peer_db with (force)" >/dev/null
fi

# --- Ours ------------------------------------------------------------------
standins_port=47340
(cd "$peer/pipeline" && exec "$PY" -m uvicorn standins:app --port "$standins_port" --log-level warning) & pids+=($!)
standins_pid=$!
standins="http://127.0.0.1:$standins_port"
export AI_AGENTS_SECRET_KEYS=${AI_AGENTS_SECRET_KEYS:-$("$bin" keygen)}
export RUST_LOG=error
"$bin" migrate >/dev/null
"$bin" nats apply >/dev/null
secret=$("$bin" tenant add --id peer --name Peer --itsm-url "$standins" --itsm-credentials '{"authtoken":"bench"}' \
  | sed -n 's/.*secret[^:]*: *\([^ ]*\).*/\1/p' | head -n 1)
[ -n "$secret" ] || { echo "could not read the tenant's webhook secret"; exit 1; }
"$bin" import tickets --tenant peer --file "$dataset" >/dev/null
ingress_port=47341
declare -A stage_pid=()
port_offset=0
for service in ingress context-gatherer llm-enhancer writeback history-projector; do
  metrics_port=$((47350 + port_offset))
  port_offset=$((port_offset + 1))
  AI_AGENTS_INGRESS_ADDR="127.0.0.1:$ingress_port" \
  AI_AGENTS_INGRESS_RATE_LIMIT_PER_MINUTE=100000000 \
  AI_AGENTS_METRICS_ADDR="127.0.0.1:$metrics_port" \
  AI_AGENTS_LLM_BASE_URL="$standins/v1" \
  AI_AGENTS_EMBEDDINGS_URL= \
    "$bin" run "$service" & pids+=($!)
  stage_pid[$service]=$!
done
sleep 3
ours() { # label N RATE
  log "ours (ingress → JetStream → stages): $1"
  (cd "$peer/pipeline" && with_cpu "$2" "$PY" drive.py "http://127.0.0.1:$ingress_port" peer "$secret" "$2" "$3" "$standins" "$CONC" "$dataset")
}
ours "sustained, $N tickets, $CONC connections" "$N" 0
ours "steady 50 tickets/s for ${SECONDS_PER_RATE}s" $((50 * SECONDS_PER_RATE)) 50
ours "steady 150 tickets/s for ${SECONDS_PER_RATE}s" $((150 * SECONDS_PER_RATE)) 150

log "ours with no traffic for 30 s"
sleep 5 # the projector catches up
idle_report 30

log "our processes' peak resident memory (VmHWM) over the runs"
for service in "${!stage_pid[@]}"; do
  printf '%-18s %s\n' "$service" "$(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' "/proc/${stage_pid[$service]}/status")"
done
