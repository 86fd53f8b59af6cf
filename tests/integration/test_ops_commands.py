"""The ops commands against a running service: settings set, dead letters replayed, reindex."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tests.integration.conftest import Service
from tests.processes import run_convlife, wait_until
from tests.support import event, new_id


def env_of(service: Service, **extra: str) -> dict[str, str]:
    return {
        "CONVLIFE_BROKER_URL": service.broker_url,
        "CONVLIFE_DATABASE_URL": service.database_url,
        **extra,
    }


def test_settings_set_goes_through_ingest_and_settings_show_reads_it(service: Service) -> None:
    account = new_id("acct")
    done = run_convlife(
        [
            *("settings", "set", account, "--close-after", "P7D", "--window", "PT24H"),
            *("--bot", "on", "--no-route-to-away-agents"),
        ],
        env_of(service),
    )
    assert done.returncode == 0, done.stdout + done.stderr

    def shown() -> dict:
        shown = run_convlife(["settings", "show", account, "--json"], env_of(service))
        return json.loads(shown.stdout)

    wait_until(lambda: shown()["bot_enabled"], 10, "the settings to be applied")
    assert shown() == {
        "account_id": account,
        "inactivity_close_after": "P7D",
        "reassignment_window": "P1D",
        "bot_enabled": True,
        "route_to_away_agents": False,
        "close_warning_before": None,
        "business_hours": None,
        "window_counts_business_hours": False,
        "source": "set for this account (account.settings_updated)",
        "store": service.database_url,  # no password in the test URLs: nothing masked
        "lines": {},  # no line overrides a setting
    }


def test_a_bad_duration_is_refused_before_anything_is_sent(service: Service) -> None:
    done = run_convlife(["settings", "set", "acct", "--close-after", "soon"], env_of(service))
    assert done.returncode == 2
    assert "argument --close-after: 'soon' is not a valid duration" in done.stderr


def test_a_dead_letter_is_replayed_after_it_is_fixed(service: Service, tmp_path) -> None:  # type: ignore[no-untyped-def]
    account = new_id("acct")
    broken = event("contact.inbound", account, datetime.now(UTC), line_id="sales")  # no contact
    since = service.stream_position()
    service.publish(broken)

    def listed() -> list[dict]:
        out = run_convlife(["dead-letters", "list", "--limit", "200"], env_of(service)).stdout
        return [d for d in map(json.loads, out.splitlines()) if d["event_id"] == broken["event_id"]]

    wait_until(lambda: bool(listed()), 10, "the dead letter")
    [letter] = listed()
    assert letter["error"].startswith("contact_id")
    still_broken = run_convlife(["dead-letters", "replay", str(letter["id"])], env_of(service))
    assert still_broken.returncode == 1
    assert "still not a valid event" in still_broken.stdout

    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps({**broken, "contact_id": "maria"}))
    done = run_convlife(["dead-letters", "replay", str(letter["id"]), str(fixed)], env_of(service))
    assert done.returncode == 0, done.stdout + done.stderr

    [routed] = service.decisions(since, account, count=1, timeout=10)
    assert (routed["inbound_event_id"], routed["contact_id"]) == (broken["event_id"], "maria")
    assert listed()[0]["replayed_at"] is not None
