"""SQLAlchemy tables, migrations, the units of work the worker uses, and the Redis streams."""
