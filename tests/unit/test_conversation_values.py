"""`conversation_of` and `changed` (policies/state.py) build the same frozen Conversation values
as the dataclass's own constructor and `dataclasses.replace`, only faster: equal, hashing alike,
printing alike, still frozen, and refusing what those refuse."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.state import (
    CONVERSATION_FIELDS,
    ClosedBy,
    Conversation,
    Status,
    changed,
    conversation_of,
)

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
TIMES = st.one_of(st.none(), st.integers(0, 10**6).map(lambda s: T0 + timedelta(seconds=s)))
TEXTS = st.one_of(st.none(), st.text(max_size=5))
KIND = {
    datetime: TIMES,
    str: TEXTS,
    bool: st.booleans(),
    Status: st.sampled_from(Status),
    ClosedBy: st.one_of(st.none(), st.sampled_from(ClosedBy)),
}


def _strategy(name: str) -> st.SearchStrategy[Any]:
    """Values of the field's kind (its annotation names one of KIND's types)."""
    annotation = str(Conversation.__dataclass_fields__[name].type)
    for kind, strategy in KIND.items():
        if kind.__name__ in annotation:
            return strategy
    raise AssertionError(f"no strategy for {name}: {annotation}")


CONVERSATIONS = st.fixed_dictionaries(
    {
        name: _strategy(name)
        if name not in ("account_id", "conversation_id", "contact_id", "line_id")
        else st.text(max_size=5)
        for name in CONVERSATION_FIELDS
    }
).map(lambda values: Conversation(**values))


def test_the_fields_are_the_dataclass_fields_in_declaration_order() -> None:
    assert tuple(f.name for f in dataclasses.fields(Conversation)) == CONVERSATION_FIELDS


@given(CONVERSATIONS)
def test_conversation_of_builds_the_value_the_constructor_builds(built: Conversation) -> None:
    values = [getattr(built, name) for name in CONVERSATION_FIELDS]

    fast = conversation_of(*values)

    assert fast == built
    assert hash(fast) == hash(built)
    assert repr(fast) == repr(built)
    assert type(fast) is Conversation


@given(CONVERSATIONS, CONVERSATIONS, st.sets(st.sampled_from(CONVERSATION_FIELDS)))
def test_changed_is_dataclasses_replace(
    conversation: Conversation, other: Conversation, names: set[str]
) -> None:
    changes = {name: getattr(other, name) for name in names}

    assert changed(conversation, **changes) == dataclasses.replace(conversation, **changes)
    assert changed(conversation, **changes) is not conversation


def test_changed_leaves_the_original_as_it_was() -> None:
    conversation = Conversation("a", "c", "k", "l", Status.OPEN, T0)

    changed(conversation, last_activity_at=T0 + timedelta(hours=1), status=Status.CLOSED)

    assert conversation == Conversation("a", "c", "k", "l", Status.OPEN, T0)


def test_both_still_give_frozen_values() -> None:
    conversation = Conversation("a", "c", "k", "l", Status.OPEN, T0)
    values = [getattr(conversation, name) for name in CONVERSATION_FIELDS]
    for value in (conversation_of(*values), changed(conversation, line_id="l2")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.line_id = "l3"  # type: ignore[misc]


def test_an_unknown_field_or_a_missing_one_is_refused() -> None:
    conversation = Conversation("a", "c", "k", "l", Status.OPEN, T0)
    with pytest.raises(TypeError, match="no field statu"):
        changed(conversation, statu=Status.CLOSED)
    with pytest.raises(TypeError, match="22 fields, not 6"):
        conversation_of("a", "c", "k", "l", Status.OPEN, T0)


def test_a_conversation_keeps_nothing_but_its_fields() -> None:
    """`changed` copies the instance's dict: a cached value kept there (a cached_property)
    would be copied stale into a changed conversation."""
    conversation = Conversation("a", "c", "k", "l", Status.OPEN, T0)
    assert conversation.is_open

    assert set(vars(conversation)) == set(CONVERSATION_FIELDS)
