"""The tables. Every key starts with `account_id`: nothing of one account can touch another's."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    Interval,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
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
)

agents = Table(
    "agents",
    metadata,
    Column("account_id", ID, primary_key=True),
    Column("agent_id", ID, primary_key=True),
    Column("active", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_event_id", ID, nullable=False, server_default=""),
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
    # When the sweep must look at it; NULL when it never closes. Derived from last activity and
    # the account setting, kept as a column so that finding due work costs O(due), not O(open).
    Column("close_due_at", UTCDateTime, nullable=True),
    Index("ix_conversations_contact_line", "account_id", "contact_id", "line_id"),
    Index(
        "ix_conversations_close_due_at",
        "close_due_at",
        postgresql_where=text("close_due_at IS NOT NULL"),
        sqlite_where=text("close_due_at IS NOT NULL"),
    ),
)

processed_events = Table(
    "processed_events",
    metadata,
    Column("account_id", ID, primary_key=True),
    Column("event_id", ID, primary_key=True),
    Column("processed_at", UTCDateTime, nullable=False),
    Index("ix_processed_events_processed_at", "processed_at"),
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
    Column("published_at", UTCDateTime, nullable=True),
    Index("ix_decisions_conversation", "account_id", "conversation_id"),
    Index("ix_decisions_decided_at", "decided_at", "decision_id"),  # export, page by page
    Index(
        "ix_decisions_unpublished",
        "decided_at",
        postgresql_where=text("published_at IS NULL"),
        sqlite_where=text("published_at IS NULL"),
    ),
)

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
