# Rendered by dlenv 0.1.0 from dlenv.lock (sha256:2ee3cb875a17cfa7f0caab9cce9da73673772c18388814f7b31ec785879b1d7e), exact mode:
# the native build's Debian base (the very .debs of the lock) as a tarball in
# .dlenv/, which 'dlenv dockerfile --mode exact' writes and git does not keep.
# Do not edit: change dlenv.toml, run 'dlenv lock', then 'dlenv dockerfile' again.
# Build (BuildKit): DOCKER_BUILDKIT=1 docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt \
#     --target runtime -t pytorch-gpu .
# Targets: runtime.

FROM scratch AS base
# Debian bookworm: 58 packages pinned in dlenv.lock (InRelease checked with gpgv, each .deb by sha256), assembled by dlenv
ADD .dlenv/base-6f7b56e3d2d7e1ca.tar.gz /

FROM base AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# torch 2.5.1
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/1 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-1.txt \
    && mv /opt/layers/1/usr/local/lib/python3.11/site-packages /opt/layers/1/usr/local/lib/python3.11/dist-packages

# nvidia-cudnn-cu12 9.1.0.70
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/2 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-2.txt \
    && mv /opt/layers/2/usr/local/lib/python3.11/site-packages /opt/layers/2/usr/local/lib/python3.11/dist-packages

# nvidia-cublas-cu12 12.4.5.8
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/3 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-3.txt \
    && mv /opt/layers/3/usr/local/lib/python3.11/site-packages /opt/layers/3/usr/local/lib/python3.11/dist-packages

# nvidia-cufft-cu12 11.2.1.3
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/4 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-4.txt \
    && mv /opt/layers/4/usr/local/lib/python3.11/site-packages /opt/layers/4/usr/local/lib/python3.11/dist-packages

# triton 3.1.0
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/5 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-5.txt \
    && mv /opt/layers/5/usr/local/lib/python3.11/site-packages /opt/layers/5/usr/local/lib/python3.11/dist-packages

# nvidia-cusparse-cu12 12.3.1.170
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/6 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-6.txt \
    && mv /opt/layers/6/usr/local/lib/python3.11/site-packages /opt/layers/6/usr/local/lib/python3.11/dist-packages

# nvidia-nccl-cu12 2.21.5
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/7 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-7.txt \
    && mv /opt/layers/7/usr/local/lib/python3.11/site-packages /opt/layers/7/usr/local/lib/python3.11/dist-packages

# nvidia-cusolver-cu12 11.6.1.9
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/8 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-8.txt \
    && mv /opt/layers/8/usr/local/lib/python3.11/site-packages /opt/layers/8/usr/local/lib/python3.11/dist-packages

# nvidia-curand-cu12 10.3.5.147
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/9 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-9.txt \
    && mv /opt/layers/9/usr/local/lib/python3.11/site-packages /opt/layers/9/usr/local/lib/python3.11/dist-packages

# nvidia-cuda-nvrtc-cu12 12.4.127
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/10 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-10.txt \
    && mv /opt/layers/10/usr/local/lib/python3.11/site-packages /opt/layers/10/usr/local/lib/python3.11/dist-packages

# nvidia-nvjitlink-cu12 12.4.127
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/11 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-11.txt \
    && mv /opt/layers/11/usr/local/lib/python3.11/site-packages /opt/layers/11/usr/local/lib/python3.11/dist-packages

# nvidia-cuda-cupti-cu12 12.4.127
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/12 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-12.txt \
    && mv /opt/layers/12/usr/local/lib/python3.11/site-packages /opt/layers/12/usr/local/lib/python3.11/dist-packages

# sympy 1.13.1
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/13 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-13.txt \
    && mv /opt/layers/13/usr/local/lib/python3.11/site-packages /opt/layers/13/usr/local/lib/python3.11/dist-packages

# networkx 3.6.1
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/14 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-14.txt \
    && mv /opt/layers/14/usr/local/lib/python3.11/site-packages /opt/layers/14/usr/local/lib/python3.11/dist-packages

# pip 26.3
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/15 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-15.txt \
    && mv /opt/layers/15/usr/local/lib/python3.11/site-packages /opt/layers/15/usr/local/lib/python3.11/dist-packages

# python packages 1/4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/16 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-16.txt \
    && mv /opt/layers/16/usr/local/lib/python3.11/site-packages /opt/layers/16/usr/local/lib/python3.11/dist-packages

# python packages 2/4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/17 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-17.txt \
    && mv /opt/layers/17/usr/local/lib/python3.11/site-packages /opt/layers/17/usr/local/lib/python3.11/dist-packages

# python packages 3/4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/18 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-18.txt \
    && mv /opt/layers/18/usr/local/lib/python3.11/site-packages /opt/layers/18/usr/local/lib/python3.11/dist-packages

# python packages 4/4
RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3 /tmp/dlenv/pip/pip-26.3-py3-none-any.whl/pip install --require-hashes --no-deps --only-binary=:all: \
       --root /opt/layers/19 --prefix /usr/local --root-user-action=ignore -r /tmp/dlenv/requirements-19.txt \
    && mv /opt/layers/19/usr/local/lib/python3.11/site-packages /opt/layers/19/usr/local/lib/python3.11/dist-packages

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
ENV PATH="/home/dlenv/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    LANG="C.UTF-8" \
    PYTHONUNBUFFERED="1" \
    HOME="/home/dlenv" \
    SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt" \
    NVIDIA_VISIBLE_DEVICES="all" \
    NVIDIA_DRIVER_CAPABILITIES="compute,utility"
LABEL dev.dlenv.cuda="12.4" \
      dev.dlenv.lock.digest="sha256:2ee3cb875a17cfa7f0caab9cce9da73673772c18388814f7b31ec785879b1d7e" \
      dev.dlenv.min-driver="525.60.13" \
      dev.dlenv.profile="" \
      dev.dlenv.python="3.11" \
      dev.dlenv.spec.digest="sha256:276af9b54c97bf945a9e828399d4a7af7a6cbe6c9b8487ad6108ecb6d87fa4db" \
      org.opencontainers.image.created="2026-11-17T06:35:24Z" \
      org.opencontainers.image.title="pytorch-gpu"
WORKDIR /workspace
USER 1000:1000
CMD ["python3"]
# dlenv-rendered: sha256:d393e6388437613ffdfa82c66ba63f3f6ea9653674d93a75937b041bdca03dfb
