FROM python:3.11-slim
# A CJK font for the report's charts when they are saved or opened outside a browser with its own;
# PostgreSQL 15's client tools (Debian 12's) for `dispatcher db backup` / `restore` against the
# compose file's postgres:15.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-microhei postgresql-client \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY dispatcher dispatcher
COPY workers workers
COPY events events
COPY schedules schedules
COPY examples examples
RUN pip install --no-cache-dir .
USER nobody
CMD ["dispatcher", "--help"]
