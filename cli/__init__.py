"""The `convlife` command: parses arguments, calls service/ and store/, prints. It loads Celery
only through worker.app, lazily, and starts the gateway through gateway.serve, lazily."""
