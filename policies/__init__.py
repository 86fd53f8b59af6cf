"""The decisions, as pure functions of (state, settings, now): no I/O, no clock, no Celery."""
