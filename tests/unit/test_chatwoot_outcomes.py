"""How a Chatwoot answer or a decision becomes a delivery outcome (webhooks/chatwoot.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.chatwoot import NoCall
from events.decisions import AutoClosed, ContactRouted, Route
from store import webhooks as store
from webhooks.chatwoot import CallResult, outcome_of, plan

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, None), (204, None), (404, store.DROPPED), (401, store.UNAUTHORIZED), (500, None),
     (429, None), (None, None)],
)  # fmt: skip
def test_only_404_drops_and_only_401_pauses(status: int | None, outcome: str | None) -> None:
    assert outcome_of(status) == outcome


def claim_of(data: str) -> store.Claim:
    return store.Claim(1, 1, "https://chatwoot.example.com", "token", "d1", data, 0, NOW)


def test_an_unassigned_routing_plans_no_call() -> None:
    decision = ContactRouted(
        decision_id="d1", account_id="1", decided_at=NOW, reason="r",
        inbound_event_id="cw:c42:m7:inbound", contact_id="57", line_id="3",
        route=Route.UNASSIGNED,
    )  # fmt: skip
    assert isinstance(plan(claim_of(decision.model_dump_json())), NoCall)


@pytest.mark.parametrize("data", ["not json", '{"type": "something.else"}'])
def test_what_is_not_a_decision_is_dropped_with_a_reason(data: str) -> None:
    result = plan(claim_of(data))
    assert isinstance(result, CallResult)
    assert result.outcome == store.DROPPED
    assert "not a decision Chatwoot can take" in (result.error or "")


def test_a_decision_about_a_conversation_not_from_chatwoot_is_dropped() -> None:
    decision = AutoClosed(
        decision_id="d1", account_id="1", decided_at=NOW, reason="r", conversation_id="conv-a",
        contact_id="57", line_id="3", last_activity_at=NOW - timedelta(hours=1), closed_at=NOW,
        inactivity_close_after=timedelta(hours=1),
    )  # fmt: skip
    result = plan(claim_of(decision.model_dump_json()))
    assert isinstance(result, CallResult)
    assert result.outcome == store.DROPPED
