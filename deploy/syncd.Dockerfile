# syncd, the central service. Build from the repository root:
#   docker build -f deploy/syncd.Dockerfile -t tessera-syncd .
# Only the files the package needs are copied, so no .dockerignore is required.
# BASE: any Python 3.11 image with pip on PATH (scripts/deploy-check builds one from Debian's
# packages, as it cannot pull from a public registry).
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin tessera

WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY gate ./gate
COPY syncd ./syncd
COPY tessera_cli ./tessera_cli
RUN pip install . && rm -rf /src

# Operator tools and the example consumer (scripts/) travel with the image.
WORKDIR /app
COPY scripts ./scripts

USER tessera
ENV SYNCD_HOST=0.0.0.0 \
    SYNCD_PORT=8080
EXPOSE 8080

# /healthz answers while the process is alive; /readyz (database and broker) is for the proxy
# or the orchestrator to decide about traffic, not for restarting the container.
HEALTHCHECK --interval=10s --timeout=4s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SYNCD_PORT', '8080'), timeout=3)"

ENTRYPOINT ["syncd"]
CMD ["serve"]
