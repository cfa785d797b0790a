# The vault-injector container image: the release binary, the shared libraries it loads and
# nothing else (no shell, no package manager), running as the stock chart's uid 100 / gid 1000.
# Drop-in for the hashicorp/vault-k8s image: the entrypoint is the binary, so the chart's
# `args: ["agent-inject", "2>&1"]` runs `vault-injector agent-inject 2>&1`.
#
# images/build.sh compiles the binary and prepares this file's build context (the rootfs/
# folder: the binary, the exact libraries `ldd` lists for it, /etc/passwd and /etc/group), then
# builds it with `buildah bud`. No base image and no registry is needed, and any engine builds
# the same image from that context:
#
#   images/build.sh vault-injector                                    # -> target/images/vault-injector.tar
#   docker build -f Dockerfile target/images/context/vault-injector   # the same recipe, with docker
FROM scratch
ARG VERSION=0.0.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="vault-injector" \
      org.opencontainers.image.description="Drop-in Rust replacement for the Vault Agent Injector (hashicorp/vault-k8s)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MPL-2.0"
COPY rootfs/ /
# The stock chart's uid and gid (pod securityContext runAsUser 100, runAsGroup/fsGroup 1000).
USER 100:1000
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/vault-injector"]
CMD ["agent-inject"]
