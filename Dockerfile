# convlife: one image for every process (worker, beat, migrate, metrics, gateway); the command picks.
FROM python:3.11.10-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY events ./events
COPY policies ./policies
COPY store ./store
COPY service ./service
COPY worker ./worker
COPY gateway ./gateway
COPY cli ./cli
COPY observability ./observability
COPY connectors ./connectors
COPY webhooks ./webhooks
RUN pip install . && useradd --system --uid 10001 convlife

USER convlife
ENTRYPOINT ["convlife"]
CMD ["worker"]
