"""The benchmark: `python -m bench all --quick` (about 2 minutes) or `--full`; see README."""
