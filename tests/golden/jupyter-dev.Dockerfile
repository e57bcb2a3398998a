# Rendered by dlenv 0.1.0 from dlenv.lock (sha256:a3567850963368ba4a0fd2933e434e063d647bcb3286408dc6629dd98e67ba48), portable mode:
# Debian bookworm from a registry, pinned by digest; apt installs the .debs and pip the
# wheels at the versions and hashes the lock pins. It builds with Docker alone and is
# yours to change ('dlenv dockerfile' writes it again from the lock).
# Build: DOCKER_BUILDKIT=1 docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt \
#     --target runtime -t jupyter-dev .
# The secret is optional: the CA bundle of a proxy that inspects HTTPS, read by apt
# and pip while they download and never copied into a layer.
# Targets: runtime, dev, dev-ssh.

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

# packages of 1 MiB or more: 3 packages, pinned with hashes in requirements/locked-large.txt
FROM pip AS large
RUN --mount=type=bind,source=requirements/locked-large.txt,target=/tmp/requirements.txt \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 -m pip install --require-hashes --no-deps --only-binary=:all: --root /opt/layer -r /tmp/requirements.txt

# the smaller packages: 2 packages, pinned with hashes in requirements/locked-small.txt
FROM pip AS small
RUN --mount=type=bind,source=requirements/locked-small.txt,target=/tmp/requirements.txt \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 -m pip install --require-hashes --no-deps --only-binary=:all: --root /opt/layer -r /tmp/requirements.txt

# What every target shares: the base and the locked packages
FROM base AS env
COPY --from=large /opt/layer/ /
COPY --from=small /opt/layer/ /

FROM env AS runtime
ENV PATH="/home/dlenv/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    LANG="C.UTF-8" \
    PYTHONUNBUFFERED="1" \
    HOME="/home/dlenv" \
    SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt"
LABEL dev.dlenv.lock.digest="sha256:a3567850963368ba4a0fd2933e434e063d647bcb3286408dc6629dd98e67ba48" \
      dev.dlenv.profile="" \
      dev.dlenv.python="3.11" \
      dev.dlenv.spec.digest="sha256:9a2d304325cb27024e01bc6ccf0249f4a15c55068289c55ec646de4e14c4aca1" \
      org.opencontainers.image.created="2026-11-17T20:03:31Z" \
      org.opencontainers.image.title="jupyter-dev"
WORKDIR /workspace
USER 1000:1000
CMD ["python3"]

# the dev profile's packages: 89 packages, pinned with hashes in requirements/locked-dev.txt
FROM pip AS packages-dev
RUN --mount=type=bind,source=requirements/locked-dev.txt,target=/tmp/requirements.txt \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 -m pip install --require-hashes --no-deps --only-binary=:all: --root /opt/layer -r /tmp/requirements.txt

FROM env AS dev
# Debian packages of the dev profile, at the lock's versions
RUN --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then echo 'Acquire::https::CAInfo "/run/secrets/ca";' > /etc/apt/apt.conf.d/99dlenv-ca; fi \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        git=1:2.39.5-0+deb12u3 curl=7.88.1-10+deb12u15 less=590-2.1~deb12u2 \
        nano=7.2-1+deb12u1 vim-tiny=2:9.0.1378-2+deb12u2 procps=2:4.0.2-3 \
        xz-utils=5.4.1-1+deb12u1 unzip=6.0-28 openssh-client=1:9.2p1-2+deb12u10 \
        openssh-server=1:9.2p1-2+deb12u10 \
    && rm -rf /var/lib/apt/lists/* /etc/apt/apt.conf.d/99dlenv-ca
COPY --from=packages-dev /opt/layer/ /
ENV PATH="/home/dlenv/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    LANG="C.UTF-8" \
    PYTHONUNBUFFERED="1" \
    HOME="/home/dlenv" \
    SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt"
LABEL dev.dlenv.lock.digest="sha256:a3567850963368ba4a0fd2933e434e063d647bcb3286408dc6629dd98e67ba48" \
      dev.dlenv.profile="dev" \
      dev.dlenv.python="3.11" \
      dev.dlenv.spec.digest="sha256:9a2d304325cb27024e01bc6ccf0249f4a15c55068289c55ec646de4e14c4aca1" \
      org.opencontainers.image.created="2026-11-17T20:03:31Z" \
      org.opencontainers.image.title="jupyter-dev"
EXPOSE 8888
EXPOSE 2222
WORKDIR /workspace
USER 1000:1000
CMD ["jupyter", "lab", "--no-browser", "--ip=0.0.0.0", "--port=8888"]

# The dev target with sshd on 2222 instead of JupyterLab: docker run -p 127.0.0.1:2222:2222
#   -v ~/.ssh/id_ed25519.pub:/home/dlenv/.ssh/authorized_keys:ro IMAGE, then ssh -p 2222 dlenv@127.0.0.1
FROM dev AS dev-ssh
CMD ["/bin/sh", "-c", "k=\"$HOME/.sshd/host_ed25519_key\"; mkdir -p \"$HOME/.sshd\" && { [ -f \"$k\" ] || ssh-keygen -q -t ed25519 -N \"\" -f \"$k\"; } && exec /usr/sbin/sshd -D -e -f /dev/null -p 2222 -h \"$k\" -o PidFile=/tmp/sshd.pid -o UsePAM=no -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no -o PermitRootLogin=no -o AuthorizedKeysFile=.ssh/authorized_keys -o StrictModes=no -o AllowTcpForwarding=local -o 'Subsystem sftp internal-sftp'"]
