# Rendered by dlenv 0.1.0 from dlenv.lock (sha256:956dfe10f7f0231ea7fdf2899e0dd655315aadb78632f31dbf3556d983baf234), exact mode:
# the native build's Debian base (the very .debs of the lock) as a tarball in
# .dlenv/, which 'dlenv dockerfile --mode exact' writes and git does not keep.
# Do not edit: change dlenv.toml, run 'dlenv lock', then 'dlenv dockerfile' again.
# Build (BuildKit): DOCKER_BUILDKIT=1 docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt \
#     --target runtime -t python-base .
# Targets: runtime, train.

FROM scratch AS base
# Debian bookworm: 59 packages pinned in dlenv.lock (InRelease checked with gpgv, each .deb by sha256), assembled by dlenv
ADD .dlenv/base-25d9e12bccd9ae04.tar.gz /

FROM base AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# pip 26.3
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/1 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-1.txt \
    && mv /opt/layers/1/usr/local/lib/python3.11/site-packages /opt/layers/1/usr/local/lib/python3.11/dist-packages

FROM base AS runtime
COPY --from=builder /opt/layers/1/ /
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

FROM base AS train
COPY --from=builder /opt/layers/1/ /
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
COPY --chmod=644 [".dlenv/dlenv-launch.py", "/usr/local/lib/dlenv/launch.py"]
USER 1000:1000
COPY --chown=1000:1000 ["hello.py", "/workspace/"]
CMD ["python3", "hello.py"]
# dlenv-rendered: sha256:afed970e6bd3389487bb79f99b1182f41b12169c6ff3f22639e2e78c5b335e27
