# Recipes, most used first. `./dev <recipe>` installs `just` and the
# servers on a fresh machine and then runs the recipe.

set shell := ["bash", "-euo", "pipefail", "-c"]

# The whole test suite on real nats-server and PostgreSQL (what CI runs).
test *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'scripts/stack.sh down test' EXIT
    source "$(scripts/stack.sh up test)"
    cargo nextest run --workspace --no-fail-fast {{ARGS}}

# The end-to-end demo: stack up, five services, webhooks, notes printed, stack down.
demo:
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'scripts/stack.sh down demo' EXIT
    source "$(scripts/stack.sh up demo)"
    RUST_LOG="${RUST_LOG:-warn}" cargo run -q -p aiagents -- demo

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
