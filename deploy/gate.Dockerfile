# The gate daemon in a container (for a gate on a PC, or to try it out). Build from the
# repository root:
#   docker build -f deploy/gate.Dockerfile -t tessera-gate .
# Run with the camera passed through and the database on a volume:
#   docker run --device /dev/video0 --group-add video -v gate-data:/var/lib/tessera-gate \
#     -p 127.0.0.1:8090:8090 --env-file deploy/env/gate.env tessera-gate
# On a Raspberry Pi class appliance prefer deploy/gate/ (systemd unit and kiosk set-up).
# BASE: any Python 3.11 image with pip on PATH (scripts/deploy-check builds one from Debian's
# packages, as it cannot pull from a public registry).
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# libzbar0 for the pyzbar decoder. OpenCV is opencv-python-headless (no libGL, no X); its wheel
# carries its own codecs, so nothing else is needed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libzbar0 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --uid 10001 --user-group --groups video --home-dir /var/lib/tessera-gate \
        --shell /usr/sbin/nologin tessera \
    && install -d -o tessera -g tessera -m 0750 /var/lib/tessera-gate

WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY gate ./gate
COPY syncd ./syncd
COPY tessera_cli ./tessera_cli
RUN pip install . && rm -rf /src

WORKDIR /var/lib/tessera-gate
USER tessera
# In a container the kiosk page must listen beyond loopback to be published with -p.
ENV GATE_DATA_DIR=/var/lib/tessera-gate \
    GATE_DISPLAY_HOST=0.0.0.0 \
    GATE_DISPLAY_PORT=8090
VOLUME ["/var/lib/tessera-gate"]
EXPOSE 8090

ENTRYPOINT ["gate"]
CMD ["run", "--source", "camera"]
