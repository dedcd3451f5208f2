# Image of the stemedb-gate command (worker, topic setup, admin tools).
# Build: docker build -t stemedb-gate:local .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The dependencies change less often than the code, so they get their own layer.
# The [project] table alone is enough for pip to resolve them, and the package
# folders start empty here.
COPY pyproject.toml ./
RUN mkdir streams schemas admin_api \
    && touch streams/__init__.py schemas/__init__.py admin_api/__init__.py \
    && pip install . \
    && pip uninstall --yes stemedb-gate

COPY streams/ streams/
COPY schemas/ schemas/
COPY admin_api/ admin_api/
RUN pip install --no-deps .

# The worker's RocksDB stores live in /var/lib/stemedb, which a volume should hold.
RUN useradd --system --create-home --uid 10001 gate \
    && mkdir -p /var/lib/stemedb \
    && chown gate /var/lib/stemedb
USER gate
ENV STEMEDB_DATA_DIR=/var/lib/stemedb/worker

ENTRYPOINT ["stemedb-gate"]
CMD ["--help"]
