"""What the ops commands print: stored text came from upstream, so no control character reaches
the operator's terminal raw; dead letters by account; decisions exported from the database; a
replay never moves an event into another account. On both stores."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import ColumnElement, select

from service import ops
from service.errors import UsageError
from service.settings import Settings
from store import outbox
from store.tables import dead_letters
from tests.service.builders import T0, agent_close, inbound, minutes, opened
from tests.service.commands import run
from tests.support import Service, new_id

RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""Control characters, the newline that ends each printed line excepted."""

HOSTILE = "\x1b[2J\x1b]0;owned\x07\nFORGED\u2028\x9b"


def test_conversation_show_prints_hostile_ids_and_reasons_with_visible_escapes(
    service: Service, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    account = new_id("acct")
    conversation = f"c{HOSTILE}x"
    service.ingest(
        [
            opened(account, conversation, agent_id=f"ana{HOSTILE}"),
            agent_close(
                account, T0 + minutes(1), reason=f"done{HOSTILE}", conversation=conversation
            ),
        ],
        T0,
    )

    code, out = run(settings, capsys, "conversation", "show", account, conversation)

    assert code == 0
    assert RAW_CONTROL.search(out) is None
    assert "FORGED" in out
    assert not any(line.startswith("FORGED") for line in out.splitlines())
    assert "c\\x1b[2J\\x1b]0;owned\\x07\\x0aFORGED\\u2028\\x9bx" in out


def test_conversation_show_of_an_unknown_hostile_id_prints_it_escaped(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(settings, capsys, "conversation", "show", "acct", HOSTILE)
    assert code == 1
    assert RAW_CONTROL.search(out) is None
    assert out.count("\n") == 1


def test_settings_show_prints_a_hostile_account_id_escaped(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(settings, capsys, "settings", "show", f"acct{HOSTILE}")
    assert code == 0
    assert RAW_CONTROL.search(out) is None
    code, out = run(settings, capsys, "settings", "show", "--json", f"acct{HOSTILE}")
    assert code == 0
    assert RAW_CONTROL.search(out) is None
    assert json.loads(out)["account_id"] == f"acct{HOSTILE}"


def test_dead_letters_list_shows_one_accounts_dead_letters_with_their_reason_escaped(
    service: Service, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    account, other = new_id(f"acct{HOSTILE}"), new_id("acct")
    service.ingest(
        [
            {**inbound(account, T0), "type": f"nope{HOSTILE}"},
            {**inbound(account, T0), "line_id": None, "note": HOSTILE},
            f'{{"account_id": "{other}", oops',
        ],
        T0,
    )

    code, out = run(settings, capsys, "dead-letters", "list", "--account", account)

    assert code == 0
    assert RAW_CONTROL.search(out) is None
    listed = [json.loads(line) for line in out.split("\n") if line]
    assert [(d["account_id"], d["reason"]) for d in listed] == [
        (account, "unknown_type"),
        (account, "invalid_field"),
    ]
    _, out = run(settings, capsys, "dead-letters", "list", "--account", other)
    assert [json.loads(line)["reason"] for line in out.splitlines()] == ["not_json"]


def test_decisions_export_prints_the_accounts_decisions_from_the_database_oldest_first(
    service: Service, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    account = new_id("acct")
    service.ingest([inbound(account, T0, contact=f"k{n}") for n in range(3)], T0)
    service.ingest([inbound(account, T0, contact="late")], T0 + minutes(10))
    stored = service.decisions(account)

    code, out = run(
        settings,
        capsys,
        "decisions",
        "export",
        "--since",
        "2026-03-01T10:00:00Z",
        "--account",
        account,
    )
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == stored

    _, out = run(
        settings,
        capsys,
        "decisions",
        "export",
        "--account",
        account,
        "--since",
        "2026-03-01T11:00:00+01:00",
        "--until",
        "2026-03-01T10:05:00",
    )
    assert sorted(json.loads(line)["contact_id"] for line in out.splitlines()) == ["k0", "k1", "k2"]


def test_decisions_export_without_since_is_a_usage_error(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UsageError, match="export needs --since"):
        run(settings, capsys, "decisions", "export")


def dead_letter_id(service: Service, where: ColumnElement[bool]) -> int:
    """The id of the one dead letter `where` picks."""
    with service.runtime.engine.connect() as connection:
        return int(connection.execute(select(dead_letters.c.id).where(where)).scalar_one())


def dead_letter_of(service: Service, account: str, payload: Any) -> int:
    service.ingest([payload], T0)
    return dead_letter_id(service, dead_letters.c.account_id == account)


def test_a_replay_refuses_a_fixed_event_of_another_account(
    service: Service, settings: Settings
) -> None:
    account = new_id("acct")
    broken = {**inbound(account, T0), "line_id": None}
    letter = dead_letter_of(service, account, broken)
    fixed = {**broken, "line_id": "sales", "account_id": new_id("victim")}

    with pytest.raises(ValueError, match="a replay stays in its account"):
        ops.dead_letters_replay(settings, letter, json.dumps(fixed))


def test_a_replay_of_a_dead_letter_without_an_account_takes_any_account(
    service: Service, settings: Settings
) -> None:
    marker = new_id("raw")
    with service.runtime.engine.begin() as connection:
        outbox.add_dead_letter(connection, raw=marker, error="not JSON: x", received_at=T0)
    letter = dead_letter_id(service, dead_letters.c.raw == marker)
    fixed = {**inbound(new_id("acct"), T0), "line_id": "sales"}

    assert ops.dead_letters_replay(settings, letter, json.dumps(fixed)) == fixed["event_id"]
