#!/usr/bin/env bash
# The whole pipeline, side by side with the original's design, in one run:
# ../shared/peer (FastAPI → Celery on Redis → search → LLM → ServiceDesk
# Plus) and ours (ingress → JetStream → context-gatherer → llm-enhancer →
# writeback, history-projector and incident-correlator beside — the
# original has no incidents, so ours does strictly more), each driven by the peer's drive.py
# against the peer's zero-latency stand-ins, with the same data:
#
#   sustained: N tickets as fast as CONC connections allow
#   steady:    50 and 150 tickets/s for SECONDS each
#
# and the peak resident memory of each of our stage processes. Our search is
# the lexical one (no embedder), as the peer's is; with SEMANTIC=1 each run
# is made a third time by ours with search by meaning on, as users run it:
# the embedder service (the local all-MiniLM-L6-v2, one process) embeds the
# imported corpus before the runs and every ticket's query during them, and
# its CPU and memory are reported with ours.
#
#   scripts/bench-pipeline.sh [N] [SECONDS]        (run by `just bench-pipeline`)
#
# The steady runs are made ROUNDS times (default 3), the peer's and ours
# alternating, and the summary gives each side's median p99. RUNS="50" (any
# of "sustained 50 150", the default all three) runs only those; PEER=0
# leaves the peer out. After each of our runs, the time each ticket spent per
# stage (from the projection) shows where the tail sits.
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
      for (key in first) if (key !~ /^machine/) { split(key, k, ":"); if (k[1] !~ other) sum[k[1]] += last[key] - first[key] }
      for (group in sum) { printf "  %-18s %6.2f\n", group, sum[group] / 100 * 1000 / n; total += sum[group] }
      printf "= %-18s %6.2f\n", "all", total / 100 * 1000 / n
      printf "= machine busy: %.0f %% of both cores\n", 100 * (last["machine-busy"] - first["machine-busy"]) / (last["machine-total"] - first["machine-total"])
    }'
cpu_report() { # SAMPLES N
  echo "CPU per 1,000 tickets (s), from the driver's start:"
  awk -v n="$2" -v other="$3" "$cpu_program" "$1" | sort | sed 's/^= /  /'
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
  awk -v n=$((1000 * $1 / 60)) -v always=1 -v other="$peer_groups" "$cpu_program" "$samples" | sort | sed 's/^= /  /'
}
# The groups of each side: a run's report leaves out the other side's (idle)
# processes. PostgreSQL is shared and counted for both.
peer_groups='^(peer-ingress|celery-workers|redis)$'
our_groups='^(nats-server|ingress|context-gatherer|llm-enhancer|writeback|history-projector|incident-correlator|embedder)$'
# Runs a command with the sampler alongside, then reports the groups not
# matching OTHER. Each run has a samples file of its own.
with_cpu() { # N OTHER COMMAND...
  local n=$1 other=$2 samples
  shift 2
  samples=$(mktemp "$work/samples.XXXXXX")
  sample_cpu "$samples" &
  local sampler=$!
  "$@"
  kill -KILL "$sampler"; wait "$sampler" 2>/dev/null || true
  cpu_report "$samples" "$n" "$other"
}

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
embedder_port=47360
if [ "${SEMANTIC:-0}" = 1 ]; then
  # The embedder first, so that the import's tickets get their vectors.
  # As deployed (deploy/compose, deploy/k8s): one thread per forward pass.
  RAYON_NUM_THREADS=1 AI_AGENTS_EMBEDDER_ADDR="127.0.0.1:$embedder_port" AI_AGENTS_METRICS_ADDR="127.0.0.1:47359" \
    "$bin" run embedder & pids+=($!)
  embedder_pid=$!
  for i in $(seq 120); do
    curl -fsS "http://127.0.0.1:$embedder_port/v1/models" >/dev/null 2>&1 && break
    sleep 0.5
  done
fi
ingress_port=47341
declare -A stage_pid=()
declare -A peak_rss=()
# Our stages, with search by meaning (MODE=semantic: the query embedded by
# the embedder) or by words alone (MODE=lexical). Switching modes restarts
# them; a run's CPU is counted from the driver's start, so start-up is not
# in it. Each process's peak memory is kept across restarts.
our_mode=
start_ours() { # MODE
  [ "$our_mode" = "$1" ] && return
  stop_ours
  local embeddings_url= port_offset=0 service metrics_port
  [ "$1" = semantic ] && embeddings_url="http://127.0.0.1:$embedder_port/v1"
  for service in ingress context-gatherer llm-enhancer writeback history-projector incident-correlator; do
    metrics_port=$((47350 + port_offset))
    port_offset=$((port_offset + 1))
    AI_AGENTS_INGRESS_ADDR="127.0.0.1:$ingress_port" \
    AI_AGENTS_INGRESS_RATE_LIMIT_PER_MINUTE=100000000 \
    AI_AGENTS_METRICS_ADDR="127.0.0.1:$metrics_port" \
    AI_AGENTS_LLM_BASE_URL="$standins/v1" \
    AI_AGENTS_EMBEDDINGS_URL="$embeddings_url" \
      "$bin" run "$service" & pids+=($!)
    stage_pid[$service]=$!
  done
  our_mode=$1
  sleep 3
}
stop_ours() {
  local service pid rss
  for service in "${!stage_pid[@]}"; do
    pid=${stage_pid[$service]}
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "${peak_rss[$service]:-0}" ] && peak_rss[$service]=$rss
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  stage_pid=()
}
start_ours lexical
# The corpus: published as ticket.resolved, projected by our history
# projector and (SEMANTIC=1) embedded by the embedder's indexer before any
# run, so that no run shares the machine with the import.
corpus=$("$bin" import tickets --tenant peer --file "$dataset" | sed -n 's/^\([0-9]*\) resolved tickets published.*/\1/p')
[ -n "$corpus" ] || { echo "the import did not say how many tickets it published"; exit 1; }
vectors_wanted=0
[ "${SEMANTIC:-0}" = 1 ] && vectors_wanted=$corpus
for i in $(seq 600); do
  [ "$("$AI_AGENTS_PG_BINDIR/psql" -qAt "$AI_AGENTS_OWNER_DATABASE_URL" -c \
    "select (select count(*) from ticket_history where tenant_id = 'peer') >= $corpus
        and (select count(*) from ticket_embeddings where tenant_id = 'peer') >= $vectors_wanted")" = t ] && break
  sleep 0.5
done
echo "the corpus: $corpus tickets projected, $("$AI_AGENTS_PG_BINDIR/psql" -qAt "$AI_AGENTS_OWNER_DATABASE_URL" -c "select count(*) from ticket_embeddings where tenant_id = 'peer'") embedded"
sleep 3
ours() { # label N RATE
  log "ours (ingress → JetStream → stages): $1"
  local since
  since=$(date -u +%FT%T.%NZ)
  pg_profile_reset
  with_cpu "$2" "$peer_groups|^embedder\$" drive_ours "$since" "$2" "$3"
  stage_report "$since"
  pg_profile_report "$2"
}
ours_semantic() { # label N RATE
  log "ours with search by meaning (embedder on): $1"
  local since
  since=$(date -u +%FT%T.%NZ)
  pg_profile_reset
  with_cpu "$2" "$peer_groups" drive_ours "$since" "$2" "$3"
  stage_report "$since"
  pg_profile_report "$2"
}
# PG_PROFILE=1 (with the bench stack started with
# AI_AGENTS_PG_EXTRA_OPTIONS="-c shared_preload_libraries=pg_stat_statements"):
# after each of our runs, the statements our processes ran in it, per
# ticket — calls, execution time and buffer hits — the heaviest first.
pg_profile_reset() {
  [ "${PG_PROFILE:-0}" = 1 ] || return 0
  "$AI_AGENTS_PG_BINDIR/psql" -qAt "$AI_AGENTS_OWNER_DATABASE_URL" \
    -c "create extension if not exists pg_stat_statements" -c "select pg_stat_statements_reset()" >/dev/null
}
pg_profile_report() { # N
  [ "${PG_PROFILE:-0}" = 1 ] || return 0
  echo "PostgreSQL per ticket (pg_stat_statements; calls, ms, shared blocks hit, statement):"
  "$AI_AGENTS_PG_BINDIR/psql" -qAt -F '|' "$AI_AGENTS_OWNER_DATABASE_URL" -v n="$1" <<'SQL' |
select round(sum(calls)::numeric / :n, 2), round(sum(total_exec_time)::numeric / :n, 3),
       round(sum(shared_blks_hit)::numeric / :n, 1),
       left(regexp_replace(query, '\s+', ' ', 'g'), 110)
from pg_stat_statements s join pg_database d on d.oid = s.dbid
where d.datname = current_database() and query not like '%pg_stat_statements%'
group by query order by sum(total_exec_time) desc limit 30
SQL
    awk -F'|' '{ calls += $1; ms += $2; printf "  %6s %8s %8s  %s\n", $1, $2, $3, $4 }
               END { printf "  %6.2f %8.3f           all of the above\n", calls, ms }'
}
# The driver, then the wait for the projection: the work a run leaves behind
# is counted in its own CPU and not in the next run's.
drive_ours() { # SINCE N RATE
  (cd "$peer/pipeline" && "$PY" drive.py "http://127.0.0.1:$ingress_port" peer "$secret" "$2" "$3" "$standins" "$CONC" "$dataset")
  caught_up "$1" "$2"
}
# Milliseconds from each event to the next, per stage (waiting in the
# stage's consumer included), for the tickets received since SINCE.
stage_report() { # SINCE
  "$AI_AGENTS_PG_BINDIR/psql" -qAt -F ' ' "$AI_AGENTS_OWNER_DATABASE_URL" -v since="$1" <<'SQL' |
with t as (
  select extract(epoch from context_gathered_at - received_at) * 1000 as context,
         extract(epoch from enhanced_at - context_gathered_at) * 1000 as llm,
         extract(epoch from written_back_at - enhanced_at) * 1000 as writeback
  from enhancement_history
  where tenant_id = 'peer' and received_at >= :'since'::timestamptz and written_back_at is not null)
select stage, round(p[1]::numeric, 1), round(p[2]::numeric, 1), round(p[3]::numeric, 1), round(p[4]::numeric, 1)
from (select 'context' as stage, percentile_cont(array[0.5, 0.95, 0.99, 1]) within group (order by context) as p from t
      union all select 'llm', percentile_cont(array[0.5, 0.95, 0.99, 1]) within group (order by llm) from t
      union all select 'writeback', percentile_cont(array[0.5, 0.95, 0.99, 1]) within group (order by writeback) from t) s
SQL
    awk 'BEGIN { print "per stage, ms (p50 / p95 / p99 / max):" } { printf "  %-10s %s / %s / %s / %s\n", $1, $2, $3, $4, $5 }'
}
# Waits (at most 60 s) until the projection holds all N tickets received
# since SINCE, so that the next run starts on a settled system and the stage
# report sees the whole run.
caught_up() { # SINCE N
  local i
  for i in $(seq 120); do
    [ "$("$AI_AGENTS_PG_BINDIR/psql" -qAt "$AI_AGENTS_OWNER_DATABASE_URL" -c \
      "select count(*) from enhancement_history where tenant_id = 'peer' and received_at >= '$1' and written_back_at is not null")" -ge "$2" ] && return
    sleep 0.5
  done
  echo "the projection did not catch up with the run in 60 s"
}

# --- The peer (PEER=0 skips it, to profile ours alone) ---------------------
if [ "${PEER:-1}" != 0 ]; then
peer_db="peer_$(date +%s)"
psql_owner() { "$AI_AGENTS_PG_BINDIR/psql" -q "$AI_AGENTS_TEST_ADMIN_URL" "$@"; }
psql_owner -c "create database $peer_db" >/dev/null
peer_dsn="${AI_AGENTS_TEST_ADMIN_URL%/*}/$peer_db"
run_peer() { # label N RATE
  log "peer (FastAPI + Celery + Redis): $1"
  with_cpu "$2" "$our_groups" env REDIS_PORT=16390 STANDINS_PORT=47330 PEER_PORT=47331 \
    bash "$peer/pipeline/run_peer.sh" "$PY" "$peer_dsn" "$dataset" "$2" "$3" "$CONC" 2>&1 | grep -v '^$'
}
fi


# --- The runs --------------------------------------------------------------
# Each kind of run, the peer's then ours, one after the other; the steady
# runs ROUNDS times over (default 3), so that a moment of noise on the
# machine falls on one run and not on one side. RUNS chooses the kinds (any
# of "sustained 50 150"), PEER=0 leaves the peer out. Every run's output is
# kept for the summary at the end.
results="$work/results"
: >"$results"
# Waits (at most 30 s) until the machine has been idle for a second, so that
# no run starts while work left by the one before (ours: start-up imports,
# PostgreSQL's autovacuum) still takes CPU from it.
settle() {
  local i busy total
  local -a before after
  for i in $(seq 30); do
    read -r -a before </proc/stat
    sleep 1
    read -r -a after </proc/stat
    busy=$((after[1] + after[2] + after[3] + after[6] + after[7] + after[8] - before[1] - before[2] - before[3] - before[6] - before[7] - before[8]))
    total=$((busy + after[4] + after[5] - before[4] - before[5]))
    [ $((100 * busy)) -lt $((5 * total)) ] && return
  done
  echo "(the machine did not settle below 5 % busy in 30 s)"
}
one_run() { # SIDE RUNNER label N RATE
  local side=$1 rate=$5
  shift
  settle
  "$@" 2>&1 | tee "$work/run.out"
  echo "$rate $side $(sed -n 's/.*webhook->note.* p99=\([0-9]*\) ms.*/\1/p' "$work/run.out")" >>"$results"
}
for run in ${RUNS:-sustained 50 150}; do
  case "$run" in
    sustained) label="sustained, $N tickets, $CONC connections" n=$N rate=0 rounds=1 ;;
    [0-9]*) label="steady $run tickets/s for ${SECONDS_PER_RATE}s" n=$((run * SECONDS_PER_RATE)) rate=$run rounds=${ROUNDS:-3} ;;
    *) echo "unknown run '$run' in RUNS" >&2; exit 2 ;;
  esac
  for round in $(seq "$rounds"); do
    [ "$rounds" = 1 ] || label_round=" (round $round of $rounds)"
    if [ "${PEER:-1}" != 0 ]; then one_run peer run_peer "$label${label_round:-}" "$n" "$rate"; fi
    # (Modes switch here, not inside a run: a run is a pipeline's subshell.)
    start_ours lexical
    one_run ours ours "$label${label_round:-}" "$n" "$rate"
    if [ "${SEMANTIC:-0}" = 1 ]; then
      start_ours semantic
      one_run ours-semantic ours_semantic "$label${label_round:-}" "$n" "$rate"
    fi
  done
done
[ "${PEER:-1}" = 0 ] || psql_owner -c "drop database $peer_db with (force)" >/dev/null

log "p99 webhook → note per run (ms), and the median of each side's runs"
awk '{ key = ($1 == 0 ? "sustained" : "steady " $1 "/s") " " $2; runs[key] = runs[key] " " $3; n[key]++; v[key, n[key]] = $3 }
     END {
       for (key in runs) {
         # insertion sort of the few values, for the median
         for (i = 2; i <= n[key]; i++) for (j = i; j > 1 && v[key, j - 1] + 0 > v[key, j] + 0; j--) { t = v[key, j]; v[key, j] = v[key, j - 1]; v[key, j - 1] = t }
         printf "  %-22s runs:%s  median %s\n", key, runs[key], v[key, int((n[key] + 1) / 2)]
       }
     }' "$results" | sort

log "ours with no traffic for 30 s"
idle_report 30

log "our processes' peak resident memory (VmHWM) over the runs"
stop_ours
if [ -n "${embedder_pid:-}" ]; then
  peak_rss[embedder]=$(awk '/VmHWM/ {print $2}' "/proc/$embedder_pid/status")
fi
for service in "${!peak_rss[@]}"; do
  awk -v name="$service" -v kb="${peak_rss[$service]}" 'BEGIN { printf "%-18s %.1f MB\n", name, kb / 1024 }'
done
