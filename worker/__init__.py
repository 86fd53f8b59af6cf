"""The Celery app, its thin tasks, the handlers they call, the beat schedule and the CLI."""
