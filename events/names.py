"""Every name that more than one process shares: Celery task and queue names, Redis streams and
keys. Upstream publishers, workers, beat, the CLI and the metrics endpoint must agree on these
byte for byte, so they are written once, here, in the lowest layer every other one may import.
"""

from __future__ import annotations

# Celery queues: ingest, closes (sweeps), outbox (relay, prune). Split so ops can give each its
# own workers and a burst of closes never queues behind a flood of events, or the other way round.
EVENTS_QUEUE = "convlife.events"
CLOSES_QUEUE = "convlife.closes"
OUTBOX_QUEUE = "convlife.outbox"
# Webhooks have a queue of their own: a slow receiver never delays ingest or closes.
WEBHOOKS_QUEUE = "convlife.webhooks"
QUEUES = (EVENTS_QUEUE, CLOSES_QUEUE, OUTBOX_QUEUE, WEBHOOKS_QUEUE)

# Celery task names (what a message's `task` header says).
INGEST_TASK = "convlife.ingest"
SWEEP_TASK = "convlife.sweep"
RELAY_TASK = "convlife.relay"
PRUNE_TASK = "convlife.prune"
WEBHOOKS_TASK = "convlife.webhooks.dispatch"

# Redis streams convlife writes (append-only, trimmed by count).
DECISIONS_STREAM = "convlife:decisions"
"""Every decision; field `data` holds its JSON."""
DEAD_LETTERS_STREAM = "convlife:dead-letters"
"""Every refused event; fields `raw`, `error`, `received_at`, `dead_letter_id`."""

# Redis keys convlife owns.
CHATWOOT_CALLS_KEY_PREFIX = "convlife:chatwoot:calls:"
"""+ `<account>:<conversation>`: a list of the Chatwoot API calls convlife made on that
conversation (JSON), written by the dispatcher before each call and read by the gateway's
Chatwoot route to recognise their echoes; expires a few minutes after the last call."""
HEARTBEAT_KEY = "convlife:beat:last-sweep"
"""When a sweep last succeeded (ISO 8601, written after its work): proof that beat sends, a
worker runs the sweeps, and they get through."""
SWEEP_FAILURES_KEY = "convlife:beat:sweep-failures"
"""Sweeps failed in a row (hash: `count`, `since` ISO 8601, `error`); deleted by a success."""
METRICS_EVENTS_KEY = "convlife:metrics:events"
METRICS_DEAD_LETTERS_KEY = "convlife:metrics:dead-letters"
METRICS_DECISIONS_KEY = "convlife:metrics:decisions"
METRICS_CLOSE_LAG_KEY = "convlife:metrics:close-lag"
METRICS_SWEEP_KEY = "convlife:metrics:sweep"
"""Counters of the sweep: `errors` (sweeps that failed), `quarantined` (rows set aside)."""
WORKER_DEFAULTS_KEY = "convlife:worker:defaults"
"""The account defaults (CONVLIFE_DEFAULT_*) the workers apply, as JSON, written by each worker
at start: `settings show` reads what the workers apply, not its own shell's environment."""
