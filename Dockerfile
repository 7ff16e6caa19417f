# Agensium server image.
#
# Build:  docker build -t agensium .        (needs BuildKit, the default since Docker 23)
# Run:    docker compose up -d              (see compose.yaml)
#
# ---------------------------------------------------------------------------
# Stage 1: build the release binary.
# rust:*-bookworm is based on buildpack-deps:bookworm, which already ships
# build-essential (gcc, g++, make): enough for the `duckdb` crate's `bundled`
# feature (DuckDB's C++ sources are compiled by the cc crate; no cmake needed)
# and for rusqlite's bundled SQLite. No OpenSSL is needed (no native TLS).
# ---------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder

WORKDIR /app

# The whole build context (minus .dockerignore) is copied so that any assets
# embedded at compile time (e.g. include_bytes!/include_str! of playground/)
# are available.
COPY . .

# Registry and target dir live in BuildKit cache mounts, so rebuilds only
# recompile what changed (DuckDB's C++ build takes a long time). The binary is
# copied out of the cache mount, which is not part of the image layer.
RUN --mount=type=cache,id=agensium-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=agensium-cargo-git,target=/usr/local/cargo/git \
    --mount=type=cache,id=agensium-target,target=/app/target \
    cargo build --release --locked --bin agensium \
 && install -D -m 0755 /app/target/release/agensium /out/agensium

# ---------------------------------------------------------------------------
# Stage 2: minimal runtime.
# ---------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# ca-certificates: outbound HTTPS (e.g. the OpenAI API).
# libstdc++6 / libgcc-s1: runtime of the bundled DuckDB C++ library (already in
# the slim image as apt dependencies; listed to make the requirement explicit).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libstdc++6 libgcc-s1 \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 agensium \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin agensium \
 && mkdir -p /app /data \
 && chown agensium:agensium /app /data

COPY --from=builder /out/agensium /usr/local/bin/agensium
# The playground's page and assets are embedded in the binary (include_bytes!).

WORKDIR /app
ENV DATA_DIR=/data \
    PORT=8000
VOLUME /data
EXPOSE 8000

USER agensium:agensium

# `agensium healthcheck` exits 0 when the server on $PORT answers /readyz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/agensium", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/agensium"]
CMD ["serve"]
