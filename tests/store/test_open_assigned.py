"""store.conversations.open_assigned on SQLite and PostgreSQL: how many open conversations each
agent has, for the capacity rule, in one statement served by the open-by-agent index."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Connection, Engine

from events.models import ContactInbound, ConversationEvent
from events.parsing import parse_event
from policies.configuration import Stamp, Stamped
from policies.state import AccountSettings, Agent, Status
from store import batch, configuration, conversations
from tests.store.plans import T0, conversation, plan, statements, stored
from tests.support import conversation_event, new_id
from tests.support import event as raw_event


def test_each_agent_gets_the_count_of_its_open_conversations_and_zero_when_it_has_none(
    engine: Engine,
) -> None:
    account, other = new_id("acct"), new_id("acct")
    with engine.begin() as connection:
        stored(
            connection,
            conversation(account, agent="ana"),
            conversation(account, agent="ana"),
            conversation(account, agent="ana", status=Status.CLOSED),
            conversation(account, agent="bia"),
            conversation(account, group="ana"),
            conversation(other, agent="ana"),
        )
        counts = conversations.open_assigned(
            connection, {(account, "ana"), (account, "bia"), (account, "caio"), (other, "ana")}
        )
    assert counts == {
        (account, "ana"): 2,
        (account, "bia"): 1,
        (account, "caio"): 0,
        (other, "ana"): 1,
    }


def test_no_agents_asked_means_no_statement(engine: Engine) -> None:
    with engine.connect() as connection, statements(connection) as seen:
        assert conversations.open_assigned(connection, set()) == {}
    assert seen == []


def test_the_count_of_many_agents_is_one_statement_served_by_the_open_by_agent_index(
    engine: Engine,
) -> None:
    account = new_id("acct")
    agents = {(account, f"agent-{n}") for n in range(50)}
    with engine.begin() as connection:
        stored(connection, *(conversation(account, agent=f"agent-{n}") for n in range(0, 50, 2)))
        with statements(connection) as seen:
            counts = conversations.open_assigned(connection, agents)
        [(sql, parameters)] = seen
        # The plan names a partial index only if its predicate (status = 'open') matches the
        # query's. SQLite takes the one built for this count; PostgreSQL, on a table this small,
        # may price the open-by-line index the same or lower, depending on the statistics
        # autovacuum last gathered (this failed on a stale table): any open index, no scan.
        chosen = plan(connection, sql, parameters)
        dialect = connection.dialect.name
    assert "ix_conversations_open_by_agent" in chosen or (
        dialect == "postgresql" and "ix_conversations_open_" in chosen
    )
    assert "Seq Scan" not in chosen
    assert sum(counts.values()) == 25
    assert counts[(account, "agent-1")] == 0


def with_capacity(connection: Connection, account: str, agent: str, capacity: int) -> None:
    configuration.lock_agent_rows(connection, {(account, agent)})  # creates the row
    configuration.save_agent_rows(
        connection,
        {(account, agent): Stamped(Agent(capacity=capacity), Stamp(T0, new_id("e")))},
    )


def maria_writes_after_ana_closed(
    engine: Engine, account: str, *before: dict[str, object]
) -> set[tuple[str, str]]:
    """The agents whose open conversations a batch counts: Maria's last conversation was
    closed by ana, and she writes after `before` (raw events of the same batch)."""
    with engine.begin() as connection:
        marias = conversation(account, agent="ana", status=Status.CLOSED)
        stored(connection, marias, conversation(account, agent="ana"))
    wrote = raw_event(
        "contact.inbound",
        account,
        T0 + timedelta(minutes=2),
        contact_id=marias.contact_id,
        line_id="line-1",
    )
    events = [parse_event(e) for e in [*before, wrote]]
    with engine.begin() as connection:
        loaded = batch.load(connection, events, AccountSettings())  # type: ignore[arg-type]
    return set(loaded.open_assigned)


def test_an_agent_without_a_capacity_is_not_counted(engine: Engine) -> None:
    assert maria_writes_after_ana_closed(engine, new_id("acct")) == set()


def test_an_agent_with_a_capacity_is_counted(engine: Engine) -> None:
    account = new_id("acct")
    with engine.begin() as connection:
        with_capacity(connection, account, "ana", 3)
    assert maria_writes_after_ana_closed(engine, account) == {(account, "ana")}


def test_an_agent_the_batch_may_give_a_capacity_is_counted(engine: Engine) -> None:
    account = new_id("acct")
    update = raw_event("agent.updated", account, T0 + timedelta(minutes=1), agent_id="ana")
    update["capacity"] = 1
    assert maria_writes_after_ana_closed(engine, account, update) == {(account, "ana")}


def test_a_batch_loads_counts_that_include_the_conversations_it_creates(engine: Engine) -> None:
    # The batch's new conversations are created before the count, so that `decide` can move
    # the counts from the conversations as loaded (here: open, unassigned, counted nowhere).
    account = new_id("acct")
    with engine.begin() as connection:
        marias = conversation(account, agent="ana", status=Status.CLOSED)
        stored(connection, marias, conversation(account, agent="ana"))
        with_capacity(connection, account, "ana", 2)
    opened = parse_event(
        conversation_event(
            "conversation.opened", account, new_id("c"), T0 + timedelta(minutes=1), agent_id="ana"
        )
    )
    wrote = parse_event(
        raw_event(
            "contact.inbound",
            account,
            T0 + timedelta(minutes=2),
            contact_id=marias.contact_id,
            line_id="line-1",
        )
    )
    assert isinstance(opened, ConversationEvent)
    assert isinstance(wrote, ContactInbound)
    with engine.begin() as connection:
        loaded = batch.load(connection, [opened, wrote], AccountSettings())
    assert loaded.open_assigned == {(account, "ana"): 1}
    new = loaded.conversations[(account, opened.conversation_id)]
    assert (new.is_open, new.assignee_agent_id) == (True, None)


def test_a_batch_without_an_inbound_contact_counts_nothing(engine: Engine) -> None:
    account = new_id("acct")
    opened = parse_event(
        conversation_event("conversation.opened", account, new_id("c"), T0, agent_id="ana")
    )
    with engine.begin() as connection:
        loaded = batch.load(connection, [opened], AccountSettings())
    assert loaded.open_assigned == {}
