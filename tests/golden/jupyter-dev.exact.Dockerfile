# Rendered by dlenv 0.1.0 from dlenv.lock (sha256:a3567850963368ba4a0fd2933e434e063d647bcb3286408dc6629dd98e67ba48), exact mode:
# the native build's Debian base (the very .debs of the lock) as a tarball in
# .dlenv/, which 'dlenv dockerfile --mode exact' writes and git does not keep.
# Do not edit: change dlenv.toml, run 'dlenv lock', then 'dlenv dockerfile' again.
# Build (BuildKit): DOCKER_BUILDKIT=1 docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt \
#     --target runtime -t jupyter-dev .
# Targets: runtime, dev, dev-ssh.

FROM scratch AS base
# Debian bookworm: 58 packages pinned in dlenv.lock (InRelease checked with gpgv, each .deb by sha256), assembled by dlenv
ADD .dlenv/base-6f7b56e3d2d7e1ca.tar.gz /

FROM base AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# numpy 2.4.6
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/1 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-1.txt \
    && mv /opt/layers/1/usr/local/lib/python3.11/site-packages /opt/layers/1/usr/local/lib/python3.11/dist-packages

# pandas 3.1.1
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/2 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-2.txt \
    && mv /opt/layers/2/usr/local/lib/python3.11/site-packages /opt/layers/2/usr/local/lib/python3.11/dist-packages

# pip 26.3
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/3 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-3.txt \
    && mv /opt/layers/3/usr/local/lib/python3.11/site-packages /opt/layers/3/usr/local/lib/python3.11/dist-packages

# python packages 2/4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/4 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-4.txt \
    && mv /opt/layers/4/usr/local/lib/python3.11/site-packages /opt/layers/4/usr/local/lib/python3.11/dist-packages

FROM base AS runtime
COPY --from=builder /opt/layers/1/ /
COPY --from=builder /opt/layers/2/ /
COPY --from=builder /opt/layers/3/ /
COPY --from=builder /opt/layers/4/ /
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

FROM scratch AS base-dev
# Debian bookworm: 133 packages pinned in dlenv.lock (InRelease checked with gpgv, each .deb by sha256), assembled by dlenv
ADD .dlenv/base-b392821cf03aa4b4.tar.gz /

FROM builder AS builder-dev
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# jupyterlab 4.6.6 (profile dev)
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/5 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-5.txt \
    && mv /opt/layers/5/usr/local/lib/python3.11/site-packages /opt/layers/5/usr/local/lib/python3.11/dist-packages

# babel 2.18.0 (profile dev)
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/6 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-6.txt \
    && mv /opt/layers/6/usr/local/lib/python3.11/site-packages /opt/layers/6/usr/local/lib/python3.11/dist-packages

# jedi 0.20.1 (profile dev)
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/7 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-7.txt \
    && mv /opt/layers/7/usr/local/lib/python3.11/site-packages /opt/layers/7/usr/local/lib/python3.11/dist-packages

# debugpy 1.8.22 (profile dev)
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/8 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-8.txt \
    && mv /opt/layers/8/usr/local/lib/python3.11/site-packages /opt/layers/8/usr/local/lib/python3.11/dist-packages

# pygments 2.21.0 (profile dev)
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/9 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-9.txt \
    && mv /opt/layers/9/usr/local/lib/python3.11/site-packages /opt/layers/9/usr/local/lib/python3.11/dist-packages

# profile python packages 1/2 (profile dev)
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/10 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-10.txt \
    && mv /opt/layers/10/usr/local/lib/python3.11/site-packages /opt/layers/10/usr/local/lib/python3.11/dist-packages

# profile python packages 2/2 (profile dev)
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/11 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-11.txt \
    && mv /opt/layers/11/usr/local/lib/python3.11/site-packages /opt/layers/11/usr/local/lib/python3.11/dist-packages

FROM base-dev AS dev
COPY --from=builder /opt/layers/1/ /
COPY --from=builder /opt/layers/2/ /
COPY --from=builder /opt/layers/3/ /
COPY --from=builder /opt/layers/4/ /
COPY --from=builder-dev /opt/layers/5/ /
COPY --from=builder-dev /opt/layers/6/ /
COPY --from=builder-dev /opt/layers/7/ /
COPY --from=builder-dev /opt/layers/8/ /
COPY --from=builder-dev /opt/layers/9/ /
COPY --from=builder-dev /opt/layers/10/ /
COPY --from=builder-dev /opt/layers/11/ /
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

FROM dev AS dev-ssh
CMD ["/bin/sh", "-c", "k=\"$HOME/.sshd/host_ed25519_key\"; mkdir -p \"$HOME/.sshd\" && { [ -f \"$k\" ] || ssh-keygen -q -t ed25519 -N \"\" -f \"$k\"; } && exec /usr/sbin/sshd -D -e -f /dev/null -p 2222 -h \"$k\" -o PidFile=/tmp/sshd.pid -o UsePAM=no -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no -o PermitRootLogin=no -o AuthorizedKeysFile=.ssh/authorized_keys -o StrictModes=no -o AllowTcpForwarding=local -o 'Subsystem sftp internal-sftp'"]
# dlenv-rendered: sha256:bf15f848c74e2248125383124835440552aee25712cdba42e70dc00d7f428cb9
