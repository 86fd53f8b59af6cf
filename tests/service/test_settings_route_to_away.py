"""`convlife settings set --[no-]route-to-away-agents` and what `settings show` and
`conversation show` then print, on both stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from service import ops
from service.errors import UsageError
from service.settings import Settings
from tests.service.builders import T0, agent_close, opened
from tests.service.commands import run
from tests.support import Service, event, new_id


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What `settings set` publishes, kept here instead of sent (the test ingests it)."""
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(ops, "publish", lambda event, **_: sent.append(event))
    return sent


def test_settings_set_no_route_to_away_agents_sends_only_that_field_and_show_prints_it(
    service: Service,
    settings: Settings,
    published: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    account = new_id("acct")
    code, _ = run(settings, capsys, "settings", "set", account, "--no-route-to-away-agents")
    [sent] = published
    service.ingest(sent, datetime.now(UTC))

    _, text = run(settings, capsys, "settings", "show", account)
    _, shown = run(settings, capsys, "settings", "show", account, "--json")

    assert code == 0
    assert sent["route_to_away_agents"] is False
    assert not {"inactivity_close_after", "reassignment_window", "bot_enabled"} & set(sent)
    assert "  route to away agents: no\n" in text
    assert json.loads(shown)["route_to_away_agents"] is False


def test_an_account_never_configured_routes_to_away_agents(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    _, text = run(settings, capsys, "settings", "show", new_id("acct"))
    assert "  route to away agents: yes\n" in text


def test_route_to_away_agents_turns_back_on_with_the_positive_flag(
    service: Service,
    settings: Settings,
    published: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    account = new_id("acct")
    run(settings, capsys, "settings", "set", account, "--no-route-to-away-agents")
    run(settings, capsys, "settings", "set", account, "--route-to-away-agents", "--bot", "on")
    off, on = published
    # Dated apart, so that the newer one wins whatever the clock's resolution.
    off["occurred_at"] = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    service.ingest([off, on], datetime.now(UTC))

    _, shown = run(settings, capsys, "settings", "show", account, "--json")

    assert (json.loads(shown)["route_to_away_agents"], json.loads(shown)["bot_enabled"]) == (
        True,
        True,
    )


def test_conversation_show_says_whether_the_account_routes_to_away_agents(
    service: Service,
    settings: Settings,
    published: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    account = new_id("acct")
    run(settings, capsys, "settings", "set", account, "--no-route-to-away-agents")
    service.ingest(published, datetime.now(UTC))
    service.ingest(opened(account), T0)

    code, out = run(settings, capsys, "conversation", "show", account, "c1")

    assert code == 0
    assert "bot off, close warning none, route to away agents no" in out


def test_conversation_show_says_whether_the_closing_agent_could_take_the_contact_back(
    service: Service, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    account = new_id("acct")
    agent = "ana"
    service.ingest(
        [
            opened(account, "c1", agent_id=agent),
            opened(account, "c2", agent_id=agent, contact_id="contact-2"),
            agent_close(account, T0 + timedelta(minutes=1), agent=agent),
        ],
        T0 + timedelta(minutes=1),
    )

    _, available = run(settings, capsys, "conversation", "show", account, "c1")
    service.ingest(
        event("agent.updated", account, T0 + timedelta(minutes=2), agent_id=agent, capacity=1),
        T0 + timedelta(minutes=2),
    )
    _, full = run(settings, capsys, "conversation", "show", account, "c1")

    assert (
        "  closing agent ana: active, online, 1 open, no limit; available to take the contact "
        "back\n"
    ) in available
    assert (
        "  closing agent ana: active, online, 1 open, capacity 1; not available now (agent ana "
        "has 1 of 1 conversations open)\n"
    ) in full


def test_settings_set_sends_the_warning_the_business_hours_and_how_the_window_counts(
    service: Service,
    settings: Settings,
    published: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    account = new_id("acct")
    hours = tmp_path / "hours.json"
    hours.write_text(
        json.dumps({"timezone": "Europe/Berlin", "weekly": {"mon": [["09:00", "17:00"]]}})
    )
    argv = ["settings", "set", account, "--warn-before", "PT5M", "--business-hours", str(hours)]
    code, _ = run(settings, capsys, *argv, "--window-counts-business-hours")
    [sent] = published
    service.ingest(sent, datetime.now(UTC))
    run(settings, capsys, "settings", "set", account, "--business-hours", "none")

    assert code == 0
    assert sent["close_warning_before"] == "PT5M"
    assert sent["business_hours"]["timezone"] == "Europe/Berlin"
    assert sent["window_counts_business_hours"] is True
    assert "inactivity_close_after" not in sent
    assert published[1]["business_hours"] is None  # none: every hour counts again
    shown = ops.account_view(settings, account).settings
    assert shown.close_warning_before == timedelta(minutes=5)
    assert shown.business_hours is not None
    assert shown.window_counts_business_hours is True


def test_settings_set_refuses_a_business_hours_file_it_cannot_use(
    settings: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "hours.json"
    bad.write_text(json.dumps({"timezone": "Mars/Olympus", "weekly": {}}))
    with pytest.raises(UsageError, match="timezone"):
        run(settings, capsys, "settings", "set", new_id("acct"), "--business-hours", str(bad))
