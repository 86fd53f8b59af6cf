"""What ops watch: the Prometheus collector and its server (metrics.py), the health checks."""
