"""One rule for who a conversation or a line belongs to: one agent, one group, the bot (for a
conversation), or nobody; naming two is refused, for `conversation.opened` as for `line.updated`."""

from __future__ import annotations

from typing import Any

import pytest

from events.parsing import InvalidEvent, parse_event
from tests.support import conversation_event, event, utc

T = utc("2026-03-01T10:00:00")


@pytest.mark.parametrize(
    "owners",
    [
        {"agent_id": "ana", "group_id": "sales"},
        {"agent_id": "ana", "bot": True},
        {"group_id": "sales", "bot": True},
        {"agent_id": "ana", "group_id": "sales", "bot": True},
    ],
)
def test_a_conversation_opened_to_two_assignees_is_refused(owners: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent) as refused:
        parse_event(conversation_event("conversation.opened", "acme", "c1", T, **owners))
    assert refused.value.reason == (
        "event: Value error, a conversation is assigned to one of agent_id, group_id or bot"
    )


def test_a_line_with_two_owners_is_refused_likewise() -> None:
    with pytest.raises(InvalidEvent, match="a line is owned by an agent or a group, not both"):
        parse_event(event("line.updated", "acme", T, line_id="l1", agent_id="a", group_id="g"))


@pytest.mark.parametrize("owner", [{}, {"agent_id": "ana"}, {"group_id": "sales"}, {"bot": True}])
def test_one_assignee_or_none_is_accepted(owner: dict[str, Any]) -> None:
    parse_event(conversation_event("conversation.opened", "acme", "c1", T, **owner))
