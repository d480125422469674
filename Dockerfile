# The aitrader image: backtests (`aitrader backtest ...`), the Prefect worker
# (`prefect worker start --pool ...`), the flow runs a docker work pool starts, and the Prefect
# server itself (`prefect server start`) all run from it.
#
#   docker build -t aitrader:latest .
#   podman build --format docker -t aitrader:latest .       # --format docker keeps the HEALTHCHECK
#
# The base is a build argument so that a machine that cannot pull from a registry can build on a
# local image instead (the container test uses a debootstrap'd Debian bookworm). Any Debian-like
# base with python3 (3.11+) and its venv module works.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# Extras of the project to install as well, e.g. `--build-arg EXTRAS=docker` for an image whose
# worker serves a docker work pool (prefect-docker).
ARG EXTRAS=""

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A venv rather than the system site-packages: it works the same on the official Python image
# (python at /usr/local/bin) and on Debian's python3 (where pip refuses system installs).
RUN python3 -m venv "$VIRTUAL_ENV" \
    && useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin aitrader

WORKDIR /opt/aitrader

# The dependency layer: only pyproject.toml, so a code change does not reinstall ~150 packages.
# The dependency list is read from it with tomllib (stdlib since 3.11), no stub package needed.
COPY pyproject.toml ./
RUN python3 -c "import os, tomllib; \
project = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
extras = os.environ.get('EXTRAS', '').replace(',', ' ').split(); \
print('\n'.join(project['dependencies'] + \
    [d for extra in extras for d in project['optional-dependencies'][extra]]))" \
    > /tmp/requirements.txt \
    && pip install --quiet --requirement /tmp/requirements.txt "setuptools>=77" \
    && rm /tmp/requirements.txt

# The code. It stays in /opt/aitrader as well as being installed: prefect.yaml's entrypoints
# (flows/backtest.py:backtest) are paths relative to the working directory of a flow run.
COPY . .
RUN pip install --quiet --no-deps --no-build-isolation . \
    && rm -rf build ./*.egg-info \
    && install -d -o aitrader -g aitrader data reports /home/aitrader/.prefect

# Prefect in a container: state under the user's home (the ephemeral server's database and the
# result cache; mount a volume there to keep them), no telemetry, patience for a cold ephemeral
# server, which migrates its database first. The project store defaults to a SQLite file in
# /opt/aitrader/data; set DATABASE_URL to keep results outside the container.
ENV PREFECT_HOME=/home/aitrader/.prefect \
    AITRADER_HOME=/opt/aitrader \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT=false \
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=180 \
    DO_NOT_TRACK=1

USER aitrader

# The store, the data, the Prefect API (when PREFECT_API_URL is set) and each model's endpoint:
# for long-running containers (worker, serve). A one-shot `aitrader backtest` ignores it.
HEALTHCHECK --interval=60s --timeout=30s --start-period=60s --retries=3 \
    CMD ["aitrader", "health"]

# No entrypoint: the command is the program, so `IMAGE aitrader backtest ...`,
# `IMAGE prefect worker start --pool aitrader-pool` and the docker worker's
# `prefect flow-run execute` all work as given.
CMD ["aitrader", "--help"]
