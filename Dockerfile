# syntax=docker/dockerfile:1
# profilegate's container image (docs/container.md): a Rust build stage on Debian, then a Debian
# slim runtime with the binary only, run as the non-root user 65532:65532.
#
#   docker build --build-arg BUILD_GIT_COMMIT="$(git rev-parse HEAD)" -t profilegate .
#   docker run --rm --read-only -p 8080:8080 -p 9091:9091 \
#     -v "$PWD/config.toml:/etc/profilegate/config.toml:ro" \
#     -v profilegate-data:/var/lib/profilegate profilegate
#
# The image's conventions (the configuration decides; these are what the image expects):
#   /etc/profilegate/config.toml   the configuration (mount it; the image ships none)
#   /var/lib/profilegate           the volume for the sled store: store.path = "/var/lib/profilegate"
#   8080, 9091                     server.listen = "0.0.0.0:8080", server.admin_listen = "0.0.0.0:9091"
#                                  (the HEALTHCHECK asks 127.0.0.1:9091/healthz)
#
# Build arguments:
#   BUILD_GIT_COMMIT   the commit `profilegate --version` names; .dockerignore leaves .git out of
#                      the build context, so without it the version says "commit unknown"
#   CARGO_FEATURES     extra cargo flags, e.g. "--no-default-features" (glibc's allocator
#                      instead of mimalloc, README "Performance")
#   RUST_VERSION, DEBIAN_RELEASE   the builder's toolchain and both stages' Debian release (the
#                      runtime's glibc must be the builder's or newer)

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=trixie

# ---------------------------------------------------------------- build
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder

# cmake: libz-ng-sys (pingora's compression) builds zlib-ng with it. The image has gcc, g++, make.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

ARG BUILD_GIT_COMMIT=
ARG CARGO_FEATURES=
# The release profile of Cargo.toml (fat LTO, one codegen unit: ~6 min on 2 cores), the locked
# dependency versions. The caches keep the registry and target/ between builds; the binary is
# copied out of the cached target/ in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    BUILD_GIT_COMMIT="${BUILD_GIT_COMMIT}" \
    cargo build --locked --release --bin profilegate ${CARGO_FEATURES} \
 && install -D -m 0755 target/release/profilegate /out/profilegate \
 && /out/profilegate --version

# ---------------------------------------------------------------- runtime
FROM debian:${DEBIAN_RELEASE}-slim

# The non-root user (fixed ids, so volume ownership does not depend on the image); the store's
# directory belongs to it, the configuration directory to root (read-only for profilegate).
# The binary needs only libc, libm, libgcc_s and the loader (ldd), all in the base image; its
# TLS roots are compiled in (webpki-roots), so no ca-certificates package.
RUN groupadd --gid 65532 profilegate \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin profilegate \
 && install -d -o 65532 -g 65532 -m 0750 /var/lib/profilegate \
 && install -d -o 0 -g 0 -m 0755 /etc/profilegate

COPY --from=builder --chown=0:0 --chmod=0755 /out/profilegate /usr/local/bin/profilegate

USER 65532:65532
# Smoke test: the binary starts in this image, as this user (its libraries are here).
RUN ["/usr/local/bin/profilegate", "--version"]

VOLUME ["/var/lib/profilegate"]
WORKDIR /var/lib/profilegate
EXPOSE 8080 9091

# /healthz on the admin port, without curl or wget in the image: bash's /dev/tcp. Change or
# drop it (--no-healthcheck) when server.admin_listen is not port 9091.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9091 && printf 'GET /healthz HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q '^HTTP/1\\.1 200 '"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/profilegate"]
CMD ["--config", "/etc/profilegate/config.toml"]
