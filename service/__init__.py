"""The units of work (ingest, deliveries, deadlines, retention) and what they need: settings, the
runtime they share, failure classes, counters, ops functions, logs, preflight. No Celery, no HTTP
server: the Celery tasks (worker/), the gateway and the CLI call these."""
