"""A late close racing the sweep: agents' closes dated before their conversation's deadline are
delivered around the sweep: well before it, just at the deadline, and after the auto-close. The
final state and the routing are those of the close whatever won the race, and `auto_closed` is
emitted at most once per idle period; lost 0, duplicated 0.

Run alone: `.venv/bin/python -m pytest tests/faults/test_late_close_race.py`.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from events.names import HEARTBEAT_KEY
from store.tables import conversations, decisions
from tests.faults.harness import Driver, Stack
from tests.processes import wait_until

CLOSE_AFTER = timedelta(seconds=3)
PER_GROUP = 8
DELIVERED_AT = {"early": 0.5, "at-the-deadline": 3.0, "after-the-sweep": 3.0}
"""When each group's closes are sent, in seconds after the conversations opened (the deadline
is at 3 s; sweeps run every 0.5 s), and for the last group only once the sweep has auto-closed
its conversations. The closes themselves are all dated 2 s after the open."""


def test_a_close_dated_before_the_deadline_wins_whenever_it_arrives(stack: Stack) -> None:
    driver = Driver()
    account = f"{driver.run}-a0"
    stack.worker()
    stack.start("beat")
    settings = driver._event(
        "account.settings_updated",
        account,
        datetime.now(UTC) - timedelta(minutes=1),
        inactivity_close_after="PT3S",
        reassignment_window="PT1H",
    )
    driver.send(stack.broker_url, [settings])
    wait_until(lambda: applied(stack, driver) == 1, 30, "the settings")
    wait_until(lambda: stack.redis().get(HEARTBEAT_KEY) is not None, 30, "a first sweep")

    opened_at = datetime.now(UTC)
    groups: dict[str, list[str]] = {group: [] for group in [*DELIVERED_AT, "never-closed"]}
    opens, closes = [], {}
    for group, members in groups.items():
        for n in range(PER_GROUP):
            conversation = f"{group}-{n}"
            members.append(conversation)
            opens.append(
                driver._event(
                    "conversation.opened", account, opened_at, agent_id="ana", **base(conversation)
                )
            )
            if group != "never-closed":
                closes[conversation] = driver._event(
                    "conversation.closed",
                    account,
                    opened_at + timedelta(seconds=2),
                    closed_by="agent",
                    agent_id=f"agent-{n}",
                    close_reason="resolved",
                    **base(conversation),
                )
    driver.send(stack.broker_url, opens, 16)
    for group, after in DELIVERED_AT.items():
        wait = (opened_at + timedelta(seconds=after) - datetime.now(UTC)).total_seconds()
        time.sleep(max(0.0, wait))
        if group == "after-the-sweep":
            swept = set(groups[group])
            wait_until(lambda: swept <= auto_closed(stack, account), 30, "the sweep")  # noqa: B023
        driver.send(stack.broker_url, [closes[c] for c in groups[group]], 4)
    accepted = len(driver.events)
    wait_until(lambda: applied(stack, driver) == accepted, 60, "every close")
    wait_until(
        lambda: set(groups["never-closed"]) <= auto_closed(stack, account), 30, "the idle ones"
    )
    inbound_at = datetime.now(UTC)
    inbounds = [
        driver._event("contact.inbound", account, inbound_at, **contact_of(conversation))
        for members in groups.values()
        for conversation in members
    ]
    driver.send(stack.broker_url, inbounds, 16)

    def settled() -> bool:
        counts = stack.count(driver, len(driver.events))
        return counts.lost == 0 and counts.routed == len(inbounds) and counts.unpublished == 0

    wait_until(settled, 60, "every inbound to be routed")
    counts = stack.count(driver, len(driver.events))
    raced = auto_closed(stack, account)
    print(
        f"\nfault figures: {counts.line()}; agent-closed conversations auto-closed first: "
        + ", ".join(f"{g} {len(set(groups[g]) & raced)}/{PER_GROUP}" for g in DELIVERED_AT)
    )

    assert counts.lost == 0, counts.line()
    assert counts.duplicated_effects == 0, counts.line()
    assert counts.dead_lettered == 0, counts.line()
    assert set(groups["after-the-sweep"]) <= raced  # the race happened: the sweep came first
    states = final_states(stack, account)
    routes = routing(stack, account)
    for conversation, close in closes.items():
        closed_at = opened_at + timedelta(seconds=2)
        assert states[conversation] == (
            "closed",
            "agent",
            close["agent_id"],
            "resolved",
            False,
            closed_at,
        )
        contact = contact_of(conversation)["contact_id"]
        assert routes[contact] == ("previous_agent", close["agent_id"])
    for conversation in groups["never-closed"]:
        assert states[conversation][:5] == ("closed", "system", None, "inactivity", True)
        assert routes[contact_of(conversation)["contact_id"]] == ("unassigned", None)
    per_conversation = auto_closed_counts(stack, account)
    assert max(per_conversation.values()) == 1  # at most once per idle period


def base(conversation: str) -> dict[str, str]:
    return {"conversation_id": conversation, **contact_of(conversation)}


def contact_of(conversation: str) -> dict[str, str]:
    return {"contact_id": f"k-{conversation}", "line_id": "l1"}


def applied(stack: Stack, driver: Driver) -> int:
    return stack.count(driver, 0).applied


def auto_closed(stack: Stack, account: str) -> set[str]:
    return set(auto_closed_counts(stack, account))


def auto_closed_counts(stack: Stack, account: str) -> dict[str, int]:
    found: dict[str, int] = {}
    with stack.engine.connect() as connection:
        for row in connection.execute(
            select(decisions.c.conversation_id).where(
                decisions.c.account_id == account, decisions.c.type == "conversation.auto_closed"
            )
        ):
            found[row.conversation_id] = found.get(row.conversation_id, 0) + 1
    return found


def final_states(stack: Stack, account: str) -> dict[str, tuple[Any, ...]]:
    with stack.engine.connect() as connection:
        rows = connection.execute(
            select(
                conversations.c.conversation_id,
                conversations.c.status,
                conversations.c.closed_by,
                conversations.c.closing_agent_id,
                conversations.c.close_reason,
                conversations.c.auto_closed,
                conversations.c.closed_at,
            ).where(conversations.c.account_id == account)
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def routing(stack: Stack, account: str) -> dict[str, tuple[str, str | None]]:
    with stack.engine.connect() as connection:
        rows = connection.execute(
            select(decisions.c.data).where(
                decisions.c.account_id == account, decisions.c.type == "contact.routed"
            )
        ).all()
    routes = {}
    for row in rows:
        data = json.loads(row.data)
        routes[data["contact_id"]] = (data["route"], data.get("agent_id"))
    return routes
