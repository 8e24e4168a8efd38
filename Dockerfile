# One image for every process of the project: kdp (generate, stream, tail), the provisioning job, the
# Dagster webserver and daemon. Build: `docker compose build`, or `docker build -t kafka-data-pipeline:0.1.0 .`
# The build context is an allow-list (.dockerignore). Not built in CI: no Docker engine there.
#
# Two stages. `wheels` builds the project's wheel (its code with the Avro contracts and the topic declarations
# as package data) and the converter's native kernel (native/: Rust through PyO3, built by maturin as pinned
# in native/pyproject.toml and native/Cargo.lock). The image installs both wheels, not the source, so the
# containers run the native path; `kdp stream` says which path it runs in its first lines
# ("converter fast path: native (kdp_native)"), and the build fails if the kernel does not import.

# The Rust toolchain, taken from the official image (Debian's rustc is too old for PyO3).
FROM rust:1.91-slim-bookworm AS rust

FROM python:3.11.14-slim-bookworm AS wheels
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:$PATH
COPY --from=rust /usr/local/rustup /usr/local/rustup
COPY --from=rust /usr/local/cargo /usr/local/cargo
# Rust links through the C compiler.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
# Built for this image's interpreter (the same Python as the final stage); only native/ invalidates it.
COPY native /src/native
RUN pip wheel --no-deps --wheel-dir /wheels /src/native
COPY . /src/project
RUN pip wheel --no-deps --wheel-dir /wheels /src/project

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
# dependencies plus Dagster's Postgres storage (its `deploy` extra); the local stack's Java runtime
# (the `local` extra) stays out.
COPY pyproject.toml constraints.txt deploy/image_requirements.py /tmp/deps/
RUN python /tmp/deps/image_requirements.py /tmp/deps/pyproject.toml > /tmp/deps/requirements.txt \
    && pip install --constraint /tmp/deps/constraints.txt --requirement /tmp/deps/requirements.txt \
    && rm -rf /tmp/deps

# Then the two wheels, without resolving anything again.
COPY --from=wheels /wheels /tmp/wheels
RUN pip install --no-deps /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels \
    && python -c "from streaming.conversion import native_path; assert native_path.available(), 'no native kernel'"

# What the processes find in the working directory: the Dagster code location (workspace.yaml), the `dg`
# project file (pyproject.toml's [tool.dg], for `dg launch` in the provisioning service) and the health probe.
COPY workspace.yaml pyproject.toml /app/
COPY deploy/kafka_probe.py /app/deploy/

# Dagster's instance for the containers, and the volume folder the webserver and the daemon share.
COPY deploy/dagster/dagster.yaml /opt/dagster/home/
RUN mkdir -p /opt/dagster/storage && chown -R kdp:kdp /opt/dagster

USER kdp
CMD ["kdp", "--help"]
