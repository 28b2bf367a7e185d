# syntax=docker/dockerfile:1
# The bot as a container: docker build -t data-request-bot . (see docs/operating.md, "Run in production").

# The base image, pinned by digest so a rebuild starts from the same bytes; refresh it on purpose
# (docker buildx imagetools inspect python:3.11-slim) and read the CHANGELOG's upgrade notes.
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# Build stage: the locked dependencies, then the project's wheel, in a virtual environment.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements.lock pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY handlers ./handlers
COPY store ./store
COPY prime ./prime
COPY core ./core
COPY offline ./offline
RUN python -m venv /opt/data-request-bot \
    && /opt/data-request-bot/bin/pip install --no-deps -r requirements.lock \
    && /opt/data-request-bot/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/data-request-bot/bin/pip install --no-deps /wheels/data_request_bot-*.whl \
    && /opt/data-request-bot/bin/pip check

# Run stage: the same slim Python, the virtual environment, a non-root user and a volume for the database.
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 bot \
    && useradd --system --uid 10001 --gid bot --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin bot \
    && mkdir /data /backups \
    && chown bot:bot /data /backups \
    && chmod 0700 /data /backups
COPY --from=build /opt/data-request-bot /opt/data-request-bot
ENV PATH=/opt/data-request-bot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DATABASE_PATH=/data/data-requests.db \
    PORT=3000
VOLUME ["/data"]
USER 10001:10001
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as r; o = r.build_opener(r.ProxyHandler({})); sys.exit(o.open('http://127.0.0.1:' + os.environ.get('PORT', '3000') + '/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["data-request-bot"]
CMD ["serve"]
