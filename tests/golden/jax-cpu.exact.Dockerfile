# Rendered by dlenv 0.1.0 from dlenv.lock (sha256:9666ecb34a1ec490c19bd4048c7c59df730f97387ed361ea15ac5d2bd0f801b9), exact mode:
# the native build's Debian base (the very .debs of the lock) as a tarball in
# .dlenv/, which 'dlenv dockerfile --mode exact' writes and git does not keep.
# Do not edit: change dlenv.toml, run 'dlenv lock', then 'dlenv dockerfile' again.
# Build (BuildKit): DOCKER_BUILDKIT=1 docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt \
#     --target runtime -t jax-cpu .
# Targets: runtime.

FROM scratch AS base
# Debian bookworm: 58 packages pinned in dlenv.lock (InRelease checked with gpgv, each .deb by sha256), assembled by dlenv
ADD .dlenv/base-6f7b56e3d2d7e1ca.tar.gz /

FROM base AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# jaxlib 0.4.38
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/1 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-1.txt \
    && mv /opt/layers/1/usr/local/lib/python3.11/site-packages /opt/layers/1/usr/local/lib/python3.11/dist-packages

# scipy 1.17.1
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/2 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-2.txt \
    && mv /opt/layers/2/usr/local/lib/python3.11/site-packages /opt/layers/2/usr/local/lib/python3.11/dist-packages

# numpy 2.4.6
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/3 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-3.txt \
    && mv /opt/layers/3/usr/local/lib/python3.11/site-packages /opt/layers/3/usr/local/lib/python3.11/dist-packages

# jax 0.4.38
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/4 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-4.txt \
    && mv /opt/layers/4/usr/local/lib/python3.11/site-packages /opt/layers/4/usr/local/lib/python3.11/dist-packages

# pip 26.3
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/5 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-5.txt \
    && mv /opt/layers/5/usr/local/lib/python3.11/site-packages /opt/layers/5/usr/local/lib/python3.11/dist-packages

# python packages 1/4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/6 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-6.txt \
    && mv /opt/layers/6/usr/local/lib/python3.11/site-packages /opt/layers/6/usr/local/lib/python3.11/dist-packages

# python packages 2/4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/7 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-7.txt \
    && mv /opt/layers/7/usr/local/lib/python3.11/site-packages /opt/layers/7/usr/local/lib/python3.11/dist-packages

# python packages 4/4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/8 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-8.txt \
    && mv /opt/layers/8/usr/local/lib/python3.11/site-packages /opt/layers/8/usr/local/lib/python3.11/dist-packages

FROM base AS runtime
COPY --from=builder /opt/layers/1/ /
COPY --from=builder /opt/layers/2/ /
COPY --from=builder /opt/layers/3/ /
COPY --from=builder /opt/layers/4/ /
COPY --from=builder /opt/layers/5/ /
COPY --from=builder /opt/layers/6/ /
COPY --from=builder /opt/layers/7/ /
COPY --from=builder /opt/layers/8/ /
ENV PATH="/home/dlenv/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    LANG="C.UTF-8" \
    PYTHONUNBUFFERED="1" \
    HOME="/home/dlenv" \
    SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt"
LABEL dev.dlenv.lock.digest="sha256:9666ecb34a1ec490c19bd4048c7c59df730f97387ed361ea15ac5d2bd0f801b9" \
      dev.dlenv.profile="" \
      dev.dlenv.python="3.11" \
      dev.dlenv.spec.digest="sha256:fedd4a19a6ba96ac2e6453e1c5d23c0a2cf7dc10d5fdeeb4df81a8fca01819b9" \
      org.opencontainers.image.created="2026-11-02T20:34:25Z" \
      org.opencontainers.image.title="jax-cpu"
WORKDIR /workspace
USER 1000:1000
CMD ["python3"]
# dlenv-rendered: sha256:0ed5ad1e5ac903621ab6b3642f5190eedf59def4185c753e06e8f0cc6838e8fa
