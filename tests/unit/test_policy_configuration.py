"""policies.configuration, policies.clock and the routing's touch: the rules ingest applies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from events.decisions import ContactRouted, Route
from events.models import AccountSettingsUpdated, AgentUpdated
from events.parsing import parse_event
from policies.clock import from_the_future
from policies.configuration import (
    NEVER_UPDATED,
    Stamp,
    merge_settings,
    moves_deadlines,
    newest_wins,
)
from policies.routing import touched_conversation
from policies.state import AccountSettings
from tests.support import new_id, utc

T0 = utc("2026-03-01T10:00:00")
CURRENT = AccountSettings(
    inactivity_close_after=timedelta(hours=1),
    reassignment_window=timedelta(days=1),
    bot_enabled=True,
)


def settings_update(event_id: str = "e-1", **fields: Any) -> AccountSettingsUpdated:
    event = parse_event(
        {
            "type": "account.settings_updated",
            "event_id": event_id,
            "account_id": "acct-1",
            "occurred_at": T0.isoformat(),
            **fields,
        }
    )
    assert isinstance(event, AccountSettingsUpdated)
    return event


def test_a_settings_update_changes_only_the_fields_it_names() -> None:
    merged = merge_settings(CURRENT, NEVER_UPDATED, settings_update(reassignment_window="PT5M"))
    assert merged == AccountSettings(
        inactivity_close_after=timedelta(hours=1),
        reassignment_window=timedelta(minutes=5),
        bot_enabled=True,
    )


def test_null_means_never_for_a_duration_and_no_change_for_the_bot_flag() -> None:
    merged = merge_settings(
        CURRENT, NEVER_UPDATED, settings_update(inactivity_close_after=None, bot_enabled=None)
    )
    assert merged == AccountSettings(None, timedelta(days=1), True)


def test_an_update_older_than_the_stored_one_changes_nothing() -> None:
    stored = Stamp(T0 + timedelta(seconds=1), "e-0")
    assert merge_settings(CURRENT, stored, settings_update(bot_enabled=False)) is None


@pytest.mark.parametrize(
    ("stored_event_id", "wins"), [("e-1", False), ("e-0", True), ("e-2", False)]
)
def test_of_two_updates_at_one_instant_the_greater_event_id_wins(
    stored_event_id: str, wins: bool
) -> None:
    event = AgentUpdated(
        type="agent.updated",
        event_id="e-1",
        account_id=new_id("acct"),
        occurred_at=T0,
        agent_id="agent-1",
        active=True,
    )
    assert newest_wins(event, Stamp(T0, stored_event_id)) is wins


def test_only_a_change_of_the_close_setting_moves_deadlines() -> None:
    assert moves_deadlines(CURRENT, AccountSettings(None, timedelta(days=1), True))
    assert not moves_deadlines(CURRENT, AccountSettings(timedelta(hours=1), None, False))


@pytest.mark.parametrize(
    ("ahead", "refused"),
    [
        (timedelta(0), False),
        (timedelta(minutes=5), False),
        (timedelta(minutes=5, microseconds=1), True),
    ],
)
def test_an_event_more_than_the_allowed_skew_ahead_is_from_the_future(
    ahead: timedelta, refused: bool
) -> None:
    assert from_the_future(T0 + ahead, T0, timedelta(minutes=5)) is refused


def test_an_inbound_message_touches_only_the_conversation_its_routing_names() -> None:
    def routed(route: Route, conversation_id: str | None) -> ContactRouted:
        return ContactRouted.model_construct(route=route, conversation_id=conversation_id)

    assert touched_conversation(routed(Route.OPEN_CONVERSATION, "c-1")) == "c-1"
    assert touched_conversation(routed(Route.PREVIOUS_AGENT, "c-2")) == "c-2"
    assert touched_conversation(routed(Route.PREVIOUS_AGENT, None)) is None
