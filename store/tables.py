"""The tables. Every key starts with `account_id`: nothing of one account can touch another's."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    Interval,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
    true,
)

from store.db import UTCDateTime

metadata = MetaData()

ID = String(200)

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", ID, primary_key=True),
    Column("inactivity_close_after", Interval, nullable=True),
    Column("reassignment_window", Interval, nullable=True),
    Column("bot_enabled", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_event_id", ID, nullable=False, server_default=""),
    # The rules of issue 13 (migration 0008).
    Column("close_warning_before", Interval, nullable=True),
    Column("business_hours", Text, nullable=True),  # events.business_hours JSON; NULL: all hours
    Column("route_to_away_agents", Boolean, nullable=False, server_default=true()),
    Column("window_counts_business_hours", Boolean, nullable=False, server_default=false()),
)

lines = Table(
    "lines",
    metadata,
    Column("account_id", ID, primary_key=True),
    Column("line_id", ID, primary_key=True),
    Column("owner_agent_id", ID, nullable=True),
    Column("owner_group_id", ID, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_event_id", ID, nullable=False, server_default=""),
    # The settings the line overrides, as a JSON object of only those (NULL: none): absent and
    # null must stay apart, which one nullable column per setting could not do.
    Column("overrides", Text, nullable=True),
)

agents = Table(
    "agents",
    metadata,
    Column("account_id", ID, primary_key=True),
    Column("agent_id", ID, primary_key=True),
    Column("active", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_event_id", ID, nullable=False, server_default=""),
    Column("presence", String(8), nullable=False, server_default="online"),
    Column("capacity", Integer, nullable=True),  # NULL: no limit
)

conversations = Table(
    "conversations",
    metadata,
    Column("account_id", ID, primary_key=True),
    Column("conversation_id", ID, primary_key=True),
    Column("contact_id", ID, nullable=False),
    Column("line_id", ID, nullable=False),
    Column("status", String(8), nullable=False),
    Column("last_activity_at", UTCDateTime, nullable=False),
    Column("status_changed_at", UTCDateTime, nullable=True),
    Column("assignee_agent_id", ID, nullable=True),
    Column("assignee_group_id", ID, nullable=True),
    Column("assignee_bot", Boolean, nullable=False),
    Column("assigned_at", UTCDateTime, nullable=True),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("closed_by", String(8), nullable=True),
    Column("closing_agent_id", ID, nullable=True),
    Column("close_reason", String(500), nullable=True),
    # True while the status is the sweep's automatic close (see policies.state.Conversation).
    Column("auto_closed", Boolean, nullable=False, server_default=false()),
    # When convlife warned that the current idle period ends in a close (migration 0008).
    Column("close_warned_at", UTCDateTime, nullable=True),
    # What the current open replaced (see policies.state.Conversation): routing reads it.
    Column("previous_closed_at", UTCDateTime, nullable=True),
    Column("previous_closed_by", String(8), nullable=True),
    Column("previous_closing_agent_id", ID, nullable=True),
    Column("previous_close_reason", String(500), nullable=True),
    Column("previous_opened_at", UTCDateTime, nullable=True),
    # When the sweep must look at it; NULL when it never closes. Derived from last activity and
    # the account setting, kept as a column so that finding due work costs O(due), not O(open).
    Column("close_due_at", UTCDateTime, nullable=True),
    Index("ix_conversations_contact_line", "account_id", "contact_id", "line_id"),
    # Capacity: how many open conversations an agent has, counted without a scan.
    Index(
        "ix_conversations_open_by_agent",
        "account_id",
        "assignee_agent_id",
        postgresql_where=text("status = 'open'"),
        sqlite_where=text("status = 'open'"),
    ),
    # Settings preview and per-line rescheduling: an account's (or a line's) open
    # conversations by last activity, counted from the index alone.
    # Per-line rescheduling: a line's open conversations, in id order, without reading the
    # account's others.
    Index(
        "ix_conversations_open_line",
        "account_id",
        "line_id",
        "conversation_id",
        postgresql_where=text("status = 'open'"),
        sqlite_where=text("status = 'open'"),
    ),
    Index(
        "ix_conversations_open_activity",
        "account_id",
        "last_activity_at",
        "line_id",
        postgresql_where=text("status = 'open'"),
        sqlite_where=text("status = 'open'"),
    ),
    Index(
        "ix_conversations_close_due_at",
        "close_due_at",
        postgresql_where=text("close_due_at IS NOT NULL"),
        sqlite_where=text("close_due_at IS NOT NULL"),
    ),
)

# Open conversations that a settings change made due at once, left with their old next check
# instead of being rewritten one by one before the sweep closes them (a row per account, or per
# line of an account; `line_id` '' for the account's own scope, which leaves out the lines that
# override its deadline settings). The sweep claims them by last activity, as the settings now
# in force make them due, and deletes the row once none is left (service/deadlines.py).
due_scans = Table(
    "due_scans",
    metadata,
    Column("account_id", ID, primary_key=True),
    Column("line_id", ID, primary_key=True),
    Column("since", UTCDateTime, nullable=False),
    # The sweep reads the oldest scans in a transaction that disables sorts (its claim's plan):
    # a sort there is priced so high that PostgreSQL JIT-compiles the statement, 14 ms a batch.
    Index("ix_due_scans_since", "since"),
)

SQLITE_ONLY_INDEX = "ix_processed_events_processed_at"
"""Declared for SQLite only (`ddl_if`), which schema comparisons do not heed: see `declared_in`."""

processed_events = Table(
    "processed_events",
    metadata,
    Column("account_id", ID, primary_key=True),
    Column("event_id", ID, primary_key=True),
    # The UTC day the event occurred (migration 0010). In the key because PostgreSQL partitions
    # the table by it and a partitioned table's key must hold its partition key; a redelivery
    # carries the same occurred_at, so it meets its first delivery in the same partition. SQLite
    # has the same key (one behaviour on both stores) and no partitions.
    Column("occurred_on", Date, primary_key=True),
    Column("processed_at", UTCDateTime, nullable=False),
    # Retention's order. On PostgreSQL only the DEFAULT partition is pruned by it (the day
    # partitions are dropped whole), and only it has the index (migration 0014).
    Index(SQLITE_ONLY_INDEX, "processed_at").ddl_if(dialect="sqlite"),
    postgresql_partition_by="RANGE (occurred_on)",
)

decisions = Table(
    "decisions",
    metadata,
    Column("decision_id", String(36), primary_key=True),
    Column("type", String(40), nullable=False),
    Column("account_id", ID, nullable=False),
    Column("conversation_id", ID, nullable=True),
    Column("contact_id", ID, nullable=False),
    Column("decided_at", UTCDateTime, nullable=False),
    Column("data", Text, nullable=False),
    Index("ix_decisions_conversation", "account_id", "conversation_id"),
    Index("ix_decisions_decided_at", "decided_at", "decision_id"),  # export, page by page
)


def _outbox(name: str) -> Table:
    """An outbox of decisions: one row per transaction that stored any (a batch of up to a
    message's or a sweep batch's decisions), made in that transaction, deleted by the consumer
    that took it. A row per batch, not a flag per decision: marking each decision was an UPDATE
    of the wide row (and of every index on it) per decision."""
    return Table(
        name,
        metadata,
        Column("first_decision_id", String(36), primary_key=True),  # the least id of the batch
        Column("decision_ids", Text, nullable=False),  # a JSON array
        Column("size", Integer, nullable=False),
        Column("made_at", UTCDateTime, nullable=False),
        Index(f"ix_{name}_made_at", "made_at"),
    )


# The decisions not yet on the stream, deleted by the relay that sends them (store/outbox.py;
# marking each decision published was a fifth of the database's time per routed inbound).
decision_outbox = _outbox("decision_outbox")

# The decisions the webhook fan-out has not yet made delivery rows for, deleted by the fan-out
# (store/webhooks.py): a decision committed just before a crash is fanned out by the next
# dispatch run. It replaced a mark per decision (migration 0012), which every dispatch run made
# for every decision, subscriptions or not, and whose partial index every decision insert wrote.
webhook_outbox = _outbox("webhook_outbox")

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("account_id", ID, nullable=True),
    Column("event_id", ID, nullable=True),
    Column("error", Text, nullable=False),
    Column("raw", Text, nullable=False),
    Column("published_at", UTCDateTime, nullable=True),
    Column("replayed_at", UTCDateTime, nullable=True),
    Column("reason", String(16), nullable=True),  # events.parsing.ReasonCode
    Index("ix_dead_letters_account", "account_id", "id"),
    Index(
        "ix_dead_letters_unpublished",
        "id",
        postgresql_where=text("published_at IS NULL"),
        sqlite_where=text("published_at IS NULL"),
    ),
)

# --- webhooks (store/webhooks.py) ------------------------------------------------------------

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("url", Text, nullable=False),
    Column("account_id", ID, nullable=True),  # NULL: every account
    Column("types", Text, nullable=True),  # comma-separated decision types; NULL: all
    # Kept in clear: the dispatcher must sign with it. Protected like the rest of the database.
    Column("secret", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # The circuit breaker: failures in a row, and until when the endpoint rests (NULL: active).
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("paused_until", UTCDateTime, nullable=True),
    # `webhook`: decisions POSTed signed to `url`; `chatwoot`: decisions become Chatwoot API
    # calls on the Chatwoot at `url`, with `secret` as its api_access_token (migration 0007).
    Column("kind", String(20), nullable=False, server_default="webhook"),
    # Why the circuit is open, when it is more than failures: `unauthorized` (a Chatwoot 401)
    # until a success clears it; `convlife health` reports it.
    Column("paused_reason", Text, nullable=True),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "subscription_id",
        Integer,
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("decision_id", String(36), nullable=False),
    # pending (not tried yet), failed (last try failed; retried at next_attempt_at),
    # delivered (a 2xx; final), given_up (the horizon passed; final).
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    # Set while a dispatcher has a request in flight; it fences a late answer (see store).
    Column("leased_until", UTCDateTime, nullable=True),
    Column("first_attempt_at", UTCDateTime, nullable=True),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ux_webhook_deliveries_once", "subscription_id", "decision_id", unique=True),
    Index(
        "ix_webhook_deliveries_due",
        "subscription_id",
        "next_attempt_at",
        postgresql_where=text("status IN ('pending', 'failed')"),
        sqlite_where=text("status IN ('pending', 'failed')"),
    ),
    Index(
        "ix_webhook_deliveries_in_flight",
        "subscription_id",
        postgresql_where=text("leased_until IS NOT NULL"),
        sqlite_where=text("leased_until IS NOT NULL"),
    ),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "delivery_id",
        Integer,
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_webhook_attempts_delivery", "delivery_id"),
)


_PARTITION = re.compile(r"^processed_events_(p\d{8}|default)$")


def declared_in(dialect: str) -> Callable[..., bool]:
    """Alembic's `include_object` for a database of `dialect`: an index declared for SQLite only
    is not expected elsewhere (alembic compares it whatever its `ddl_if` says)."""

    def included(item: object, name: str | None, type_: str, *_: object) -> bool:
        return not (type_ == "index" and name == SQLITE_ONLY_INDEX and dialect != "sqlite")

    return included


def declared(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's `include_name`: the partitions of `processed_events` are made and dropped at run
    time (store/idempotency.py), so schema comparisons leave them out."""
    return not (type_ == "table" and name is not None and _PARTITION.match(name))
