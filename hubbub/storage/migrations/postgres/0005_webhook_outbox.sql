-- Webhooks: the outbox of events to POST to HUBBUB_WEBHOOK_URL, and the one row the
-- sender keeps its lease and its message.undelivered scan in.
--
-- An outbox row is written in the same transaction as what it reports (a message batch:
-- in its one statement, hubbub/storage/pg_batch.py), and only while webhooks are
-- configured. It names what it is about; the event's data is rendered from that when it
-- is sent (hubbub/webhooks/payload.py).

CREATE TABLE webhook_outbox (
    -- Enqueue order.
    seq bigserial PRIMARY KEY,
    -- The id receivers see (and de-duplicate by): random, except message.undelivered's,
    -- derived from the message, so that the scan enqueues it once.
    event_id text NOT NULL,
    type text NOT NULL CHECK (type IN ('message.created', 'message.edited',
        'message.deleted', 'message.undelivered', 'user.online', 'user.offline',
        'group.member_added', 'group.member_removed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- What it is about: a message (its kind and id, and its group), or a user and a group.
    message_kind text CHECK (message_kind IN ('direct', 'group')),
    message_id bigint,
    group_id bigint,
    user_id bigint,
    -- The facts of the moment, JSON, added to the data (message.deleted: deleted_by).
    facts text NOT NULL DEFAULT '{}',
    -- pending until a 2xx answer (delivered), or an attempt past the retry horizon
    -- failed (failed).
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    finished_at timestamptz
);
CREATE UNIQUE INDEX webhook_outbox_event_id_key ON webhook_outbox (event_id);
-- The sender's queue: pending rows by when they are due. Partial, so it is as small as
-- the backlog, and a finished row leaves it.
CREATE INDEX webhook_outbox_due_idx ON webhook_outbox (next_attempt_at, seq)
    WHERE state = 'pending';
-- Finished rows are swept by age.
CREATE INDEX webhook_outbox_finished_idx ON webhook_outbox (finished_at)
    WHERE state <> 'pending';

CREATE TABLE webhook_sender (
    -- One row, and only one.
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    -- The node that sends, and until when unless it renews: another node takes over
    -- once the lease has lapsed (its holder died).
    holder text,
    lease_until timestamptz,
    -- message.undelivered: every direct message event up to this stream position has
    -- been checked. NULL until webhooks first start, which set it to the stream head
    -- (messages of before are never reported).
    scanned_through bigint
);
INSERT INTO webhook_sender DEFAULT VALUES;
