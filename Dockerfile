# syntax=docker/dockerfile:1
# One image for every service: `brokerd <service>` runs one (see deploy/), `brokerd` alone runs
# them all embedded, and the `broker` command line is there too (`--entrypoint broker`).
# Needs BuildKit (the default builder of current Docker) for the cache mounts.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target directories are cache mounts: a rebuild downloads nothing it has
# already and recompiles only the crates that changed. Cache mounts are not part of the image,
# so the binaries are copied out of target/ in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p brokerd -p broker-cli \
    && mkdir -p /out \
    && cp target/release/brokerd target/release/broker /out/

FROM debian:bookworm-slim
# CA certificates for TLS to S3, PostgreSQL, trusted issuers and webhook endpoints.
# A fixed numeric uid, so Kubernetes can check runAsNonRoot (deploy/kubernetes uses 10001).
# ca-certificates is left unpinned on purpose: each build should take the release's newest.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 broker \
    && useradd --system --uid 10001 --gid broker --home-dir /var/lib/broker --create-home broker
COPY --from=build /out/brokerd /out/broker /usr/local/bin/
# Embedded mode keeps ./data here, writable by the broker user.
WORKDIR /var/lib/broker
# In a container the listeners must not be on loopback; a service run alone still needs
# BROKER_GRPC_ADDR=0.0.0.0:<its port>.
ENV BROKER_HTTP_ADDR=0.0.0.0:8080 \
    BROKER_METRICS_ADDR=0.0.0.0:9464
# gateway (HTTP), token, access, filetransfer, events (gRPC), metrics.
EXPOSE 8080 50051 50052 50053 50054 9464
USER 10001:10001
ENTRYPOINT ["brokerd"]
