"""The Celery side only: the app and its thin tasks (app.py, the one wiring place), its
configuration, the beat schedule. The units of work they call live in service/."""
