"""Capacity inside one batch: the open-conversation counts a routing sees follow the batch's own
earlier events (policies.batch.decide moves them from the counts loaded)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from events.decisions import ContactRouted, Route
from events.models import Event
from events.parsing import parse_event
from policies.batch import AgentKey, Loaded, decide
from policies.state import AccountSettings, Agent, ClosedBy, Conversation, LineOwner, Status
from tests.support import conversation_event, event, utc

T0 = utc("2026-03-01T10:00:00")
MINUTE = timedelta(minutes=1)
ACCOUNT = "acct"
SETTINGS = AccountSettings(
    inactivity_close_after=timedelta(hours=1), reassignment_window=timedelta(days=1)
)
AGENTS = ("ana", "bia")


def conversation(
    conversation_id: str,
    *,
    status: Status = Status.OPEN,
    agent: str | None = None,
    contact: str | None = None,
) -> Conversation:
    closed = status is Status.CLOSED
    return Conversation(
        account_id=ACCOUNT,
        conversation_id=conversation_id,
        contact_id=contact or f"contact-{conversation_id}",
        line_id="line-1",
        status=status,
        last_activity_at=T0 - MINUTE,
        status_changed_at=T0 - MINUTE,
        assignee_agent_id=agent,
        closed_at=T0 - MINUTE if closed else None,
        closed_by=ClosedBy.AGENT if closed else None,
        closing_agent_id=agent if closed else None,
        close_reason="resolved" if closed else None,
    )


# Maria's last conversation, closed by ana with a reason: maria writing goes back to ana if
# ana is available.
MARIAS = conversation("c-maria", status=Status.CLOSED, agent="ana", contact="maria")


def loaded(*conversations: Conversation, ana: Agent, open_assigned: int) -> Loaded:
    return Loaded(
        accounts={},
        lines={},
        agents={},
        settings={ACCOUNT: SETTINGS},
        owners={(ACCOUNT, "line-1"): LineOwner(agent_id="olga")},
        agent_states={(ACCOUNT, "ana"): ana},
        open_assigned={(ACCOUNT, "ana"): open_assigned},
        conversations={(c.account_id, c.conversation_id): c for c in conversations},
    )


def on(conversation_id: str, type_: str, minute: int, **fields: Any) -> Event:
    return parse_event(
        conversation_event(
            type_,
            ACCOUNT,
            conversation_id,
            T0 + minute * MINUTE,
            contact_id=f"contact-{conversation_id}",
            **fields,
        )
    )


def maria_writes(minute: int) -> Event:
    return parse_event(
        event(
            "contact.inbound", ACCOUNT, T0 + minute * MINUTE, contact_id="maria", line_id="line-1"
        )
    )


def routing(decisions: list[Any]) -> ContactRouted:
    [decision] = [d for d in decisions if isinstance(d, ContactRouted)]
    return decision


def test_a_conversation_opened_for_the_agent_earlier_in_the_batch_takes_her_last_place() -> None:
    state = loaded(MARIAS, ana=Agent(capacity=2), open_assigned=1)
    batch = [on("c-new", "conversation.opened", 1, agent_id="ana"), maria_writes(2)]

    decided = decide(state, batch, T0 + 3 * MINUTE)

    decision = routing(decided.decisions)
    assert (decision.route, decision.agent_id) == (Route.LINE_OWNER, "olga")
    assert "agent ana has 2 of 2 conversations open" in decision.reason


def test_a_conversation_of_the_agent_closed_earlier_in_the_batch_frees_a_place() -> None:
    hers = conversation("c-hers", agent="ana")
    state = loaded(MARIAS, hers, ana=Agent(capacity=2), open_assigned=2)
    batch = [
        on("c-hers", "conversation.closed", 1, closed_by="agent", agent_id="ana"),
        maria_writes(2),
    ]

    decision = routing(decide(state, batch, T0 + 3 * MINUTE).decisions)

    assert (decision.route, decision.agent_id) == (Route.PREVIOUS_AGENT, "ana")
    assert decision.reason.endswith("agent ana has 1 of 2 conversations open")


def test_a_transfer_away_from_the_agent_frees_a_place_and_one_to_her_takes_one() -> None:
    hers, theirs = conversation("c-hers", agent="ana"), conversation("c-theirs", agent="bia")
    state = loaded(MARIAS, hers, theirs, ana=Agent(capacity=2), open_assigned=2)
    away = [
        on("c-hers", "conversation.transferred", 1, group_id="sales"),
        maria_writes(2),
    ]
    to_her = [
        on("c-hers", "conversation.transferred", 1, group_id="sales"),
        on("c-theirs", "conversation.transferred", 2, agent_id="ana"),
        maria_writes(3),
    ]

    assert routing(decide(state, away, T0 + 4 * MINUTE).decisions).route is Route.PREVIOUS_AGENT
    assert routing(decide(state, to_her, T0 + 4 * MINUTE).decisions).route is Route.LINE_OWNER


def test_an_event_dated_after_the_contact_wrote_does_not_count_for_that_routing() -> None:
    state = loaded(MARIAS, ana=Agent(capacity=2), open_assigned=1)
    batch = [maria_writes(1), on("c-new", "conversation.opened", 2, agent_id="ana")]

    decided = decide(state, batch, T0 + 3 * MINUTE)

    assert routing(decided.decisions).route is Route.PREVIOUS_AGENT
    assert decided.open_assigned == {(ACCOUNT, "ana"): 2}


def test_activity_on_an_open_conversation_of_the_agent_leaves_her_count_as_it_is() -> None:
    hers = conversation("c-hers", agent="ana")
    state = loaded(MARIAS, hers, ana=Agent(capacity=2), open_assigned=1)
    batch = [
        on("c-hers", "conversation.message", 1, sender="contact"),
        on("c-hers", "conversation.opened", 1, agent_id="ana"),
        maria_writes(2),
    ]

    decided = decide(state, batch, T0 + 3 * MINUTE)

    assert routing(decided.decisions).route is Route.PREVIOUS_AGENT
    assert decided.open_assigned == {(ACCOUNT, "ana"): 1}


# --- The adjusted count is a recount --------------------------------------------------------

CONVERSATION_IDS = ("c1", "c2", "c3", "c4")


@st.composite
def initial_conversations(draw: st.DrawFn) -> list[Conversation]:
    found = []
    for conversation_id in draw(st.lists(st.sampled_from(CONVERSATION_IDS), unique=True)):
        status = draw(st.sampled_from(Status))
        agent = draw(st.sampled_from((*AGENTS, None)))
        found.append(conversation(conversation_id, status=status, agent=agent))
    return found


@st.composite
def conversation_events(draw: st.DrawFn) -> Event:
    conversation_id = draw(st.sampled_from(CONVERSATION_IDS))
    minute = draw(st.integers(0, 4))  # few minutes: ties and reorderings are common
    kind = draw(st.sampled_from(["opened", "transferred", "closed", "message"]))
    agent = draw(st.sampled_from(AGENTS))
    if kind == "opened":
        target = draw(
            st.sampled_from([{"agent_id": agent}, {"group_id": "sales"}, {"bot": True}, {}])
        )
        return on(conversation_id, "conversation.opened", minute, **target)
    if kind == "transferred":
        target = draw(st.sampled_from([{"agent_id": agent}, {"group_id": "sales"}]))
        return on(conversation_id, "conversation.transferred", minute, **target)
    if kind == "closed":
        by = draw(
            st.sampled_from([{"closed_by": "agent", "agent_id": agent}, {"closed_by": "system"}])
        )
        return on(conversation_id, "conversation.closed", minute, close_reason="done", **by)
    return on(conversation_id, "conversation.message", minute, sender="contact")


def recount(conversations: list[Conversation], elsewhere: dict[str, int]) -> dict[AgentKey, int]:
    """Each agent's open conversations: those of `conversations` plus those the batch does not
    name (`elsewhere`), as the store would count them."""
    return {
        (ACCOUNT, agent): elsewhere[agent]
        + sum(1 for c in conversations if c.is_open and c.assignee_agent_id == agent)
        for agent in AGENTS
    }


@settings(max_examples=300, deadline=None)
@given(
    initial=initial_conversations(),
    events=st.lists(conversation_events(), max_size=12).flatmap(st.permutations),
    elsewhere=st.fixed_dictionaries({agent: st.integers(0, 3) for agent in AGENTS}),
    wrote_at=st.integers(0, 5),
)
def test_the_counts_a_batch_leaves_equal_a_recount_of_the_conversations_it_leaves(
    initial: list[Conversation], events: list[Event], elsewhere: dict[str, int], wrote_at: int
) -> None:
    state = Loaded(
        accounts={},
        lines={},
        agents={},
        settings={ACCOUNT: SETTINGS},
        owners={(ACCOUNT, "line-1"): LineOwner()},
        agent_states={(ACCOUNT, agent): Agent(capacity=3) for agent in AGENTS},
        open_assigned=recount(initial, elsewhere),
        conversations={(c.account_id, c.conversation_id): c for c in initial},
    )

    decided = decide(state, [*events, maria_writes(wrote_at)], T0 + 10 * MINUTE)

    final = {(c.account_id, c.conversation_id): c for c in initial} | {
        key: after for key, (after, _) in decided.conversations.items()
    }
    assert decided.open_assigned == recount(list(final.values()), elsewhere)
