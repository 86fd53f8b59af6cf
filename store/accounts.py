"""Which accounts the store holds work for (what `convlife reindex` walks)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from policies.state import Status
from store.tables import conversations


def accounts_with_open_conversations(connection: Connection) -> list[str]:
    """Every account with at least one open conversation, sorted."""
    rows = connection.execute(
        select(conversations.c.account_id)
        .where(conversations.c.status == Status.OPEN.value)
        .group_by(conversations.c.account_id)
        .order_by(conversations.c.account_id)
    )
    return [account_id for (account_id,) in rows]
