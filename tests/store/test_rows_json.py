"""Rows sent as one JSON parameter (store/db.py rows_json) are written by orjson: the `json`
fallback is for values orjson refuses, never for the keys convlife builds itself."""

from __future__ import annotations

import json

import pytest

from store import conversations, db
from store.tables import conversations as table


def test_keys_named_after_table_columns_take_the_fast_encoder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_fallback(*_args: object, **_kwargs: object) -> str:
        raise AssertionError("rows_json fell back to json.dumps")

    monkeypatch.setattr(db.json, "dumps", no_fallback)
    key_columns = [table.c.account_id, table.c.conversation_id]
    encoded = conversations._json_keys(key_columns, [("a1", "c1"), ("a1", "c2")])
    monkeypatch.undo()
    assert json.loads(encoded) == [
        {"account_id": "a1", "conversation_id": "c1"},
        {"account_id": "a1", "conversation_id": "c2"},
    ]


def test_a_value_orjson_refuses_still_goes_through_the_fallback() -> None:
    lone_surrogate = "\ud800"
    assert json.loads(db.rows_json([{"text": lone_surrogate}])) == [{"text": lone_surrogate}]
