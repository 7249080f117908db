-- Webhooks: the outbox of events to POST to HUBBUB_WEBHOOK_URL, and the one row the
-- sender keeps its lease and its message.undelivered scan in.
-- The same schema as PostgreSQL's 0005; timestamps are INTEGER microseconds. An outbox
-- row is written in the write transaction (BEGIN IMMEDIATE) of what it reports, and only
-- while webhooks are configured.

CREATE TABLE webhook_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('message.created', 'message.edited',
        'message.deleted', 'message.undelivered', 'user.online', 'user.offline',
        'group.member_added', 'group.member_removed')),
    created_at INTEGER NOT NULL,
    message_kind TEXT CHECK (message_kind IN ('direct', 'group')),
    message_id INTEGER,
    group_id INTEGER,
    user_id INTEGER,
    facts TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    finished_at INTEGER
) STRICT;
CREATE UNIQUE INDEX webhook_outbox_event_id_key ON webhook_outbox (event_id);
CREATE INDEX webhook_outbox_due_idx ON webhook_outbox (next_attempt_at, seq)
    WHERE state = 'pending';
CREATE INDEX webhook_outbox_finished_idx ON webhook_outbox (finished_at)
    WHERE state <> 'pending';

CREATE TABLE webhook_sender (
    only_row INTEGER PRIMARY KEY DEFAULT 1 CHECK (only_row = 1),
    holder TEXT,
    lease_until INTEGER,
    scanned_through INTEGER
) STRICT;
INSERT INTO webhook_sender DEFAULT VALUES;
