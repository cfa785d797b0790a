# syntax=docker/dockerfile:1
#
# vault-injector container image: a static musl binary (release profile) on distroless/static,
# running as uid 100 / gid 1000 like the stock vault-helm chart expects. Drop-in for the
# hashicorp/vault-k8s image: the entrypoint is the binary, so the chart's
# `args: ["agent-inject", "2>&1"]` runs `vault-injector agent-inject 2>&1`.
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/vault-injector:TAG --push .
#
# Each platform is compiled natively in its own build stage (under QEMU emulation for the
# non-native one, which is slow but needs no cross linker): amd64 builds
# x86_64-unknown-linux-musl, arm64 builds aarch64-unknown-linux-musl.
# Untested here: the project's machines have no container engine (see README, "Container image").

ARG RUST_VERSION=1.95
ARG BASE_IMAGE=gcr.io/distroless/static-debian12

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
ARG TARGETARCH
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
RUN case "${TARGETARCH:-amd64}" in \
      amd64) echo x86_64-unknown-linux-musl ;; \
      arm64) echo aarch64-unknown-linux-musl ;; \
      *) echo "unsupported TARGETARCH ${TARGETARCH}" >&2; exit 1 ;; \
    esac > /rust-target \
 && rustup target add "$(cat /rust-target)"
# ring's C and assembly parts are compiled with musl-gcc (Debian's musl-tools, on either arch).
ENV CC_x86_64_unknown_linux_musl=musl-gcc \
    CC_aarch64_unknown_linux_musl=musl-gcc
WORKDIR /src
# Only what `cargo build --bin vault-injector` reads (benches/ and examples/ are declared or
# discovered targets of the package manifest).
COPY Cargo.toml Cargo.lock ./
# .cargo/config.toml: build settings of the C parts (mimalloc's commit-on-demand default).
COPY .cargo ./.cargo
COPY src ./src
COPY benches ./benches
COPY examples ./examples
# The release profile of Cargo.toml. glibc's ldd says "statically linked" for Rust's static-pie
# musl binaries (checked here); anything else is a dynamic binary, which the base image cannot run.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    target="$(cat /rust-target)" \
 && cargo build --release --locked --target "$target" --bin vault-injector \
 && install -D -m 0755 "target/$target/release/vault-injector" /out/vault-injector \
 && ldd /out/vault-injector 2>&1 | tee /dev/stderr | grep -qE 'statically linked|not a dynamic executable'

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="vault-injector" \
      org.opencontainers.image.description="Drop-in Rust replacement for the Vault Agent Injector (hashicorp/vault-k8s)" \
      org.opencontainers.image.licenses="MPL-2.0"
COPY --from=build /out/vault-injector /usr/local/bin/vault-injector
# The stock chart's uid and gid (pod securityContext runAsUser 100, runAsGroup/fsGroup 1000).
USER 100:1000
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/vault-injector"]
CMD ["agent-inject"]
