"""Decision ids are uuid5 of their parts: ids already stored and published stay the same."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from policies.identity import _NAMESPACE, decision_id

# Text that can be encoded (lone surrogates cannot: uuid5 refuses them too).
PARTS = st.lists(st.text(st.characters(blacklist_categories=["Cs"])), min_size=1, max_size=4)


@given(PARTS)
def test_a_decision_id_is_the_uuid5_of_its_parts_joined_by_the_unit_separator(
    parts: list[str],
) -> None:
    assert decision_id(*parts) == str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


def test_a_decision_id_known_before_is_unchanged() -> None:
    assert decision_id("acme", "c1", "2026-03-01T10:00:00+00:00") == str(
        uuid.uuid5(
            uuid.UUID("8f1f7f0e-6f1c-4b8a-9a53-6c6f6e766c69"),
            "acme\x1fc1\x1f2026-03-01T10:00:00+00:00",
        )
    )
