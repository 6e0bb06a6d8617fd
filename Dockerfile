FROM python:3.11-slim
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
