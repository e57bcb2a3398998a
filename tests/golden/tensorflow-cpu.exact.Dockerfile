# Rendered by dlenv 0.1.0 from dlenv.lock (sha256:30dc9fb64804a903f4e40c8c45cc19c3b44abb47cb538b25b9a650ca17598da8), exact mode:
# the native build's Debian base (the very .debs of the lock) as a tarball in
# .dlenv/, which 'dlenv dockerfile --mode exact' writes and git does not keep.
# Do not edit: change dlenv.toml, run 'dlenv lock', then 'dlenv dockerfile' again.
# Build (BuildKit): DOCKER_BUILDKIT=1 docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt \
#     --target runtime -t tensorflow-cpu .
# Targets: runtime, train.

FROM scratch AS base
# Debian bookworm: 58 packages pinned in dlenv.lock (InRelease checked with gpgv, each .deb by sha256), assembled by dlenv
ADD .dlenv/base-6f7b56e3d2d7e1ca.tar.gz /

FROM base AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# tensorflow 2.15.1
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/1 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-1.txt \
    && mv /opt/layers/1/usr/local/lib/python3.11/site-packages /opt/layers/1/usr/local/lib/python3.11/dist-packages

# libclang 18.1.1
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/2 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-2.txt \
    && mv /opt/layers/2/usr/local/lib/python3.11/site-packages /opt/layers/2/usr/local/lib/python3.11/dist-packages

# numpy 1.26.4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/3 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-3.txt \
    && mv /opt/layers/3/usr/local/lib/python3.11/site-packages /opt/layers/3/usr/local/lib/python3.11/dist-packages

# pandas 2.3.3
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/4 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-4.txt \
    && mv /opt/layers/4/usr/local/lib/python3.11/site-packages /opt/layers/4/usr/local/lib/python3.11/dist-packages

# grpcio 1.85.1
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/5 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-5.txt \
    && mv /opt/layers/5/usr/local/lib/python3.11/site-packages /opt/layers/5/usr/local/lib/python3.11/dist-packages

# tensorboard-data-server 0.7.2
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/6 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-6.txt \
    && mv /opt/layers/6/usr/local/lib/python3.11/site-packages /opt/layers/6/usr/local/lib/python3.11/dist-packages

# tensorboard 2.15.2
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/7 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-7.txt \
    && mv /opt/layers/7/usr/local/lib/python3.11/site-packages /opt/layers/7/usr/local/lib/python3.11/dist-packages

# tensorflow-io-gcs-filesystem 0.37.1
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/8 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-8.txt \
    && mv /opt/layers/8/usr/local/lib/python3.11/site-packages /opt/layers/8/usr/local/lib/python3.11/dist-packages

# h5py 3.16.0
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/9 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-9.txt \
    && mv /opt/layers/9/usr/local/lib/python3.11/site-packages /opt/layers/9/usr/local/lib/python3.11/dist-packages

# cryptography 50.0.2
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/10 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-10.txt \
    && mv /opt/layers/10/usr/local/lib/python3.11/site-packages /opt/layers/10/usr/local/lib/python3.11/dist-packages

# ml-dtypes 0.3.2
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/11 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-11.txt \
    && mv /opt/layers/11/usr/local/lib/python3.11/site-packages /opt/layers/11/usr/local/lib/python3.11/dist-packages

# pip 26.3
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/12 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-12.txt \
    && mv /opt/layers/12/usr/local/lib/python3.11/site-packages /opt/layers/12/usr/local/lib/python3.11/dist-packages

# keras 2.15.0
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/13 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-13.txt \
    && mv /opt/layers/13/usr/local/lib/python3.11/site-packages /opt/layers/13/usr/local/lib/python3.11/dist-packages

# setuptools 81.0.0
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/14 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-14.txt \
    && mv /opt/layers/14/usr/local/lib/python3.11/site-packages /opt/layers/14/usr/local/lib/python3.11/dist-packages

# python packages 1/4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/15 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-15.txt \
    && mv /opt/layers/15/usr/local/lib/python3.11/site-packages /opt/layers/15/usr/local/lib/python3.11/dist-packages

# python packages 2/4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/16 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-16.txt \
    && mv /opt/layers/16/usr/local/lib/python3.11/site-packages /opt/layers/16/usr/local/lib/python3.11/dist-packages

# python packages 3/4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/17 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-17.txt \
    && mv /opt/layers/17/usr/local/lib/python3.11/site-packages /opt/layers/17/usr/local/lib/python3.11/dist-packages

# python packages 4/4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/18 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-18.txt \
    && mv /opt/layers/18/usr/local/lib/python3.11/site-packages /opt/layers/18/usr/local/lib/python3.11/dist-packages

FROM base AS runtime
COPY --from=builder /opt/layers/1/ /
COPY --from=builder /opt/layers/2/ /
COPY --from=builder /opt/layers/3/ /
COPY --from=builder /opt/layers/4/ /
COPY --from=builder /opt/layers/5/ /
COPY --from=builder /opt/layers/6/ /
COPY --from=builder /opt/layers/7/ /
COPY --from=builder /opt/layers/8/ /
COPY --from=builder /opt/layers/9/ /
COPY --from=builder /opt/layers/10/ /
COPY --from=builder /opt/layers/11/ /
COPY --from=builder /opt/layers/12/ /
COPY --from=builder /opt/layers/13/ /
COPY --from=builder /opt/layers/14/ /
COPY --from=builder /opt/layers/15/ /
COPY --from=builder /opt/layers/16/ /
COPY --from=builder /opt/layers/17/ /
COPY --from=builder /opt/layers/18/ /
ENV PATH="/home/dlenv/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    LANG="C.UTF-8" \
    PYTHONUNBUFFERED="1" \
    HOME="/home/dlenv" \
    SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt" \
    TF_CPP_MIN_LOG_LEVEL="2"
LABEL dev.dlenv.lock.digest="sha256:30dc9fb64804a903f4e40c8c45cc19c3b44abb47cb538b25b9a650ca17598da8" \
      dev.dlenv.profile="" \
      dev.dlenv.python="3.11" \
      dev.dlenv.spec.digest="sha256:31eab2a2b63ae6e968b4ed94e1bd706bfeb76a267231893cc2ed500ed698155b" \
      org.opencontainers.image.created="2026-11-10T15:50:53Z" \
      org.opencontainers.image.title="tensorflow-cpu"
WORKDIR /workspace
USER 1000:1000
COPY --chown=1000:1000 ["train.py", "/workspace/"]
CMD ["python3"]

FROM base AS train
COPY --from=builder /opt/layers/1/ /
COPY --from=builder /opt/layers/2/ /
COPY --from=builder /opt/layers/3/ /
COPY --from=builder /opt/layers/4/ /
COPY --from=builder /opt/layers/5/ /
COPY --from=builder /opt/layers/6/ /
COPY --from=builder /opt/layers/7/ /
COPY --from=builder /opt/layers/8/ /
COPY --from=builder /opt/layers/9/ /
COPY --from=builder /opt/layers/10/ /
COPY --from=builder /opt/layers/11/ /
COPY --from=builder /opt/layers/12/ /
COPY --from=builder /opt/layers/13/ /
COPY --from=builder /opt/layers/14/ /
COPY --from=builder /opt/layers/15/ /
COPY --from=builder /opt/layers/16/ /
COPY --from=builder /opt/layers/17/ /
COPY --from=builder /opt/layers/18/ /
ENV PATH="/home/dlenv/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    LANG="C.UTF-8" \
    PYTHONUNBUFFERED="1" \
    HOME="/home/dlenv" \
    SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt" \
    TF_CPP_MIN_LOG_LEVEL="2"
LABEL dev.dlenv.lock.digest="sha256:30dc9fb64804a903f4e40c8c45cc19c3b44abb47cb538b25b9a650ca17598da8" \
      dev.dlenv.profile="train" \
      dev.dlenv.python="3.11" \
      dev.dlenv.spec.digest="sha256:31eab2a2b63ae6e968b4ed94e1bd706bfeb76a267231893cc2ed500ed698155b" \
      org.opencontainers.image.created="2026-11-10T15:50:53Z" \
      org.opencontainers.image.title="tensorflow-cpu"
WORKDIR /workspace
COPY --chmod=644 [".dlenv/dlenv-launch.py", "/usr/local/lib/dlenv/launch.py"]
USER 1000:1000
COPY --chown=1000:1000 ["train.py", "/workspace/"]
CMD ["python", "train.py"]
# dlenv-rendered: sha256:c0bd38cda432ae0c98757ee05d928a9dabeff5cfec1846e39568211238070b2c
