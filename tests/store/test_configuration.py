"""store.configuration on SQLite and PostgreSQL: defaults for what was never configured,
newest-wins updates, and a settings update that leaves fields out keeps them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from events.models import AccountSettingsUpdated, AgentUpdated, LineUpdated
from events.parsing import parse_event
from policies.state import AccountSettings, Agent, LineOwner
from store import configuration
from tests.store.plans import statements
from tests.support import event, new_id, utc

T0 = utc("2026-03-01T10:00:00")
HOUR = timedelta(hours=1)
DEFAULT = AccountSettings(
    inactivity_close_after=timedelta(days=7), reassignment_window=None, bot_enabled=False
)


def settings_update(account: str, at: datetime, **fields: Any) -> AccountSettingsUpdated:
    """Only the fields given are in the event (the others are left out, not null)."""
    parsed = parse_event(event("account.settings_updated", account, at, **fields))
    assert isinstance(parsed, AccountSettingsUpdated)
    return parsed


def line_update(account: str, at: datetime, **owner: str | None) -> LineUpdated:
    parsed = parse_event(event("line.updated", account, at, line_id="line-1", **owner))
    assert isinstance(parsed, LineUpdated)
    return parsed


def agent_update(account: str, at: datetime, *, active: bool) -> AgentUpdated:
    parsed = parse_event(event("agent.updated", account, at, agent_id="ana", active=active))
    assert isinstance(parsed, AgentUpdated)
    return parsed


def settings_of(engine: Engine, account: str) -> AccountSettings:
    with engine.connect() as connection:
        return configuration.account_settings(connection, {account}, DEFAULT)[account]


def test_an_account_never_configured_gets_the_default(engine: Engine) -> None:
    unknown, other = new_id("acct"), new_id("acct")
    with engine.connect() as connection:
        found = configuration.account_settings(connection, {unknown, other}, DEFAULT)
        assert configuration.account_settings(connection, set(), DEFAULT) == {}
    assert found == {unknown: DEFAULT, other: DEFAULT}


def test_a_first_settings_update_starts_from_the_default_and_returns_before_and_after(
    engine: Engine,
) -> None:
    account = new_id("acct")
    with engine.begin() as connection:
        change = configuration.apply_settings(
            connection,
            settings_update(account, T0, reassignment_window="PT1H", bot_enabled=True),
            DEFAULT,
        )
    after = AccountSettings(timedelta(days=7), HOUR, bot_enabled=True)
    assert change == (DEFAULT, after)
    assert settings_of(engine, account) == after


def test_a_settings_update_keeps_the_fields_it_leaves_out(engine: Engine) -> None:
    account = new_id("acct")
    with engine.begin() as connection:
        configuration.apply_settings(
            connection,
            settings_update(
                account,
                T0,
                inactivity_close_after="PT30M",
                reassignment_window="P1D",
                bot_enabled=True,
            ),
            DEFAULT,
        )
        configuration.apply_settings(
            connection, settings_update(account, T0 + HOUR, bot_enabled=False), DEFAULT
        )
        configuration.apply_settings(
            connection, settings_update(account, T0 + 2 * HOUR, reassignment_window=60), DEFAULT
        )
    assert settings_of(engine, account) == AccountSettings(
        timedelta(minutes=30), timedelta(seconds=60), bot_enabled=False
    )


def test_null_in_a_settings_update_means_never(engine: Engine) -> None:
    account = new_id("acct")
    with engine.begin() as connection:
        change = configuration.apply_settings(
            connection,
            settings_update(account, T0, inactivity_close_after=None, reassignment_window=None),
            AccountSettings(HOUR, HOUR, bot_enabled=True),
        )
    assert change is not None
    assert change[1] == AccountSettings(None, None, bot_enabled=True)
    assert settings_of(engine, account) == AccountSettings(None, None, bot_enabled=True)


def test_an_older_settings_update_is_ignored_and_returns_none(engine: Engine) -> None:
    account = new_id("acct")
    with engine.begin() as connection:
        newer = settings_update(account, T0, inactivity_close_after="PT10M", event_id="s-b")
        assert configuration.apply_settings(connection, newer, DEFAULT) is not None
        older = settings_update(account, T0 - HOUR, inactivity_close_after="P30D", bot_enabled=True)
        assert configuration.apply_settings(connection, older, DEFAULT) is None
        same_time_lesser_id = settings_update(
            account, T0, inactivity_close_after="P30D", event_id="s-a"
        )
        assert configuration.apply_settings(connection, same_time_lesser_id, DEFAULT) is None
    assert settings_of(engine, account) == AccountSettings(
        timedelta(minutes=10), None, bot_enabled=False
    )


def test_of_two_updates_at_the_same_instant_the_greater_event_id_wins(engine: Engine) -> None:
    account = new_id("acct")
    with engine.begin() as connection:
        lesser = settings_update(account, T0, inactivity_close_after="PT10M", event_id="s-a")
        greater = settings_update(account, T0, inactivity_close_after="PT20M", event_id="s-b")
        assert configuration.apply_settings(connection, lesser, DEFAULT) is not None
        assert configuration.apply_settings(connection, greater, DEFAULT) is not None
        assert configuration.apply_settings(connection, lesser, DEFAULT) is None
    assert settings_of(engine, account).inactivity_close_after == timedelta(minutes=20)


def test_durations_keep_their_microseconds(engine: Engine) -> None:
    account = new_id("acct")
    with engine.begin() as connection:
        configuration.apply_settings(
            connection, settings_update(account, T0, inactivity_close_after=0.000001), DEFAULT
        )
    assert settings_of(engine, account).inactivity_close_after == timedelta(microseconds=1)


def test_settings_of_one_account_never_touch_another(engine: Engine) -> None:
    alice, bob = new_id("alice"), new_id("bob")
    with engine.begin() as connection:
        configuration.apply_settings(
            connection, settings_update(alice, T0, bot_enabled=True), DEFAULT
        )
    assert settings_of(engine, bob) == DEFAULT


def test_a_line_never_configured_has_no_owner(engine: Engine) -> None:
    account = new_id("acct")
    with engine.connect() as connection:
        owners = configuration.line_owners(connection, {(account, "line-1"), (account, "line-2")})
    assert owners == {(account, "line-1"): LineOwner(), (account, "line-2"): LineOwner()}


def test_the_newest_line_update_wins(engine: Engine) -> None:
    account = new_id("acct")
    with engine.begin() as connection:
        assert configuration.apply_line(
            connection, line_update(account, T0, agent_id="olga", event_id="l-b")
        )
        assert not configuration.apply_line(
            connection, line_update(account, T0 - HOUR, group_id="sales")
        )
        assert not configuration.apply_line(
            connection, line_update(account, T0, group_id="x", event_id="l-a")
        )
        owners = configuration.line_owners(connection, {(account, "line-1")})
    assert owners == {(account, "line-1"): LineOwner(agent_id="olga")}

    with engine.begin() as connection:
        assert configuration.apply_line(connection, line_update(account, T0 + HOUR))
        owners = configuration.line_owners(connection, {(account, "line-1")})
    assert owners == {(account, "line-1"): LineOwner()}


def test_an_agent_never_configured_is_left_out_and_counts_as_active(engine: Engine) -> None:
    account = new_id("acct")
    with engine.connect() as connection:
        assert configuration.agent_states(connection, {(account, "ana")}) == {}
        assert configuration.agent_states(connection, set()) == {}


def test_the_newest_agent_update_wins(engine: Engine) -> None:
    account, other = new_id("acct"), new_id("acct")
    with engine.begin() as connection:
        assert configuration.apply_agent(connection, agent_update(account, T0, active=False))
        assert not configuration.apply_agent(
            connection, agent_update(account, T0 - HOUR, active=True)
        )
        known = configuration.agent_states(connection, {(account, "ana"), (other, "ana")})
    assert known == {(account, "ana"): Agent(active=False)}

    with engine.begin() as connection:
        assert configuration.apply_agent(connection, agent_update(account, T0 + HOUR, active=True))
        assert configuration.agent_states(connection, {(account, "ana")}) == {
            (account, "ana"): Agent(active=True)
        }


def test_many_agents_of_several_accounts_are_read_by_one_statement_whatever_their_number(
    engine: Engine,
) -> None:
    # A batch asks about every closing agent of its contacts: on PostgreSQL the statement text
    # must not grow with them (a new text each batch is parsed and planned anew).
    accounts = [new_id("acct") for _ in range(3)]
    with engine.begin() as connection:
        for n, account in enumerate(accounts):
            for agent in ("ana", f"bo-{n}"):
                parsed = parse_event(
                    event("agent.updated", account, T0, agent_id=agent, capacity=n + 1)
                )
                assert isinstance(parsed, AgentUpdated)
                assert configuration.apply_agent(connection, parsed)
        asked = {(account, agent) for account in accounts for agent in ("ana", "bo-0", "zed")}
        with statements(connection) as seen:
            few = configuration.agent_states(
                connection, {(accounts[0], "ana"), (accounts[1], "zed")}
            )
            many = configuration.agent_states(connection, asked)
    texts = [sql for sql, _ in seen]
    assert few == {(accounts[0], "ana"): Agent(capacity=1)}
    assert many == {
        (accounts[0], "ana"): Agent(capacity=1),
        (accounts[0], "bo-0"): Agent(capacity=1),
        (accounts[1], "ana"): Agent(capacity=2),
        (accounts[2], "ana"): Agent(capacity=3),
    }
    assert len(texts) == 2
    if engine.dialect.name == "postgresql":
        assert texts[0] == texts[1]
