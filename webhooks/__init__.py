"""Signed webhooks out: the handlers that turn committed decisions into HTTP deliveries.

May import events, policies, store and httpx; never Celery (the task in worker/app.py is a thin
adapter over `webhooks.dispatch`).
"""
