"""Connectors: pure translation between a chat platform's own payloads and convlife's contract.

A connector turns the platform's webhooks into convlife events (docs/events.md) and convlife's
decisions into the platform's API calls, as plain data. It does no I/O and reads no clock: the
gateway and the delivery machinery (worker/) do the talking. It may import `events` and the
standard library only (tests/test_layers.py checks it).
"""
