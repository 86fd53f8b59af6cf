"""`convlife reindex` gives open conversations the deadline today's settings imply."""

from __future__ import annotations

import io
from datetime import timedelta

from service.ops import reindex
from tests.support import Service, conversation_event, new_id, utc

T0 = utc("2026-03-01T10:00:00")


def test_reindex_applies_a_new_default_to_accounts_never_configured(service: Service) -> None:
    account = new_id("acct")
    service.ingest(conversation_event("conversation.opened", account, "c1", T0), T0)
    assert service.conversation(account, "c1")[1] is None  # default: Never

    new_default = service.runtime.settings.model_copy(
        update={"default_inactivity_close_after": timedelta(hours=1)}
    )
    progress = io.StringIO()
    assert reindex(new_default, progress) >= 1

    assert service.conversation(account, "c1")[1] == T0 + timedelta(hours=1)
    assert "accounts" in progress.getvalue()
    service.runtime.settings = new_default
    [closed] = service.close_due(T0 + timedelta(hours=1), account)
    assert closed.conversation_id == "c1"
