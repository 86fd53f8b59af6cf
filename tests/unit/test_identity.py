"""Decision ids are UUIDs version 5 of the parts that make a decision unique: the written-out
hash must give exactly what `uuid.uuid5` gives, for any parts (ids already stored must keep
matching the ones computed again)."""

from __future__ import annotations

import random
import uuid

from policies.identity import _NAMESPACE, decision_id


def test_a_decision_id_is_the_uuid5_of_its_parts_joined_by_the_unit_separator() -> None:
    rng = random.Random(15)
    alphabet = "abcXYZ019-_:.+é\x1f 日本"
    for _ in range(2000):
        parts = [
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
            for _ in range(rng.randint(1, 5))
        ]
        expected = str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))
        assert decision_id(*parts) == expected
        assert uuid.UUID(decision_id(*parts)).version == 5


def test_a_known_close_keeps_the_id_it_had_before_the_hash_was_written_out() -> None:
    parts = ("conversation.auto_closed", "acct-1", "c1", "2026-01-01T00:00:00+00:00")
    assert decision_id(*parts) == "895128ce-918c-5e59-b8fa-12f37c02ed01"
