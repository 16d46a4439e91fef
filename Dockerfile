# healgrid's three services, one image each, from one Dockerfile.
#
# For users (the default targets `ledger`, `trader`, `gateway`): a `rust`
# builder compiles the release binaries, and each runtime image is a slim
# Debian with a non-root user, a healthcheck and nothing but its binary:
#
#   docker build --target ledger  -t healgrid/ledger  .
#   docker build --target trader  -t healgrid/trader  .
#   docker build --target gateway -t healgrid/gateway .
#   (or `docker compose build`, which builds all three)
#
# From binaries built on the host (`cargo build --release --bins`, copied
# into .docker-bin/ by tests/compose/run.sh): the `*-from-host` targets
# make the same runtime images without a Rust toolchain in Docker. CI uses
# them: its machines cannot pull the `rust` image, and compiling inside a
# container would build everything a second time.
#
# Stage order matters for Docker's classic builder (no BuildKit), which
# runs every stage up to the target: the host targets come before the
# builder, so building them never needs the `rust` image.
#
# Both paths name RUNTIME_BASE (default debian:bookworm-slim); where images
# cannot be pulled, tests/compose/base-images.sh makes it from Debian's
# packages with debootstrap.

ARG RUNTIME_BASE=debian:bookworm-slim
ARG RUST_IMAGE=rust:1-slim-bookworm

FROM ${RUNTIME_BASE} AS runtime
# CA certificates for the Kraken API and TLS database connections; the
# debootstrapped base already has them, so no network is needed there.
RUN set -eu; \
    if [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then \
      apt-get update; \
      apt-get install -y --no-install-recommends ca-certificates; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    groupadd --system --gid 10001 healgrid; \
    useradd --system --uid 10001 --gid healgrid --home-dir /var/lib/healgrid \
      --shell /usr/sbin/nologin healgrid; \
    mkdir -p /var/lib/healgrid; \
    chown healgrid:healgrid /var/lib/healgrid
WORKDIR /var/lib/healgrid
# Listen on the container's network; each service reads only its own.
ENV RUST_LOG=info \
    LEDGER_LISTEN=0.0.0.0:50051 \
    TRADER_LISTEN=0.0.0.0:50052 \
    GATEWAY_LISTEN=0.0.0.0:8080
USER healgrid:healgrid

# ---- runtime images from host binaries (BIN_DIR inside the context) ----

FROM runtime AS ledger-from-host
ARG BIN_DIR=.docker-bin
COPY ${BIN_DIR}/ledger-service /usr/local/bin/ledger-service
EXPOSE 50051
HEALTHCHECK --interval=5s --timeout=5s --start-period=20s --retries=3 \
  CMD ["ledger-service", "--check-health"]
ENTRYPOINT ["ledger-service"]

FROM runtime AS trader-from-host
ARG BIN_DIR=.docker-bin
COPY ${BIN_DIR}/trader-service /usr/local/bin/trader-service
ENV TRADER_DATABASE_URL=sqlite:///var/lib/healgrid/trader.db
VOLUME /var/lib/healgrid
EXPOSE 50052
HEALTHCHECK --interval=5s --timeout=5s --start-period=20s --retries=3 \
  CMD ["trader-service", "ctl", "--url", "http://127.0.0.1:50052", "health"]
ENTRYPOINT ["trader-service", "run"]

FROM runtime AS gateway-from-host
ARG BIN_DIR=.docker-bin
COPY ${BIN_DIR}/gateway /usr/local/bin/gateway
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=5s --start-period=10s --retries=3 \
  CMD ["gateway", "--check-health"]
ENTRYPOINT ["gateway"]

# ---- the builder, for users who can pull the rust image ----

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY . .
# The trader is built on its own with `--no-default-features`: its image runs
# `trader-service run`, which calls the ledger over gRPC, so it leaves out
# the in-process ledger (`backtest`) and, built apart from the ledger (whose
# features would otherwise be unified into it), the PostgreSQL driver.
RUN cargo build --release --locked --bins -p ledger-service -p gateway \
 && cargo build --release --locked --no-default-features -p trader-service --bin trader-service \
 && mkdir -p /out \
 && for b in ledger-service trader-service gateway; do \
      objcopy --strip-debug "target/release/$b" "/out/$b"; \
    done

FROM runtime AS ledger
COPY --from=builder /out/ledger-service /usr/local/bin/ledger-service
EXPOSE 50051
HEALTHCHECK --interval=5s --timeout=5s --start-period=20s --retries=3 \
  CMD ["ledger-service", "--check-health"]
ENTRYPOINT ["ledger-service"]

FROM runtime AS trader
COPY --from=builder /out/trader-service /usr/local/bin/trader-service
ENV TRADER_DATABASE_URL=sqlite:///var/lib/healgrid/trader.db
VOLUME /var/lib/healgrid
EXPOSE 50052
HEALTHCHECK --interval=5s --timeout=5s --start-period=20s --retries=3 \
  CMD ["trader-service", "ctl", "--url", "http://127.0.0.1:50052", "health"]
ENTRYPOINT ["trader-service", "run"]

FROM runtime AS gateway
COPY --from=builder /out/gateway /usr/local/bin/gateway
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=5s --start-period=10s --retries=3 \
  CMD ["gateway", "--check-health"]
ENTRYPOINT ["gateway"]
