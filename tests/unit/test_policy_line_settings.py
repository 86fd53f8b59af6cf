"""Per-line settings as pure rules: what a line's update overrides, the settings that apply on a
line, when a change moves deadlines, and how reasons name who set a setting."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from events.decisions import ContactRouted, Route
from events.models import ContactInbound, LineUpdated
from events.parsing import parse_event
from policies.batch import Loaded, decide
from policies.configuration import (
    NEVER_UPDATED,
    Stamped,
    effective,
    ignores_account_deadlines,
    line_of,
    overrides_deadlines,
)
from policies.inactivity import auto_close
from policies.routing import route_inbound
from policies.state import AccountSettings, ClosedBy, Conversation, LineOwner, LineSettings, Status
from tests.support import event, new_id, utc

T0 = utc("2026-03-01T10:00:00")
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
ACCOUNT = AccountSettings(
    inactivity_close_after=HOUR, reassignment_window=timedelta(days=1), bot_enabled=True
)


def line_update(account: str = "acct", at_minute: int = 0, **fields: Any) -> LineUpdated:
    parsed = parse_event(event("line.updated", account, T0 + at_minute * MINUTE, **fields))
    assert isinstance(parsed, LineUpdated)
    return parsed


def test_a_setting_the_line_leaves_out_inherits_the_accounts_value() -> None:
    line = line_of(line_update(line_id="l1", agent_id="ana"))

    assert line.overrides == LineSettings()
    assert effective(ACCOUNT, line.overrides) == ACCOUNT


def test_a_null_override_means_never_or_off_for_the_line() -> None:
    line = line_of(
        line_update(
            line_id="l1", inactivity_close_after=None, reassignment_window=None, bot_enabled=None
        )
    )

    applied = effective(ACCOUNT, line.overrides)

    assert (applied.inactivity_close_after, applied.reassignment_window) == (None, None)
    assert applied.bot_enabled is False


def test_a_value_overrides_only_its_own_setting() -> None:
    line = line_of(line_update(line_id="l1", inactivity_close_after="PT10M"))

    assert effective(ACCOUNT, line.overrides) == AccountSettings(
        inactivity_close_after=10 * MINUTE,
        reassignment_window=timedelta(days=1),
        bot_enabled=True,
    )


def test_a_line_depends_on_the_accounts_deadlines_unless_it_overrides_every_deadline_setting() -> (
    None
):
    close_only = LineSettings({"inactivity_close_after": None})
    every = LineSettings(
        {"inactivity_close_after": None, "close_warning_before": None, "business_hours": None}
    )
    window_only = LineSettings({"reassignment_window": HOUR})

    assert (overrides_deadlines(close_only), ignores_account_deadlines(close_only)) == (True, False)
    assert (overrides_deadlines(every), ignores_account_deadlines(every)) == (True, True)
    assert (overrides_deadlines(window_only), ignores_account_deadlines(window_only)) == (
        False,
        False,
    )


def open_on(line_id: str, account: str = "acct") -> Conversation:
    return Conversation(
        account_id=account,
        conversation_id="c1",
        contact_id="maria",
        line_id=line_id,
        status=Status.OPEN,
        last_activity_at=T0,
    )


def test_an_auto_close_under_a_lines_override_says_the_line_closes() -> None:
    overrides = LineSettings({"inactivity_close_after": 2 * HOUR})
    settings = effective(ACCOUNT, overrides)

    closing = auto_close(open_on("l1"), settings, T0 + 2 * HOUR, line=overrides)

    assert closing is not None
    assert closing[1].reason == (
        "no action for 2h; line l1 closes conversations after 2h without action"
    )


def test_an_auto_close_under_an_inherited_setting_says_the_account_closes() -> None:
    overrides = LineSettings({"bot_enabled": False})

    closing = auto_close(open_on("l1"), effective(ACCOUNT, overrides), T0 + HOUR, line=overrides)

    assert closing is not None
    assert closing[1].reason.endswith("; the account closes conversations after 1h without action")


def inbound_on(line_id: str) -> ContactInbound:
    return ContactInbound(
        type="contact.inbound",
        event_id="in-1",
        account_id="acct",
        occurred_at=T0 + 3 * HOUR,
        contact_id="maria",
        line_id=line_id,
    )


def closed_by_ana(line_id: str) -> Conversation:
    return Conversation(
        account_id="acct",
        conversation_id="c1",
        contact_id="maria",
        line_id=line_id,
        status=Status.CLOSED,
        last_activity_at=T0,
        status_changed_at=T0,
        closed_at=T0,
        closed_by=ClosedBy.AGENT,
        closing_agent_id="ana",
        close_reason="resolved",
    )


def route_under(overrides: LineSettings) -> ContactRouted:
    line = LineOwner(group_id="sales", overrides=overrides)
    return route_inbound(
        inbound_on("l1"),
        [closed_by_ana("l1")],
        effective(ACCOUNT, line.overrides),
        line,
        {},
        T0,
        open_assigned={},
    )


def test_a_routing_reason_names_the_lines_reassignment_window_when_the_line_sets_it() -> None:
    within = route_under(LineSettings({"reassignment_window": 4 * HOUR}))
    over = route_under(LineSettings({"reassignment_window": 2 * HOUR, "bot_enabled": False}))
    none = route_under(LineSettings({"reassignment_window": None}))

    assert within.route is Route.PREVIOUS_AGENT
    assert within.reason.endswith("within the 4h reassignment window of line l1")
    assert over.route is Route.LINE_OWNER
    assert over.reason == (
        "new contact (the 2h reassignment window of line l1 after conversation c1 is over); "
        "the bot of line l1 is off and group sales owns the line"
    )
    assert none.route is Route.BOT
    assert none.reason == "new contact (line l1 has no reassignment window); the bot is on"


def test_a_routing_reason_under_the_accounts_settings_reads_as_before() -> None:
    routed = route_under(LineSettings())

    assert routed.reason.endswith("within the 1d reassignment window")


def loaded_with_line(account: str, overrides: LineSettings, *conversations: Conversation) -> Loaded:
    line = LineOwner(overrides=overrides)
    return Loaded(
        accounts={},
        lines={(account, "l1"): Stamped(line, NEVER_UPDATED)},
        agents={},
        settings={account: ACCOUNT},
        owners={(account, "l1"): line},
        agent_states={},
        open_assigned={},
        conversations={(c.account_id, c.conversation_id): c for c in conversations},
    )


def test_a_line_change_that_moves_its_deadlines_reschedules_the_line_with_its_new_settings() -> (
    None
):
    account = new_id("acct")
    update = line_update(account, 1, line_id="l1", inactivity_close_after="PT5M")

    decided = decide(loaded_with_line(account, LineSettings()), [update], T0 + 2 * MINUTE)

    assert decided.rescheduled_lines == {
        (account, "l1"): AccountSettings(
            inactivity_close_after=5 * MINUTE,
            reassignment_window=timedelta(days=1),
            bot_enabled=True,
        )
    }
    assert decided.rescheduled == {}


def test_a_line_change_that_leaves_its_deadlines_reschedules_nothing() -> None:
    account = new_id("acct")
    # The line overrode the close with the account's own value; now it inherits it.
    before = LineSettings({"inactivity_close_after": HOUR})
    update = line_update(account, 1, line_id="l1", agent_id="ana", bot_enabled=False)

    decided = decide(loaded_with_line(account, before), [update], T0 + 2 * MINUTE)

    assert decided.lines[(account, "l1")].value.overrides == LineSettings({"bot_enabled": False})
    assert decided.rescheduled_lines == {}


def test_a_conversation_changed_in_the_batch_gets_the_deadline_of_its_lines_settings() -> None:
    account = new_id("acct")
    update = line_update(account, 5, line_id="l1", inactivity_close_after=None)
    opened = parse_event(
        event(
            "conversation.opened",
            account,
            T0 + 10 * MINUTE,
            conversation_id="c1",
            contact_id="maria",
            line_id="l1",
        )
    )

    decided = decide(
        loaded_with_line(account, LineSettings(), open_on("l1", account)),
        [opened, update],
        T0 + 10 * MINUTE,
    )

    conversation, deadline = decided.conversations[(account, "c1")]
    assert conversation.last_activity_at == T0 + 10 * MINUTE
    assert deadline is None
