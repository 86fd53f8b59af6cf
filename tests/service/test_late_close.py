"""An agent's close dated before the auto-close but delivered after it takes the auto-close's
place: the contact goes back to that agent, and the `auto_closed` decision already emitted stands
and is not repeated. On SQLite and PostgreSQL; every `now` is chosen."""

from __future__ import annotations

from datetime import timedelta

from policies.state import ClosedBy, Status
from tests.service.builders import (
    T0,
    account_with,
    agent_close,
    inbound,
    message,
    minutes,
    opened,
    routed,
)
from tests.support import Service

SWEPT_AT = T0 + minutes(35)
"""The sweep, past the deadline (last activity at T0 + 5 min, closes after 30 min)."""


def auto_closed_decisions(service: Service, account: str) -> list[dict]:
    return [d for d in service.decisions(account) if d["type"] == "conversation.auto_closed"]


def test_a_close_delivered_after_the_sweep_routes_the_contact_back_to_the_agent(
    service: Service,
) -> None:
    account = account_with(service, close_after="PT30M", window="P1D")
    service.ingest([opened(account, agent_id="ana"), message(account, T0 + minutes(5))], T0)
    assert len(service.close_due(SWEPT_AT, account)) == 1

    late = agent_close(account, T0 + minutes(20), reason="resolved", agent="ana")
    service.ingest(late, SWEPT_AT + minutes(1))
    service.ingest(inbound(account, SWEPT_AT + minutes(2)), SWEPT_AT + minutes(2))

    state, due = service.conversation(account, "c1")
    assert (state.closed_by, state.closing_agent_id, state.close_reason, state.closed_at) == (
        ClosedBy.AGENT,
        "ana",
        "resolved",
        T0 + minutes(20),
    )
    assert (state.auto_closed, due) == (False, None)
    decision = routed(service, account)
    assert (decision["route"], decision["agent_id"]) == ("previous_agent", "ana")
    assert len(auto_closed_decisions(service, account)) == 1  # it stands
    assert service.close_due(SWEPT_AT + timedelta(hours=1), account) == []  # not repeated


def test_the_same_events_with_the_close_before_the_sweep_give_the_same_state_and_route(
    service: Service,
) -> None:
    states = []
    for close_first in (True, False):
        account = account_with(service, close_after="PT30M", window="P1D")
        service.ingest([opened(account, agent_id="ana"), message(account, T0 + minutes(5))], T0)
        late = agent_close(account, T0 + minutes(20), reason="resolved", agent="ana")
        if close_first:
            service.ingest(late, T0 + minutes(20))
        service.close_due(SWEPT_AT, account)
        if not close_first:
            service.ingest(late, SWEPT_AT + minutes(1))
        service.ingest(inbound(account, SWEPT_AT + minutes(2)), SWEPT_AT + minutes(2))
        state, due = service.conversation(account, "c1")
        decision = routed(service, account)
        states.append((state.closed_by, state.closing_agent_id, state.closed_at, due))
        states.append((decision["route"], decision["agent_id"], decision["reason"]))
    assert states[:2] == states[2:]


def test_a_late_close_of_an_earlier_period_leaves_the_auto_close_in_place(
    service: Service,
) -> None:
    account = account_with(service, close_after="PT30M", window="P1D")
    service.ingest(
        [
            opened(account, agent_id="ana"),
            opened(account, at=T0 + minutes(5), agent_id="bruno"),  # reopen: a new period
        ],
        T0 + minutes(5),
    )
    assert len(service.close_due(SWEPT_AT, account)) == 1

    service.ingest(agent_close(account, T0 + minutes(2), agent="ana"), SWEPT_AT + minutes(1))
    service.ingest(inbound(account, SWEPT_AT + minutes(2)), SWEPT_AT + minutes(2))

    state, _ = service.conversation(account, "c1")
    assert (state.closed_by, state.close_reason, state.closed_at) == (
        ClosedBy.SYSTEM,
        "inactivity",
        SWEPT_AT,
    )
    assert state.auto_closed
    assert routed(service, account)["route"] == "unassigned"


def test_a_late_reopen_within_the_period_is_closed_again_without_a_second_decision(
    service: Service,
) -> None:
    account = account_with(service, close_after="PT30M", window="P1D")
    service.ingest([opened(account, agent_id="ana"), message(account, T0 + minutes(5))], T0)
    assert len(service.close_due(SWEPT_AT, account)) == 1

    # Dated before the last activity: in time order the conversation was idle all the same.
    service.ingest(opened(account, at=T0 + minutes(1), agent_id="bruno"), SWEPT_AT + minutes(1))
    reopened, due = service.conversation(account, "c1")
    assert (reopened.status, reopened.auto_closed) == (Status.OPEN, False)
    assert due == T0 + minutes(35)  # already due: the next sweep closes it

    assert service.close_due(SWEPT_AT + minutes(2), account) == []  # same idle period: no repeat
    state, _ = service.conversation(account, "c1")
    assert (state.status, state.auto_closed, state.assignee_agent_id) == (
        Status.CLOSED,
        True,
        "bruno",
    )
    assert len(auto_closed_decisions(service, account)) == 1
