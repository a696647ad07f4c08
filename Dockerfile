# The control-plane image: `conveyor server`, `conveyor scheduler`, `conveyor agent`, … (the command
# is the container's; the default serves the API). Build with BuildKit:
#   DOCKER_BUILDKIT=1 docker build -t conveyor .
# Behind a TLS-intercepting proxy, hand pip the proxy's CA bundle as a secret (never stored in a layer):
#   DOCKER_BUILDKIT=1 docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt -t conveyor .
ARG BASE_IMAGE=conveyor-base:bookworm

# -- build: the project's wheel and every wheel `conveyor[server]` needs ---------------------------
FROM ${BASE_IMAGE} AS build
RUN python3 -m venv /opt/build
WORKDIR /src
# Dependencies first, from pyproject.toml alone, so a change to the code reuses this layer.
COPY pyproject.toml README.md ./
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    /opt/build/bin/pip install --no-cache-dir --disable-pip-version-check --quiet wheel \
 && /opt/build/bin/pip wheel --no-cache-dir --disable-pip-version-check --quiet \
      --wheel-dir /wheels ".[server]" \
 && rm /wheels/conveyor-*.whl
COPY sdk sdk
COPY core core
COPY scheduler scheduler
COPY builder builder
COPY app app
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    /opt/build/bin/pip wheel --no-cache-dir --disable-pip-version-check --quiet --no-deps \
      --wheel-dir /wheels .

# -- run: a venv installed from those wheels only, owned by root, run as an unprivileged user -------
FROM ${BASE_IMAGE}
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python3 -m venv /opt/conveyor \
 && /opt/conveyor/bin/pip install --no-cache-dir --disable-pip-version-check --quiet \
      --no-index --find-links /wheels "conveyor[server]" \
 && useradd --system --uid 10001 --home-dir /var/lib/conveyor --create-home conveyor
ENV PATH=/opt/conveyor/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CONVEYOR_HOST=0.0.0.0 \
    CONVEYOR_PORT=8120 \
    CONVEYOR_DATA_DIR=/var/lib/conveyor
USER conveyor
WORKDIR /var/lib/conveyor
EXPOSE 8120
# minbase has no curl: the image's own Python asks
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('CONVEYOR_PORT', '8120')}/healthz\", timeout=2)"]
CMD ["conveyor", "server"]
