# Rendered by dlenv 0.1.0 from dlenv.lock (sha256:332c620705aa1d5d3910200753bff7abdd225652f251c4f81ba3cb194ca45fe2), exact mode:
# the native build's Debian base (the very .debs of the lock) as a tarball in
# .dlenv/, which 'dlenv dockerfile --mode exact' writes and git does not keep.
# Do not edit: change dlenv.toml, run 'dlenv lock', then 'dlenv dockerfile' again.
# Build (BuildKit): DOCKER_BUILDKIT=1 docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt \
#     --target runtime -t tensorflow-gpu .
# Targets: runtime, train.

FROM scratch AS base
# Debian bookworm: 58 packages pinned in dlenv.lock (InRelease checked with gpgv, each .deb by sha256), assembled by dlenv
ADD .dlenv/base-6f7b56e3d2d7e1ca.tar.gz /

FROM base AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# nvidia-cudnn-cu12 8.9.7.29
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/1 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-1.txt \
    && mv /opt/layers/1/usr/local/lib/python3.11/site-packages /opt/layers/1/usr/local/lib/python3.11/dist-packages

# tensorflow 2.17.1
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/2 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-2.txt \
    && mv /opt/layers/2/usr/local/lib/python3.11/site-packages /opt/layers/2/usr/local/lib/python3.11/dist-packages

# nvidia-cublas-cu12 12.3.4.1
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/3 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-3.txt \
    && mv /opt/layers/3/usr/local/lib/python3.11/site-packages /opt/layers/3/usr/local/lib/python3.11/dist-packages

# nvidia-cusparse-cu12 12.2.0.103
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/4 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-4.txt \
    && mv /opt/layers/4/usr/local/lib/python3.11/site-packages /opt/layers/4/usr/local/lib/python3.11/dist-packages

# nvidia-nccl-cu12 2.19.3
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/5 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-5.txt \
    && mv /opt/layers/5/usr/local/lib/python3.11/site-packages /opt/layers/5/usr/local/lib/python3.11/dist-packages

# nvidia-cusolver-cu12 11.5.4.101
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/6 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-6.txt \
    && mv /opt/layers/6/usr/local/lib/python3.11/site-packages /opt/layers/6/usr/local/lib/python3.11/dist-packages

# nvidia-cufft-cu12 11.0.12.1
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/7 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-7.txt \
    && mv /opt/layers/7/usr/local/lib/python3.11/site-packages /opt/layers/7/usr/local/lib/python3.11/dist-packages

# nvidia-curand-cu12 10.3.4.107
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/8 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-8.txt \
    && mv /opt/layers/8/usr/local/lib/python3.11/site-packages /opt/layers/8/usr/local/lib/python3.11/dist-packages

# nvidia-cuda-nvrtc-cu12 12.3.107
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/9 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-9.txt \
    && mv /opt/layers/9/usr/local/lib/python3.11/site-packages /opt/layers/9/usr/local/lib/python3.11/dist-packages

# libclang 18.1.1
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/10 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-10.txt \
    && mv /opt/layers/10/usr/local/lib/python3.11/site-packages /opt/layers/10/usr/local/lib/python3.11/dist-packages

# nvidia-cuda-nvcc-cu12 12.3.107
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/11 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-11.txt \
    && mv /opt/layers/11/usr/local/lib/python3.11/site-packages /opt/layers/11/usr/local/lib/python3.11/dist-packages

# nvidia-nvjitlink-cu12 12.3.101
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/12 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-12.txt \
    && mv /opt/layers/12/usr/local/lib/python3.11/site-packages /opt/layers/12/usr/local/lib/python3.11/dist-packages

# numpy 1.26.4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/13 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-13.txt \
    && mv /opt/layers/13/usr/local/lib/python3.11/site-packages /opt/layers/13/usr/local/lib/python3.11/dist-packages

# nvidia-cuda-cupti-cu12 12.3.101
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/14 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-14.txt \
    && mv /opt/layers/14/usr/local/lib/python3.11/site-packages /opt/layers/14/usr/local/lib/python3.11/dist-packages

# grpcio 1.85.1
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/15 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-15.txt \
    && mv /opt/layers/15/usr/local/lib/python3.11/site-packages /opt/layers/15/usr/local/lib/python3.11/dist-packages

# tensorboard-data-server 0.7.2
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/16 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-16.txt \
    && mv /opt/layers/16/usr/local/lib/python3.11/site-packages /opt/layers/16/usr/local/lib/python3.11/dist-packages

# tensorboard 2.17.1
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/17 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-17.txt \
    && mv /opt/layers/17/usr/local/lib/python3.11/site-packages /opt/layers/17/usr/local/lib/python3.11/dist-packages

# tensorflow-io-gcs-filesystem 0.37.1
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/18 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-18.txt \
    && mv /opt/layers/18/usr/local/lib/python3.11/site-packages /opt/layers/18/usr/local/lib/python3.11/dist-packages

# h5py 3.16.0
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/19 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-19.txt \
    && mv /opt/layers/19/usr/local/lib/python3.11/site-packages /opt/layers/19/usr/local/lib/python3.11/dist-packages

# keras 3.15.1
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/20 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-20.txt \
    && mv /opt/layers/20/usr/local/lib/python3.11/site-packages /opt/layers/20/usr/local/lib/python3.11/dist-packages

# ml-dtypes 0.4.1
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/21 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-21.txt \
    && mv /opt/layers/21/usr/local/lib/python3.11/site-packages /opt/layers/21/usr/local/lib/python3.11/dist-packages

# pip 26.3
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/22 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-22.txt \
    && mv /opt/layers/22/usr/local/lib/python3.11/site-packages /opt/layers/22/usr/local/lib/python3.11/dist-packages

# pygments 2.21.0
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/23 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-23.txt \
    && mv /opt/layers/23/usr/local/lib/python3.11/site-packages /opt/layers/23/usr/local/lib/python3.11/dist-packages

# setuptools 81.0.0
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/24 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-24.txt \
    && mv /opt/layers/24/usr/local/lib/python3.11/site-packages /opt/layers/24/usr/local/lib/python3.11/dist-packages

# python packages 1/4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/25 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-25.txt \
    && mv /opt/layers/25/usr/local/lib/python3.11/site-packages /opt/layers/25/usr/local/lib/python3.11/dist-packages

# python packages 2/4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/26 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-26.txt \
    && mv /opt/layers/26/usr/local/lib/python3.11/site-packages /opt/layers/26/usr/local/lib/python3.11/dist-packages

# python packages 3/4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/27 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-27.txt \
    && mv /opt/layers/27/usr/local/lib/python3.11/site-packages /opt/layers/27/usr/local/lib/python3.11/dist-packages

# python packages 4/4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/28 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-28.txt \
    && mv /opt/layers/28/usr/local/lib/python3.11/site-packages /opt/layers/28/usr/local/lib/python3.11/dist-packages

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
COPY --from=builder /opt/layers/19/ /
COPY --from=builder /opt/layers/20/ /
COPY --from=builder /opt/layers/21/ /
COPY --from=builder /opt/layers/22/ /
COPY --from=builder /opt/layers/23/ /
COPY --from=builder /opt/layers/24/ /
COPY --from=builder /opt/layers/25/ /
COPY --from=builder /opt/layers/26/ /
COPY --from=builder /opt/layers/27/ /
COPY --from=builder /opt/layers/28/ /
ENV PATH="/home/dlenv/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    LANG="C.UTF-8" \
    PYTHONUNBUFFERED="1" \
    HOME="/home/dlenv" \
    SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt" \
    NVIDIA_VISIBLE_DEVICES="all" \
    NVIDIA_DRIVER_CAPABILITIES="compute,utility" \
    TF_CPP_MIN_LOG_LEVEL="2"
LABEL dev.dlenv.cuda="12.3" \
      dev.dlenv.lock.digest="sha256:332c620705aa1d5d3910200753bff7abdd225652f251c4f81ba3cb194ca45fe2" \
      dev.dlenv.min-driver="525.60.13" \
      dev.dlenv.profile="" \
      dev.dlenv.python="3.11" \
      dev.dlenv.spec.digest="sha256:1c4aff1498288b680641194688c9932976ab815446f30e02842524248b3b8aa0" \
      org.opencontainers.image.created="2026-11-10T16:18:28Z" \
      org.opencontainers.image.title="tensorflow-gpu"
WORKDIR /workspace
USER 1000:1000
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
COPY --from=builder /opt/layers/19/ /
COPY --from=builder /opt/layers/20/ /
COPY --from=builder /opt/layers/21/ /
COPY --from=builder /opt/layers/22/ /
COPY --from=builder /opt/layers/23/ /
COPY --from=builder /opt/layers/24/ /
COPY --from=builder /opt/layers/25/ /
COPY --from=builder /opt/layers/26/ /
COPY --from=builder /opt/layers/27/ /
COPY --from=builder /opt/layers/28/ /
ENV PATH="/home/dlenv/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    LANG="C.UTF-8" \
    PYTHONUNBUFFERED="1" \
    HOME="/home/dlenv" \
    SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt" \
    NVIDIA_VISIBLE_DEVICES="all" \
    NVIDIA_DRIVER_CAPABILITIES="compute,utility" \
    TF_CPP_MIN_LOG_LEVEL="2"
LABEL dev.dlenv.cuda="12.3" \
      dev.dlenv.lock.digest="sha256:332c620705aa1d5d3910200753bff7abdd225652f251c4f81ba3cb194ca45fe2" \
      dev.dlenv.min-driver="525.60.13" \
      dev.dlenv.profile="train" \
      dev.dlenv.python="3.11" \
      dev.dlenv.spec.digest="sha256:1c4aff1498288b680641194688c9932976ab815446f30e02842524248b3b8aa0" \
      org.opencontainers.image.created="2026-11-10T16:18:28Z" \
      org.opencontainers.image.title="tensorflow-gpu"
WORKDIR /workspace
COPY --chmod=644 [".dlenv/dlenv-launch.py", "/usr/local/lib/dlenv/launch.py"]
USER 1000:1000
CMD ["python", "train.py"]
# dlenv-rendered: sha256:8e22ffc0b487a271ae316e26906588ad641f5d2df42cb39990a0efd1e8a6f485
