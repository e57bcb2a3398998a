# Rendered by dlenv 0.1.0 from dlenv.lock (sha256:956dfe10f7f0231ea7fdf2899e0dd655315aadb78632f31dbf3556d983baf234), portable mode:
# Debian bookworm from a registry, pinned by digest; apt installs the .debs and pip the
# wheels at the versions and hashes the lock pins. It builds with Docker alone and is
# yours to change ('dlenv dockerfile' writes it again from the lock).
# Build: DOCKER_BUILDKIT=1 docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt \
#     --target runtime -t python-base .
# The secret is optional: the CA bundle of a proxy that inspects HTTPS, read by apt
# and pip while they download and never copied into a layer.
# Targets: runtime, train.

# Another registry or a mirror of the base: --build-arg BASE=REF@sha256:...
ARG BASE=debian:bookworm-slim@sha256:5555555555555555555555555555555555555555555555555555555555555555
# Another Debian mirror for apt: --build-arg DEBIAN_MIRROR=http://HOST/debian
# (security updates from DEBIAN_SECURITY_MIRROR, default: DEBIAN_MIRROR-security)
ARG DEBIAN_MIRROR=
ARG DEBIAN_SECURITY_MIRROR=

FROM ${BASE} AS base
ARG DEBIAN_MIRROR
ARG DEBIAN_SECURITY_MIRROR
# Debian's Python and the spec's packages at the lock's versions (apt takes their
# dependencies from bookworm); the image's user, key-only for sshd (no password);
# pip of that user installs into ~/.local.
RUN --mount=type=secret,id=ca \
    if [ -n "$DEBIAN_MIRROR" ]; then rm -f /etc/apt/sources.list.d/debian.sources \
        && key=/usr/share/keyrings/debian-archive-keyring.gpg \
        && security=${DEBIAN_SECURITY_MIRROR:-$DEBIAN_MIRROR-security} \
        && printf 'deb [signed-by=%s] %s %s main\n' "$key" "$DEBIAN_MIRROR" bookworm \
            "$key" "$DEBIAN_MIRROR" bookworm-updates "$key" "$security" bookworm-security \
        > /etc/apt/sources.list; fi \
    && if [ -f /run/secrets/ca ]; then echo 'Acquire::https::CAInfo "/run/secrets/ca";' > /etc/apt/apt.conf.d/99dlenv-ca; fi \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3=3.11.2-1+b1 python-is-python3=3.11.2-1+deb12u1 \
        ca-certificates=20230311+deb12u1 tzdata=2026b-0+deb12u1 \
        libgomp1=12.2.0-14+deb12u1 \
    && rm -rf /var/lib/apt/lists/* /etc/apt/apt.conf.d/99dlenv-ca \
    && (getent group 1000 >/dev/null || groupadd --gid 1000 dlenv) \
    && (getent passwd 1000 >/dev/null || useradd --no-log-init \
        --uid 1000 --gid 1000 --create-home --shell /bin/bash dlenv) \
    && usermod -p '*' dlenv \
    && mkdir -p /workspace \
    && printf '[global]\nbreak-system-packages = true\n' > /etc/pip.conf

# Debian's pip, to install the locked wheels; only the package stages have it
FROM base AS pip
RUN --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then echo 'Acquire::https::CAInfo "/run/secrets/ca";' > /etc/apt/apt.conf.d/99dlenv-ca; fi \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3-pip=23.0.1+dfsg-1 \
    && rm -rf /var/lib/apt/lists/* /etc/apt/apt.conf.d/99dlenv-ca
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore

# packages of 1 MiB or more: 1 package, pinned with hashes in requirements/locked-large.txt
FROM pip AS large
RUN --mount=type=bind,source=requirements/locked-large.txt,target=/tmp/requirements.txt \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 -m pip install --require-hashes --no-deps --only-binary=:all: --root /opt/layer -r /tmp/requirements.txt

# What every target shares: the base and the locked packages
FROM base AS env
COPY --from=large /opt/layer/ /

FROM env AS runtime
ENV PATH="/home/dlenv/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    LANG="C.UTF-8" \
    PYTHONUNBUFFERED="1" \
    HOME="/home/dlenv" \
    SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt" \
    PYTHONDONTWRITEBYTECODE="1"
LABEL dev.dlenv.lock.digest="sha256:956dfe10f7f0231ea7fdf2899e0dd655315aadb78632f31dbf3556d983baf234" \
      dev.dlenv.profile="" \
      dev.dlenv.python="3.11" \
      dev.dlenv.spec.digest="sha256:a80f624816f6ab5eba6e790883e2863ef5751f161aa1231e2284ebd9f4fd11d3" \
      org.opencontainers.image.created="2026-11-02T20:34:25Z" \
      org.opencontainers.image.title="python-base"
WORKDIR /workspace
USER 1000:1000
COPY --chown=1000:1000 ["hello.py", "/workspace/"]
CMD ["python3"]

FROM env AS train
ENV PATH="/home/dlenv/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    LANG="C.UTF-8" \
    PYTHONUNBUFFERED="1" \
    HOME="/home/dlenv" \
    SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt" \
    PYTHONDONTWRITEBYTECODE="1"
LABEL dev.dlenv.lock.digest="sha256:956dfe10f7f0231ea7fdf2899e0dd655315aadb78632f31dbf3556d983baf234" \
      dev.dlenv.profile="train" \
      dev.dlenv.python="3.11" \
      dev.dlenv.spec.digest="sha256:a80f624816f6ab5eba6e790883e2863ef5751f161aa1231e2284ebd9f4fd11d3" \
      org.opencontainers.image.created="2026-11-02T20:34:25Z" \
      org.opencontainers.image.title="python-base"
WORKDIR /workspace
COPY --chmod=644 ["requirements/dlenv-launch.py", "/usr/local/lib/dlenv/launch.py"]
USER 1000:1000
COPY --chown=1000:1000 ["hello.py", "/workspace/"]
CMD ["python3", "hello.py"]
