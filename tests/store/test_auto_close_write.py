"""The sweep stores its closes with one UPDATE of the columns a close changes
(store.conversations.save_auto_closes) instead of saving the conversation the rule returns. Both
writes must leave every row the same, whatever the conversation held (assignee, warning, what
its open replaced, an earlier automatic close's fields) and whatever the settings and the time.

A property test without a library: many random states from a fixed seed (a failure is
reproducible), each closed once by the pure rule and saved, and once by the set-based write.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from events.business_hours import BusinessHours
from policies.inactivity import auto_close
from policies.state import AccountSettings, ClosedBy, Conversation, LineSettings, Status
from store import conversations
from store.tables import conversations as conversations_table
from tests.support import new_id

ROUNDS = 40
CONVERSATIONS_PER_ROUND = 10
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
CALENDAR = BusinessHours(
    timezone="America/Sao_Paulo",
    weekly=dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), (("09:00", "18:00"),)),
)


def an_instant(rng: random.Random) -> datetime:
    return EPOCH + timedelta(
        seconds=rng.randint(0, 86400 * 365 * 3), microseconds=rng.randint(0, 999_999)
    )


def maybe(rng: random.Random, value: Any) -> Any:
    return value if rng.random() < 0.5 else None


def an_open_conversation(rng: random.Random, account_id: str) -> Conversation:
    earlier_auto = rng.random() < 0.2  # fields a close leaves alone, and those it overwrites
    return Conversation(
        account_id=account_id,
        conversation_id=new_id("conv"),
        contact_id=new_id("contact"),
        line_id=rng.choice(["line-1", "line-2"]),
        status=Status.OPEN,
        last_activity_at=an_instant(rng),
        status_changed_at=maybe(rng, an_instant(rng)),
        assignee_agent_id=maybe(rng, "agent-7"),
        assignee_group_id=maybe(rng, "group-2"),
        assignee_bot=rng.random() < 0.3,
        assigned_at=maybe(rng, an_instant(rng)),
        closed_at=an_instant(rng) if earlier_auto else None,
        closed_by=ClosedBy.AGENT if earlier_auto else None,
        closing_agent_id="agent-1" if earlier_auto else None,
        close_reason="resolved" if earlier_auto else None,
        auto_closed=earlier_auto,
        close_warned_at=maybe(rng, an_instant(rng)),
        previous_closed_at=maybe(rng, an_instant(rng)),
        previous_closed_by=maybe(rng, rng.choice(list(ClosedBy))),
        previous_closing_agent_id=maybe(rng, "agent-3"),
        previous_close_reason=maybe(rng, "spam"),
        previous_opened_at=maybe(rng, an_instant(rng)),
    )


def a_setting(rng: random.Random) -> AccountSettings:
    close_after = timedelta(seconds=rng.randint(1, 86400 * 30))
    return AccountSettings(
        inactivity_close_after=close_after,
        close_warning_before=maybe(rng, timedelta(seconds=rng.randint(1, 86400))),
        business_hours=CALENDAR if rng.random() < 0.3 else None,
    )


def stored_rows(connection: Connection, account_id: str) -> dict[str, dict[str, Any]]:
    rows = connection.execute(
        select(conversations_table).where(conversations_table.c.account_id == account_id)
    )
    return {
        row.conversation_id: {k: v for k, v in row._mapping.items() if k != "account_id"}
        for row in rows
    }


def test_the_sweeps_set_based_close_stores_exactly_what_saving_the_rules_close_stores(
    engine: Engine,
) -> None:
    rng = random.Random(20261126)
    closes = 0
    for _ in range(ROUNDS):
        by_rule, by_sql = new_id("acct"), new_id("acct")
        settings = a_setting(rng)
        now = an_instant(rng) + timedelta(days=rng.choice([0, 40]))
        states = [an_open_conversation(rng, by_rule) for _ in range(CONVERSATIONS_PER_ROUND)]
        with engine.begin() as connection:
            due: list[tuple[str, str]] = []
            for state in states:
                closing = auto_close(state, settings, now, line=LineSettings())
                if closing is None:
                    continue
                twin = Conversation(**{**vars(state), "account_id": by_sql})
                # Both start from the same stored row, with some next check in it.
                conversations.save(connection, {conversations.key_of(twin): (twin, now)})
                conversations.save(connection, {conversations.key_of(state): (state, now)})
                conversations.save(connection, {conversations.key_of(state): (closing[0], None)})
                due.append(conversations.key_of(twin))
            conversations.save_auto_closes(connection, due, now)
            closes += len(due)
            assert stored_rows(connection, by_sql) == stored_rows(connection, by_rule)
    assert closes > ROUNDS  # the property was tried on many closes, not vacuously
