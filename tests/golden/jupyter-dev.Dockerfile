# Rendered by dlenv 0.1.0 from dlenv.lock (sha256:eb2f96831b33b26c4806af11f92b16451510f291634872504380c50a8603b829); do not edit:
# change dlenv.toml, run 'dlenv lock', then 'dlenv dockerfile' again.
# Build (BuildKit): DOCKER_BUILDKIT=1 docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt \
#     --target runtime -t jupyter-dev .
# Targets: runtime, dev.

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

# python packages 2/4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/2 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-2.txt \
    && mv /opt/layers/2/usr/local/lib/python3.11/site-packages /opt/layers/2/usr/local/lib/python3.11/dist-packages

# python packages 4/4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/3 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-3.txt \
    && mv /opt/layers/3/usr/local/lib/python3.11/site-packages /opt/layers/3/usr/local/lib/python3.11/dist-packages

FROM base AS runtime
COPY --from=builder /opt/layers/1/ /
COPY --from=builder /opt/layers/2/ /
COPY --from=builder /opt/layers/3/ /
ENV LANG="C.UTF-8" \
    PYTHONUNBUFFERED="1" \
    HOME="/home/dlenv" \
    SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt"
LABEL dev.dlenv.lock.digest="sha256:eb2f96831b33b26c4806af11f92b16451510f291634872504380c50a8603b829" \
      dev.dlenv.profile="" \
      dev.dlenv.python="3.11" \
      dev.dlenv.spec.digest="sha256:de33536347a36724169c1866957f663429e0576da60390a208ec7311deaf9e00" \
      org.opencontainers.image.created="2026-11-17T20:03:31Z" \
      org.opencontainers.image.title="jupyter-dev"
WORKDIR /workspace
USER 1000:1000
CMD ["python3"]

FROM scratch AS base-dev
# Debian bookworm: 102 packages pinned in dlenv.lock (InRelease checked with gpgv, each .deb by sha256), assembled by dlenv
ADD .dlenv/base-273bbaa4feeb0794.tar.gz /

FROM builder AS builder-dev
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# jupyterlab 4.6.6 (profile dev)
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/4 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-4.txt \
    && mv /opt/layers/4/usr/local/lib/python3.11/site-packages /opt/layers/4/usr/local/lib/python3.11/dist-packages

# profile python packages 1/2 (profile dev)
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/5 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-5.txt \
    && mv /opt/layers/5/usr/local/lib/python3.11/site-packages /opt/layers/5/usr/local/lib/python3.11/dist-packages

# profile python packages 2/2 (profile dev)
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/6 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-6.txt \
    && mv /opt/layers/6/usr/local/lib/python3.11/site-packages /opt/layers/6/usr/local/lib/python3.11/dist-packages

FROM base-dev AS dev
COPY --from=builder /opt/layers/1/ /
COPY --from=builder /opt/layers/2/ /
COPY --from=builder /opt/layers/3/ /
COPY --from=builder-dev /opt/layers/4/ /
COPY --from=builder-dev /opt/layers/5/ /
COPY --from=builder-dev /opt/layers/6/ /
ENV LANG="C.UTF-8" \
    PYTHONUNBUFFERED="1" \
    HOME="/home/dlenv" \
    SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt"
LABEL dev.dlenv.lock.digest="sha256:eb2f96831b33b26c4806af11f92b16451510f291634872504380c50a8603b829" \
      dev.dlenv.profile="dev" \
      dev.dlenv.python="3.11" \
      dev.dlenv.spec.digest="sha256:de33536347a36724169c1866957f663429e0576da60390a208ec7311deaf9e00" \
      org.opencontainers.image.created="2026-11-17T20:03:31Z" \
      org.opencontainers.image.title="jupyter-dev"
EXPOSE 8888
WORKDIR /workspace
USER 1000:1000
CMD ["python3"]
# dlenv-rendered: sha256:ee9aeebad1c9f6e001914e08fc5407038ac28e929dc783062874529ecac71514
