# kinesin's container image: a Rust 1.95 build stage and a small Debian runtime stage.
#
#   docker build -t kinesin .                 # or: podman build -t kinesin .
#   docker run -p 4567:4567 -v kinesin-data:/var/lib/kinesin kinesin
#   docker run kinesin serve --help           # any subcommand; `serve` flags as usual
#
# The server listens on 0.0.0.0:4567 and keeps its data in the volume /var/lib/kinesin (both
# set through KINESIN_LISTEN / KINESIN_DATA_DIR, so flags after `serve` add to them). It runs as
# the unprivileged user `kinesin` (uid 10001); a bind-mounted data directory must be writable
# by that uid. The health check runs `kinesin health` (GET /health/ready): the image needs no curl.
#
# Packaging a binary built on the host instead (same glibc or older than bookworm's 2.36), e.g.
# where no Rust image can be pulled: put it alone in a directory as `kinesin` and run
#   docker build -f Dockerfile --build-arg KINESIN_BINARY_FROM=prebuilt -t kinesin <that dir>
# (tests/blackbox/test_container.py does this with podman).

ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim
# `builder` (from source, the default) or `prebuilt` (the build context's ./kinesin).
ARG KINESIN_BINARY_FROM=builder

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# rust-toolchain.toml is left out on purpose: the image is the 1.95 toolchain already, and the
# file's clippy/rustfmt components are not needed to build.
COPY Cargo.toml Cargo.lock ./
COPY crates crates
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release -p kinesin \
    && cp target/release/kinesin /usr/local/bin/kinesin

FROM scratch AS prebuilt
COPY kinesin /usr/local/bin/kinesin

FROM ${KINESIN_BINARY_FROM} AS binary

FROM ${RUNTIME_IMAGE} AS runtime
RUN groupadd --gid 10001 kinesin \
    && useradd --uid 10001 --gid kinesin --no-create-home --home-dir /var/lib/kinesin \
        --shell /usr/sbin/nologin kinesin \
    && mkdir -p /var/lib/kinesin \
    && chown kinesin:kinesin /var/lib/kinesin
COPY --from=binary /usr/local/bin/kinesin /usr/local/bin/kinesin
ENV KINESIN_LISTEN=0.0.0.0:4567 \
    KINESIN_DATA_DIR=/var/lib/kinesin
USER kinesin
WORKDIR /var/lib/kinesin
VOLUME ["/var/lib/kinesin"]
# The API (JSON and CBOR, HTTP/1.1 and h2c), the web console (/console), /metrics and /health/*.
EXPOSE 4567
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["kinesin", "health", "--timeout-secs", "4"]
# `docker stop` sends SIGTERM: kinesin finishes the requests in flight and syncs its data.
STOPSIGNAL SIGTERM
ENTRYPOINT ["kinesin"]
CMD ["serve"]
