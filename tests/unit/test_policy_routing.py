"""The reassignment window: where a contact who writes again goes."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from events.decisions import ContactRouted, Route
from events.models import ContactInbound, ConversationEvent
from events.parsing import parse_event
from policies.conversation import apply_event
from policies.inactivity import auto_close
from policies.routing import route_inbound, touched_conversation
from policies.state import (
    INACTIVITY,
    AccountSettings,
    Agent,
    ClosedBy,
    Conversation,
    LineOwner,
    Status,
)
from tests.support import conversation_event, utc

CLOSED_AT = utc("2026-03-01T10:00:00")


def agents(active: dict[str, bool] | None) -> dict[str, Agent]:
    """Agents known only by whether they are active (online, no capacity limit)."""
    return {agent: Agent(active=on) for agent, on in (active or {}).items()}


NOW = utc("2026-03-05T00:00:00")
µs = timedelta(microseconds=1)
WINDOW = AccountSettings(reassignment_window=timedelta(hours=24))


def inbound(
    at: datetime, *, contact: str = "maria", line: str = "sales", named: str | None = None
) -> ContactInbound:
    return ContactInbound(
        type="contact.inbound",
        event_id="in-1",
        account_id="acct",
        occurred_at=at,
        contact_id=contact,
        line_id=line,
        conversation_id=named,
    )


def closed(
    conversation_id: str = "c1",
    *,
    at: datetime = CLOSED_AT,
    by: ClosedBy = ClosedBy.AGENT,
    agent: str | None = "ana",
    reason: str | None = "resolved",
    contact: str = "maria",
    line: str = "sales",
    account: str = "acct",
) -> Conversation:
    return Conversation(
        account_id=account,
        conversation_id=conversation_id,
        contact_id=contact,
        line_id=line,
        status=Status.CLOSED,
        last_activity_at=at,
        status_changed_at=at,
        closed_at=at,
        closed_by=by,
        closing_agent_id=agent,
        close_reason=reason,
    )


def open_conversation(conversation_id: str = "c9", *, group: str | None = None) -> Conversation:
    return Conversation(
        account_id="acct",
        conversation_id=conversation_id,
        contact_id="maria",
        line_id="sales",
        status=Status.OPEN,
        last_activity_at=CLOSED_AT,
        assignee_agent_id=None if group else "bruno",
        assignee_group_id=group,
    )


def route(
    conversations: list[Conversation],
    settings: AccountSettings = WINDOW,
    *,
    at: datetime = CLOSED_AT + timedelta(hours=1),
    line: LineOwner = LineOwner(),  # noqa: B008 - frozen value
    active: dict[str, bool] | None = None,
    named: str | None = None,
):  # type: ignore[no-untyped-def]
    return route_inbound(
        inbound(at, named=named),
        conversations,
        settings,
        line,
        agents(active),
        NOW,
        open_assigned={},
    )


def test_an_open_conversation_keeps_the_contact_where_it_is() -> None:
    decision = route([closed(), open_conversation()])
    assert decision.route is Route.OPEN_CONVERSATION
    assert (decision.conversation_id, decision.agent_id) == ("c9", "bruno")


def test_an_open_conversation_with_a_group_names_the_group() -> None:
    decision = route([open_conversation(group="sales-team")])
    assert (decision.route, decision.group_id) == (Route.OPEN_CONVERSATION, "sales-team")


def test_a_contact_writing_inside_the_window_goes_back_to_the_agent_who_closed_with_a_reason() -> (
    None
):
    decision = route([closed()])
    assert decision.route is Route.PREVIOUS_AGENT
    assert decision.agent_id == "ana"
    assert "1h" in decision.reason
    assert "within the 1d reassignment window" in decision.reason


def test_an_inbound_dated_just_before_the_close_says_so_instead_of_a_negative_duration() -> None:
    decision = route([closed()], at=CLOSED_AT - timedelta(minutes=2))
    assert decision.route is Route.PREVIOUS_AGENT
    assert "closed conversation c1 with reason 'resolved' 2m after the contact wrote" in (
        decision.reason
    )
    assert "-" not in decision.reason


@pytest.mark.parametrize(
    ("wrote_at", "route_taken"),
    [
        (CLOSED_AT + timedelta(hours=24) - µs, Route.PREVIOUS_AGENT),
        (CLOSED_AT + timedelta(hours=24), Route.UNASSIGNED),
        (CLOSED_AT + timedelta(hours=24) + µs, Route.UNASSIGNED),
    ],
    ids=["1µs-before-the-end", "exactly-at-closed_at+window", "after"],
)
def test_at_closed_at_plus_window_the_window_is_over(
    wrote_at: datetime, route_taken: Route
) -> None:
    assert route([closed()], at=wrote_at).route is route_taken


@pytest.mark.parametrize(
    ("conversation", "why"),
    [
        (closed(reason=None), "without a close reason"),
        (closed(reason=""), "without a close reason"),
        (closed(by=ClosedBy.SYSTEM, agent=None, reason=INACTIVITY), "closed by the system"),
        (closed(by=ClosedBy.SYSTEM, agent=None, reason="spam"), "closed by the system"),
    ],
    ids=["no-reason", "empty-reason", "auto-closed", "system-close"],
)
def test_a_close_without_an_agent_reason_makes_a_new_contact(
    conversation: Conversation, why: str
) -> None:
    decision = route([conversation])
    assert decision.route is Route.UNASSIGNED
    assert why in decision.reason


def test_an_account_without_a_window_never_gives_the_contact_back() -> None:
    decision = route([closed()], AccountSettings(reassignment_window=None))
    assert decision.route is Route.UNASSIGNED
    assert "no reassignment window" in decision.reason


def test_a_deactivated_previous_agent_does_not_get_the_contact_back() -> None:
    decision = route([closed()], active={"ana": False})
    assert decision.route is Route.UNASSIGNED
    assert "ana is no longer active" in decision.reason
    assert route([closed()], active={"ana": True}).route is Route.PREVIOUS_AGENT


def test_only_the_last_closed_conversation_counts() -> None:
    earlier_by_agent = closed("c1", at=CLOSED_AT - timedelta(hours=2))
    later_auto_closed = closed("c2", by=ClosedBy.SYSTEM, agent=None, reason=INACTIVITY)
    assert route([earlier_by_agent, later_auto_closed]).route is Route.UNASSIGNED
    later_by_agent = closed("c3", agent="carla")
    assert route([earlier_by_agent, later_by_agent]).agent_id == "carla"


@pytest.mark.parametrize(
    ("settings", "line", "expected"),
    [
        (AccountSettings(bot_enabled=True), LineOwner(agent_id="olga"), (Route.BOT, None, None)),
        (AccountSettings(), LineOwner(agent_id="olga"), (Route.LINE_OWNER, "olga", None)),
        (AccountSettings(), LineOwner(group_id="sales"), (Route.LINE_OWNER, None, "sales")),
        (AccountSettings(), LineOwner(), (Route.UNASSIGNED, None, None)),
    ],
    ids=["bot-on", "owner-agent", "owner-group", "no-owner"],
)
def test_a_new_contact_goes_to_the_bot_else_the_line_owner_else_nobody(
    settings: AccountSettings, line: LineOwner, expected: tuple[Route, str | None, str | None]
) -> None:
    decision = route([], settings, line=line)
    assert (decision.route, decision.agent_id, decision.group_id) == expected
    assert "no earlier conversation" in decision.reason


def test_conversations_of_other_contacts_lines_or_accounts_are_ignored() -> None:
    others = [
        closed("x1", contact="joao"),
        closed("x2", line="support"),
        closed("x3", account="other-account"),
    ]
    assert route(others).route is Route.UNASSIGNED


def test_the_decision_is_stable_per_inbound_event_and_carries_its_id() -> None:
    first = route([closed()])
    again = route_inbound(
        inbound(CLOSED_AT + timedelta(hours=1)),
        [closed()],
        WINDOW,
        LineOwner(),
        {},
        NOW,
        open_assigned={},
    )
    assert first.decision_id == again.decision_id
    assert first.inbound_event_id == "in-1"
    assert (first.contact_id, first.line_id, first.decided_at) == ("maria", "sales", NOW)


# --- Every route, edge by edge ----------------------------------------------------------------


def decide(
    conversations: list[Conversation],
    settings: AccountSettings = WINDOW,
    *,
    wrote_at: datetime = CLOSED_AT + timedelta(hours=1),
    line: LineOwner = LineOwner(),  # noqa: B008 - frozen value
    active: dict[str, bool] | None = None,
    event_id: str = "in-1",
    account: str = "acct",
    now: datetime = NOW,
) -> ContactRouted:
    message = inbound(wrote_at).model_copy(update={"event_id": event_id, "account_id": account})
    return route_inbound(
        message, conversations, settings, line, agents(active), now, open_assigned={}
    )


@pytest.mark.parametrize(
    "window",
    [timedelta(seconds=1), timedelta(hours=24), timedelta(days=7)],
    ids=["1s", "24h", "7d"],
)
@pytest.mark.parametrize(
    ("wrote_after_close", "route_taken"),
    [
        (lambda w: timedelta(0), Route.PREVIOUS_AGENT),
        (lambda w: µs, Route.PREVIOUS_AGENT),
        (lambda w: w / 2, Route.PREVIOUS_AGENT),
        (lambda w: w - µs, Route.PREVIOUS_AGENT),
        (lambda w: w, Route.LINE_OWNER),
        (lambda w: w + µs, Route.LINE_OWNER),
        (lambda w: w * 10, Route.LINE_OWNER),
    ],
    ids=[
        "at-the-close",
        "1µs-after",
        "half-way",
        "1µs-before-the-end",
        "at-the-end",
        "1µs-past",
        "long-after",
    ],
)
def test_the_window_runs_from_the_close_up_to_but_not_including_close_plus_window(
    window: timedelta,
    wrote_after_close: Callable[[timedelta], timedelta],
    route_taken: Route,
) -> None:
    decision = decide(
        [closed()],
        AccountSettings(reassignment_window=window),
        wrote_at=CLOSED_AT + wrote_after_close(window),
        line=LineOwner(agent_id="olga"),
    )
    assert decision.route is route_taken
    assert decision.agent_id == ("ana" if route_taken is Route.PREVIOUS_AGENT else "olga")


def test_the_window_is_measured_to_when_the_contact_wrote_not_to_when_convlife_decides() -> None:
    decision = decide(
        [closed()], wrote_at=CLOSED_AT + timedelta(hours=23), now=CLOSED_AT + timedelta(days=30)
    )
    assert decision.route is Route.PREVIOUS_AGENT
    assert decision.decided_at == CLOSED_AT + timedelta(days=30)


def test_a_window_longer_than_the_calendar_keeps_the_contact_with_the_previous_agent() -> None:
    endless = AccountSettings(reassignment_window=timedelta(days=999_999_999))
    assert decide([closed()], endless).route is Route.PREVIOUS_AGENT


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        (AccountSettings(reassignment_window=timedelta(hours=24), bot_enabled=True), LineOwner()),
        (WINDOW, LineOwner(agent_id="olga")),
        (WINDOW, LineOwner(group_id="sales-team")),
    ],
    ids=["over-the-bot", "over-an-agent-owner", "over-a-group-owner"],
)
def test_the_previous_agent_comes_before_any_new_contact_route(
    settings: AccountSettings, line: LineOwner
) -> None:
    decision = decide([closed()], settings, line=line)
    assert (decision.route, decision.agent_id, decision.group_id) == (
        Route.PREVIOUS_AGENT,
        "ana",
        None,
    )


def test_the_previous_agent_route_explains_who_closed_with_what_reason_and_when() -> None:
    decision = decide([closed()], wrote_at=CLOSED_AT + timedelta(hours=2, minutes=30))
    assert decision.reason == (
        "agent ana closed conversation c1 with reason 'resolved' 2h 30m before the contact "
        "wrote, within the 1d reassignment window"
    )


@pytest.mark.parametrize(
    ("settings", "line", "expected"),
    [
        (
            AccountSettings(reassignment_window=timedelta(hours=24), bot_enabled=True),
            LineOwner(agent_id="olga"),
            (Route.BOT, None, None),
        ),
        (WINDOW, LineOwner(agent_id="olga"), (Route.LINE_OWNER, "olga", None)),
        (WINDOW, LineOwner(group_id="sales-team"), (Route.LINE_OWNER, None, "sales-team")),
        (WINDOW, LineOwner(), (Route.UNASSIGNED, None, None)),
    ],
    ids=["bot", "owner-agent", "owner-group", "unassigned"],
)
def test_a_deactivated_previous_agent_falls_through_to_the_new_contact_routes(
    settings: AccountSettings, line: LineOwner, expected: tuple[Route, str | None, str | None]
) -> None:
    decision = decide([closed()], settings, line=line, active={"ana": False})
    assert (decision.route, decision.agent_id, decision.group_id) == expected
    assert "agent ana is no longer active" in decision.reason


@pytest.mark.parametrize(
    "active",
    [{}, {"ana": True}, {"someone-else": False}],
    ids=["unknown-agent-counts-as-active", "active", "another-agent-inactive"],
)
def test_an_agent_not_marked_inactive_gets_the_contact_back(active: dict[str, bool]) -> None:
    assert decide([closed()], active=active).route is Route.PREVIOUS_AGENT


@pytest.mark.parametrize(
    ("conversation", "why"),
    [
        (closed(reason=None), "conversation c1 was closed without a close reason"),
        (closed(reason=""), "conversation c1 was closed without a close reason"),
        (
            closed(by=ClosedBy.SYSTEM, agent=None, reason=INACTIVITY),
            "conversation c1 was closed by the system",
        ),
        (closed(by=ClosedBy.AGENT, agent=None), "conversation c1 was closed by the system"),
    ],
    ids=["no-reason", "empty-reason", "by-the-system", "agent-close-naming-no-agent"],
)
def test_a_close_that_does_not_count_sends_the_contact_to_the_line_owner(
    conversation: Conversation, why: str
) -> None:
    decision = decide([conversation], line=LineOwner(group_id="sales-team"))
    assert (decision.route, decision.agent_id, decision.group_id) == (
        Route.LINE_OWNER,
        None,
        "sales-team",
    )
    assert decision.reason == (
        f"new contact ({why}); the bot is off and group sales-team owns the line"
    )


def test_a_conversation_auto_closed_by_the_policy_never_gives_the_contact_back() -> None:
    was_open = replace(open_conversation("c5"), last_activity_at=CLOSED_AT - timedelta(hours=2))
    result = auto_close(
        was_open, AccountSettings(inactivity_close_after=timedelta(hours=1)), CLOSED_AT
    )
    assert result is not None
    decision = decide([result[0]], AccountSettings(reassignment_window=timedelta(days=7)))
    assert decision.route is Route.UNASSIGNED
    assert "closed by the system" in decision.reason


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        (
            AccountSettings(reassignment_window=None),
            "new contact (the account has no reassignment window); the bot is off and "
            "agent olga owns the line",
        ),
        (
            AccountSettings(reassignment_window=None, bot_enabled=True),
            "new contact (the account has no reassignment window); the bot is on",
        ),
    ],
    ids=["bot-off", "bot-on"],
)
def test_without_a_window_an_agent_close_with_a_reason_is_a_new_contact(
    settings: AccountSettings, reason: str
) -> None:
    decision = decide(
        [closed()], settings, wrote_at=CLOSED_AT + µs, line=LineOwner(agent_id="olga")
    )
    assert decision.reason == reason


def test_the_window_over_reason_names_the_window_and_the_conversation() -> None:
    decision = decide([closed()], wrote_at=CLOSED_AT + timedelta(days=2))
    assert decision.reason == (
        "new contact (the 1d reassignment window after conversation c1 is over); the bot is off "
        "and the line has no owner"
    )


@pytest.mark.parametrize(
    ("history", "route_taken", "agent"),
    [
        (
            [
                closed("c1", at=CLOSED_AT - timedelta(hours=3), agent="carla"),
                closed("c2", at=CLOSED_AT - timedelta(hours=2), by=ClosedBy.SYSTEM, agent=None),
                closed("c3", by=ClosedBy.SYSTEM, agent=None, reason=INACTIVITY),
            ],
            Route.UNASSIGNED,
            None,
        ),
        (
            [
                closed("c1", at=CLOSED_AT - timedelta(hours=3), by=ClosedBy.SYSTEM, agent=None),
                closed("c2", at=CLOSED_AT - timedelta(hours=2), agent="carla", reason=None),
                closed("c3", agent="dora"),
            ],
            Route.PREVIOUS_AGENT,
            "dora",
        ),
        (
            [
                closed("c1", at=CLOSED_AT - timedelta(hours=3), agent="carla"),
                closed("c2", agent="dora", reason=None),
                closed("c3", at=CLOSED_AT - timedelta(hours=1), agent="erin"),
            ],
            Route.UNASSIGNED,
            None,
        ),
    ],
    ids=["last-auto-closed", "last-by-agent-with-reason", "last-without-reason"],
)
def test_only_the_last_closed_conversation_counts_in_whatever_order_they_are_given(
    history: list[Conversation], route_taken: Route, agent: str | None
) -> None:
    for order in itertools.permutations(history):
        decision = decide(list(order))
        assert (decision.route, decision.agent_id) == (route_taken, agent)


def test_the_open_conversation_wins_over_a_previous_agent_inside_the_window() -> None:
    decision = decide([closed(), open_conversation("c9", group="sales-team")])
    assert decision.model_dump(include={"route", "conversation_id", "agent_id", "group_id"}) == {
        "route": Route.OPEN_CONVERSATION,
        "conversation_id": "c9",
        "agent_id": None,
        "group_id": "sales-team",
    }
    assert decision.reason == "conversation c9 is open; nothing is reassigned"


def test_an_open_conversation_with_no_assignee_names_only_the_conversation() -> None:
    unassigned = replace(open_conversation("c9"), assignee_agent_id=None)
    decision = decide(
        [unassigned], AccountSettings(bot_enabled=True), line=LineOwner(agent_id="olga")
    )
    assert (decision.route, decision.conversation_id, decision.agent_id, decision.group_id) == (
        Route.OPEN_CONVERSATION,
        "c9",
        None,
        None,
    )


def test_of_two_open_conversations_the_one_with_the_newest_activity_is_named() -> None:
    older = replace(open_conversation("c7"), last_activity_at=CLOSED_AT - timedelta(minutes=1))
    newer = open_conversation("c8")
    for order in ([older, newer], [newer, older]):
        assert decide(order).conversation_id == "c8"


@pytest.mark.parametrize(
    "stranger",
    [
        {"contact_id": "joao"},
        {"line_id": "support"},
        {"account_id": "other-account"},
    ],
    ids=["other-contact", "other-line", "other-account"],
)
def test_open_conversations_of_other_contacts_lines_or_accounts_are_ignored(
    stranger: dict[str, Any],
) -> None:
    decision = decide([replace(open_conversation("x1"), **stranger), closed()])
    assert (decision.route, decision.agent_id) == (Route.PREVIOUS_AGENT, "ana")


@pytest.mark.parametrize(
    "stranger",
    [{"contact": "joao"}, {"line": "support"}, {"account": "other-account"}],
    ids=["other-contact", "other-line", "other-account"],
)
def test_a_newer_agent_close_of_someone_else_does_not_hide_the_contacts_own_last_close(
    stranger: dict[str, Any],
) -> None:
    own_auto_closed = closed("c1", by=ClosedBy.SYSTEM, agent=None, reason=INACTIVITY)
    theirs = closed("x1", at=CLOSED_AT + timedelta(minutes=30), agent="carla", **stranger)
    decision = decide([own_auto_closed, theirs])
    assert decision.route is Route.UNASSIGNED
    assert "conversation c1 was closed by the system" in decision.reason


@pytest.mark.parametrize(
    ("conversations", "settings", "line"),
    [
        ([open_conversation()], WINDOW, LineOwner()),
        ([closed()], WINDOW, LineOwner()),
        ([], AccountSettings(bot_enabled=True), LineOwner()),
        ([], WINDOW, LineOwner(group_id="sales-team")),
        ([], WINDOW, LineOwner()),
    ],
    ids=["open_conversation", "previous_agent", "bot", "line_owner", "unassigned"],
)
def test_every_route_carries_the_inbound_and_the_time_of_the_decision(
    conversations: list[Conversation], settings: AccountSettings, line: LineOwner
) -> None:
    decision = decide(conversations, settings, line=line, event_id="in-77")
    assert decision.type == "contact.routed"
    assert (decision.account_id, decision.inbound_event_id) == ("acct", "in-77")
    assert (decision.contact_id, decision.line_id, decision.decided_at) == ("maria", "sales", NOW)
    assert decision.route.value in decision.model_dump_json()
    assert "timedelta" not in decision.reason
    assert "\n" not in decision.reason


def test_the_decision_id_depends_only_on_the_account_the_inbound_event_and_its_time() -> None:
    first = decide([closed()])
    routed_otherwise = decide([], AccountSettings(bot_enabled=True), now=NOW + timedelta(days=1))
    assert first.decision_id == routed_otherwise.decision_id
    assert uuid.UUID(first.decision_id).version == 8
    assert decide([closed()], event_id="in-2").decision_id != first.decision_id
    assert decide([closed()], account="other-account").decision_id != first.decision_id


def test_a_route_id_begins_with_the_time_the_contact_wrote_so_routes_sort_by_arrival() -> None:
    wrote_at = CLOSED_AT + timedelta(hours=1)
    first = decide([closed()], wrote_at=wrote_at).decision_id
    assert uuid.UUID(first).int >> 80 == int(wrote_at.timestamp() * 1000)
    later = decide([closed()], wrote_at=wrote_at + timedelta(milliseconds=1), event_id="in-2")
    assert first < later.decision_id


# --- Conversations as they stood when the contact wrote ---------------------------------------
# A platform opens (or reopens) a conversation because the contact wrote, dated at that instant
# or just after, and may deliver the open first. The contact is routed as if it had not.

WROTE_AT = CLOSED_AT + timedelta(hours=2)


def history(conversation_id: str, *steps: tuple[datetime, str, dict[str, Any]]) -> Conversation:
    """The conversation after its events, applied in the order given."""
    state: Conversation | None = None
    for moment, type_, fields in steps:
        raw = conversation_event(
            type_, "acct", conversation_id, moment, contact_id="maria", line_id="sales", **fields
        )
        event = parse_event(raw)
        assert isinstance(event, ConversationEvent)
        state = apply_event(state, event)
    assert state is not None
    return state


def opened(moment: datetime, agent: str = "bruno") -> tuple[datetime, str, dict[str, Any]]:
    return (moment, "conversation.opened", {"agent_id": agent})


def closed_by_ana(moment: datetime = CLOSED_AT) -> tuple[datetime, str, dict[str, Any]]:
    fields = {"closed_by": "agent", "agent_id": "ana", "close_reason": "resolved"}
    return (moment, "conversation.closed", fields)


ANAS = history("c1", opened(CLOSED_AT - timedelta(hours=1), "ana"), closed_by_ana())


@pytest.mark.parametrize(
    "opened_at", [WROTE_AT, WROTE_AT + timedelta(seconds=1)], ids=["same-instant", "a-second-after"]
)
def test_a_new_conversation_opened_when_the_contact_wrote_does_not_keep_it_from_its_agent(
    opened_at: datetime,
) -> None:
    new = history("c2", opened(opened_at, "bruno"))

    decision = route([ANAS, new], at=WROTE_AT)

    assert (decision.route, decision.agent_id) == (Route.PREVIOUS_AGENT, "ana")
    assert "agent ana closed conversation c1 with reason 'resolved' 2h before" in decision.reason


@pytest.mark.parametrize(
    "opened_at", [WROTE_AT, WROTE_AT + timedelta(seconds=1)], ids=["same-instant", "a-second-after"]
)
def test_a_reopen_applied_before_the_contacts_message_still_gives_it_back_to_its_agent(
    opened_at: datetime,
) -> None:
    reopened = history(
        "c1", opened(CLOSED_AT - timedelta(hours=1), "ana"), closed_by_ana(), opened(opened_at)
    )
    assert (reopened.status, reopened.closing_agent_id) == (Status.OPEN, None)

    decision = route([reopened], at=WROTE_AT)

    assert (decision.route, decision.agent_id) == (Route.PREVIOUS_AGENT, "ana")
    assert "closed conversation c1 with reason 'resolved'" in decision.reason


def test_a_conversation_opened_before_the_contact_wrote_keeps_it_where_it_is() -> None:
    reopened = history(
        "c1",
        opened(CLOSED_AT - timedelta(hours=1), "ana"),
        closed_by_ana(),
        opened(WROTE_AT - µs),
    )

    decision = route([reopened], at=WROTE_AT)

    assert (decision.route, decision.conversation_id, decision.agent_id) == (
        Route.OPEN_CONVERSATION,
        "c1",
        "bruno",
    )


def test_an_open_after_the_contact_wrote_does_not_hide_an_earlier_open_since_the_close() -> None:
    # Reopened (say to a bot) before the contact wrote, handed to an agent after: open all along.
    handed_over = history(
        "c1",
        opened(WROTE_AT + timedelta(minutes=1)),
        closed_by_ana(),
        opened(CLOSED_AT - timedelta(hours=1), "ana"),
        opened(WROTE_AT - timedelta(minutes=1), "carla"),
    )

    decision = route([handed_over], at=WROTE_AT)

    assert (decision.route, decision.conversation_id) == (Route.OPEN_CONVERSATION, "c1")


def test_a_conversation_open_through_activity_before_any_open_counts_as_open() -> None:
    seen = history("c2", (WROTE_AT + timedelta(minutes=5), "conversation.note", {}))
    assert seen.status_changed_at is None

    decision = route([ANAS, seen], at=WROTE_AT)

    assert (decision.route, decision.conversation_id) == (Route.OPEN_CONVERSATION, "c2")


def test_a_conversation_first_opened_after_the_contact_wrote_does_not_count() -> None:
    new = history("c2", opened(WROTE_AT + timedelta(seconds=1)))

    decision = route([new], at=WROTE_AT, line=LineOwner(agent_id="lea"))

    assert (decision.route, decision.agent_id) == (Route.LINE_OWNER, "lea")
    assert "no earlier conversation on this line" in decision.reason


@pytest.mark.parametrize("reopened", [False, True], ids=["new-conversation", "reopen"])
def test_a_contact_back_after_the_window_opened_in_the_same_instant_is_a_new_contact(
    reopened: bool,
) -> None:
    wrote_at = CLOSED_AT + timedelta(hours=24)
    conversations = (
        [
            history(
                "c1",
                opened(CLOSED_AT - timedelta(hours=1), "ana"),
                closed_by_ana(),
                opened(wrote_at),
            )
        ]
        if reopened
        else [ANAS, history("c2", opened(wrote_at))]
    )

    decision = route(conversations, at=wrote_at)

    assert decision.route is Route.UNASSIGNED
    assert "the 1d reassignment window after conversation c1 is over" in decision.reason


def test_the_inbound_counts_as_activity_of_no_conversation_when_it_goes_back_to_the_agent() -> None:
    new = history("c2", opened(WROTE_AT))
    assert touched_conversation(route([ANAS, new], at=WROTE_AT)) is None
    earlier = history("c2", opened(WROTE_AT - µs))
    assert touched_conversation(route([ANAS, earlier], at=WROTE_AT)) == "c2"


# --- The conversation the inbound names -------------------------------------------------------
# A platform that opens a conversation per inbound contact says which one its message opened or
# reopened (`conversation_id`): that one counts as before its current open, whatever the times.


def test_a_named_new_conversation_opened_before_the_contact_wrote_sends_it_to_its_agent() -> None:
    new = history("c2", opened(WROTE_AT - timedelta(seconds=1)))

    decision = route([ANAS, new], at=WROTE_AT, named="c2")

    assert (decision.route, decision.agent_id, decision.conversation_id) == (
        Route.PREVIOUS_AGENT,
        "ana",
        "c2",
    )
    assert "agent ana closed conversation c1 with reason 'resolved' 2h before" in decision.reason


@pytest.mark.parametrize(
    "opens",
    [
        [opened(WROTE_AT - timedelta(seconds=1))],
        [
            (WROTE_AT - timedelta(minutes=1), "conversation.opened", {"bot": True}),
            opened(WROTE_AT + timedelta(minutes=1)),
        ],
    ],
    ids=["reopened-before-it-wrote", "reopened-to-a-bot-then-handed-over"],
)
def test_a_named_reopened_conversation_counts_as_closed_by_the_close_its_reopen_replaced(
    opens: list[tuple[datetime, str, dict[str, Any]]],
) -> None:
    reopened = history("c1", opened(CLOSED_AT - timedelta(hours=1), "ana"), closed_by_ana(), *opens)

    decision = route([reopened], at=WROTE_AT, named="c1")

    assert (decision.route, decision.agent_id, decision.conversation_id) == (
        Route.PREVIOUS_AGENT,
        "ana",
        "c1",
    )
    assert "closed conversation c1 with reason 'resolved'" in decision.reason


def test_a_named_conversation_is_taken_at_its_word_however_long_before_it_was_opened() -> None:
    # The platform says the message opened it: an open dated a day earlier is its clock's, or
    # its own mistake; either way the conversation had no close before, so it does not count.
    new = history("c2", opened(WROTE_AT - timedelta(days=1)))

    decision = route([new], at=WROTE_AT, named="c2", line=LineOwner(agent_id="lea"))

    assert (decision.route, decision.agent_id, decision.conversation_id) == (
        Route.LINE_OWNER,
        "lea",
        "c2",
    )
    assert "no earlier conversation on this line" in decision.reason


def test_a_named_conversation_closed_again_since_counts_by_its_newest_close() -> None:
    # The routing arrives late: the conversation the message opened was handled and closed by
    # bruno since. Its close counts as any close does, so the contact stays bruno's.
    handled = history(
        "c2",
        opened(WROTE_AT - timedelta(seconds=1)),
        (
            WROTE_AT + timedelta(minutes=5),
            "conversation.closed",
            {"closed_by": "agent", "agent_id": "bruno", "close_reason": "done"},
        ),
    )

    decision = route([ANAS, handled], at=WROTE_AT, named="c2")

    assert (decision.route, decision.agent_id, decision.conversation_id) == (
        Route.PREVIOUS_AGENT,
        "bruno",
        "c2",
    )
    assert "closed conversation c2 with reason 'done' 5m after the contact wrote" in decision.reason


def test_a_named_conversation_never_seen_leaves_the_others_to_decide_and_is_named() -> None:
    decision = route([ANAS], at=WROTE_AT, named="c7")

    assert (decision.route, decision.agent_id, decision.conversation_id) == (
        Route.PREVIOUS_AGENT,
        "ana",
        "c7",
    )


def test_another_open_conversation_still_keeps_the_contact_where_it_is() -> None:
    other = history("c3", opened(WROTE_AT - timedelta(hours=1)))
    new = history("c2", opened(WROTE_AT - timedelta(seconds=1)))

    decision = route([ANAS, other, new], at=WROTE_AT, named="c2")

    assert (decision.route, decision.conversation_id) == (Route.OPEN_CONVERSATION, "c3")


@pytest.mark.parametrize("bot", [False, True], ids=["line-owner", "bot"])
def test_every_route_but_an_open_conversation_names_the_named_conversation(bot: bool) -> None:
    settings = AccountSettings(bot_enabled=bot)

    decision = route([], settings, at=WROTE_AT, named="c2", line=LineOwner(group_id="sales-team"))

    assert decision.route is (Route.BOT if bot else Route.LINE_OWNER)
    assert decision.conversation_id == "c2"


def test_an_inbound_naming_no_conversation_is_routed_by_the_times_alone() -> None:
    opened_before = history("c2", opened(WROTE_AT - timedelta(seconds=1)))
    opened_after = history("c2", opened(WROTE_AT + timedelta(seconds=1)))

    kept = route([ANAS, opened_before], at=WROTE_AT)
    back = route([ANAS, opened_after], at=WROTE_AT)

    assert (kept.route, kept.conversation_id) == (Route.OPEN_CONVERSATION, "c2")
    assert (back.route, back.agent_id, back.conversation_id) == (Route.PREVIOUS_AGENT, "ana", None)


def test_the_inbound_counts_as_activity_of_the_conversation_it_names() -> None:
    new = history("c2", opened(WROTE_AT - timedelta(seconds=1)))
    assert touched_conversation(route([ANAS, new], at=WROTE_AT, named="c2")) == "c2"
    assert touched_conversation(route([ANAS], at=WROTE_AT, named="c7")) == "c7"
