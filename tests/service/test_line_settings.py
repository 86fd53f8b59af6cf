"""Per-line settings: a line's overrides decide its conversations' deadlines and routing, a
change of them reschedules the line's open conversations, and an account's change leaves alone
what a line decides. Each test runs on SQLite and PostgreSQL; every `now` is chosen.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from service.settings import Settings
from tests.service.builders import T0, account_with, inbound, minutes, opened, routed, µs
from tests.service.commands import run as run_command
from tests.support import Service, event, settings_event


def line_update(account: str, line: str, at: datetime, **overrides: Any) -> dict[str, Any]:
    """A whole line: what `overrides` leaves out inherits the account's value."""
    return event("line.updated", account, at, line_id=line, **overrides)


def due_of(service: Service, account: str, conversation: str) -> datetime | None:
    _, due = service.conversation(account, conversation)
    return due  # type: ignore[no-any-return]


def test_a_line_with_its_own_close_setting_closes_its_conversations_while_the_others_stay_open(
    service: Service,
) -> None:
    account = account_with(service, close_after="P1D")
    service.ingest(
        line_update(account, "fast", T0 - minutes(1), inactivity_close_after="PT30M"), T0
    )
    service.ingest([opened(account, "c1", line_id="fast"), opened(account, "c2")], T0)

    assert service.close_due(T0 + minutes(30) - µs, account) == []
    [closed] = service.close_due(T0 + minutes(30), account)

    assert closed.conversation_id == "c1"
    assert closed.reason == (
        "no action for 30m; line fast closes conversations after 30m without action"
    )
    assert due_of(service, account, "c2") == T0 + minutes(24 * 60)


def test_an_auto_close_under_the_accounts_setting_says_the_account_closes(
    service: Service,
) -> None:
    account = account_with(service, close_after="PT30M")
    service.ingest(line_update(account, "line-1", T0 - minutes(1), bot_enabled=True), T0)
    service.ingest(opened(account), T0)

    [closed] = service.close_due(T0 + minutes(30), account)

    assert closed.reason.endswith("; the account closes conversations after 30m without action")


def test_a_line_override_of_null_never_closes_and_an_absent_one_inherits_the_account(
    service: Service,
) -> None:
    account = account_with(service, close_after="PT30M")
    service.ingest(
        [
            line_update(account, "never", T0 - minutes(1), inactivity_close_after=None),
            line_update(account, "inherits", T0 - minutes(1), agent_id="ana"),
        ],
        T0,
    )
    service.ingest(
        [opened(account, "c1", line_id="never"), opened(account, "c2", line_id="inherits")], T0
    )

    assert due_of(service, account, "c1") is None
    assert due_of(service, account, "c2") == T0 + minutes(30)


def test_a_line_update_earlier_in_the_same_batch_applies_to_the_batchs_conversations(
    service: Service,
) -> None:
    account = account_with(service, close_after="PT1H")
    service.ingest(
        [
            opened(account, "c1", line_id="fast"),
            line_update(account, "fast", T0 - minutes(1), inactivity_close_after="PT10M"),
        ],
        T0,
    )

    assert due_of(service, account, "c1") == T0 + minutes(10)


def test_changing_a_lines_override_reschedules_its_open_conversations_and_no_others(
    service: Service,
) -> None:
    account = account_with(service, close_after="PT1H")
    service.ingest(
        [opened(account, "c1", line_id="fast"), opened(account, "c2", line_id="other")], T0
    )

    service.ingest(
        line_update(account, "fast", T0 + minutes(1), inactivity_close_after="PT10M"),
        T0 + minutes(1),
    )
    assert due_of(service, account, "c1") == T0 + minutes(10)
    assert due_of(service, account, "c2") == T0 + minutes(60)

    # Each update is the whole line: leaving the setting out gives the account's back.
    service.ingest(line_update(account, "fast", T0 + minutes(2)), T0 + minutes(2))
    assert due_of(service, account, "c1") == T0 + minutes(60)


def test_an_account_change_leaves_the_deadlines_a_line_decides_and_moves_the_rest(
    service: Service,
) -> None:
    account = account_with(service, close_after="PT1H")
    service.ingest(
        [
            line_update(account, "fast", T0 - minutes(1), inactivity_close_after="PT10M"),
            line_update(account, "warned", T0 - minutes(1), close_warning_before="PT5M"),
        ],
        T0,
    )
    service.ingest(
        [
            opened(account, "c1", line_id="fast"),
            opened(account, "c2", line_id="warned"),
            opened(account, "c3"),
        ],
        T0,
    )

    service.ingest(settings_event(account, T0 + minutes(1), close_after="PT2H"), T0 + minutes(1))

    assert due_of(service, account, "c1") == T0 + minutes(10)
    # The line overrides another setting its deadlines depend on: its close still inherits,
    # and its next check is its own warning, 5 minutes before that close.
    assert due_of(service, account, "c2") == T0 + minutes(120 - 5)
    assert due_of(service, account, "c3") == T0 + minutes(120)


def test_a_new_contact_on_a_line_with_its_own_bot_setting_is_routed_by_it_and_told_why(
    service: Service,
) -> None:
    account = account_with(service, close_after="PT1H", bot=False)
    service.ingest(
        line_update(account, "line-1", T0 - minutes(1), bot_enabled=True, reassignment_window=None),
        T0,
    )

    service.ingest(inbound(account, T0), T0)

    decision = routed(service, account)
    assert decision["route"] == "bot"
    assert decision["reason"] == (
        "new contact (no earlier conversation on this line); the bot of line line-1 is on"
    )


def run(settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """What the command printed; it must succeed."""
    code, out = run_command(settings, capsys, *argv)
    assert code == 0
    return out


def test_settings_show_lists_each_line_that_overrides_settings_and_what_it_overrides(
    service: Service, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    account = account_with(service, close_after="PT1H")
    service.ingest(
        [
            line_update(account, "fast", T0, inactivity_close_after="PT10M", bot_enabled=None),
            line_update(account, "plain", T0, agent_id="ana"),
        ],
        T0,
    )

    text = run(settings, capsys, "settings", "show", account)
    shown = json.loads(run(settings, capsys, "settings", "show", account, "--json"))

    assert "    line fast: bot off, close after 10m\n" in text
    assert "plain" not in text
    assert shown["lines"] == {"fast": {"bot_enabled": False, "inactivity_close_after": "PT10M"}}


def test_conversation_show_says_which_settings_apply_and_whether_the_line_or_the_account_set_them(
    service: Service, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    account = account_with(service, close_after="PT1H", window="P1D")
    service.ingest(line_update(account, "fast", T0, inactivity_close_after="PT10M"), T0)
    service.ingest([opened(account, "c1", line_id="fast"), opened(account, "c2")], T0)

    on_fast = run(settings, capsys, "conversation", "show", account, "c1")
    elsewhere = run(settings, capsys, "conversation", "show", account, "c2")

    assert (
        "  settings (line fast overrides some): close after 10m (line), "
        "reassignment window 1d (account), bot off (account), close warning none (account), "
        "route to away agents yes (account), every hour counts (account)\n"
    ) in on_fast
    assert "closes at 2026-03-01T10:10:00+00:00" in on_fast
    assert (
        "  account settings: close after 1h, reassignment window 1d, bot off, close warning none, "
        "route to away agents yes, every hour counts\n"
    ) in elsewhere
