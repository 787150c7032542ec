# Builds the one `brokerd` binary; each container runs one service (`brokerd token`, …).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p brokerd

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home-dir /var/lib/broker broker
COPY --from=build /src/target/release/brokerd /usr/local/bin/brokerd
USER broker
ENTRYPOINT ["/usr/local/bin/brokerd"]
