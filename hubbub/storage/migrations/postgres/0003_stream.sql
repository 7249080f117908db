-- v2: the stream (every event a user's connections can miss, in commit order), rich
-- messages (reply, edit, deletion, reactions) and the conversation list with its counters.
--
-- Positions are handed out in commit order: a transaction that appends events takes them
-- from stream_head (UPDATE ... SET position = position + n) after every other row lock it
-- needs, so the row lock on stream_head, held until the commit, makes concurrent writers
-- take turns (see hubbub/storage/pg_batch.py and sql.py).

CREATE TABLE stream_head (
    -- One row, and only one.
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    -- Names this database's stream: a cursor of another epoch is unknown. 12 lowercase hex.
    epoch text NOT NULL CHECK (epoch ~ '^[0-9a-z]{1,32}$'),
    -- The newest committed position (0: nothing yet).
    position bigint NOT NULL DEFAULT 0,
    -- The newest position deleted by retention.
    swept_through bigint NOT NULL DEFAULT 0
);
INSERT INTO stream_head (epoch)
    VALUES (substr(md5(random()::text || clock_timestamp()::text), 1, 12));

CREATE TABLE stream_events (
    position bigint PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('message', 'group_message', 'message_edited',
        'message_deleted', 'reaction', 'read_receipt', 'group_read', 'status')),
    -- The direct audience: author and recipient (read_receipt, status: the author alone).
    user_a bigint,
    user_b bigint,
    -- The group audience: every member (who joined before the event).
    group_id bigint,
    message_id bigint,
    actor_id bigint,
    -- The kind's own facts, JSON.
    data text NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
-- A user's replay: three index ranges, merged by position. Partial: an event is in one
-- or two of them, and each insert pays only for those.
CREATE INDEX stream_events_user_a_idx ON stream_events (user_a, position)
    WHERE user_a IS NOT NULL;
CREATE INDEX stream_events_user_b_idx ON stream_events (user_b, position)
    WHERE user_b IS NOT NULL;
CREATE INDEX stream_events_group_idx ON stream_events (group_id, position)
    WHERE group_id IS NOT NULL;
-- Retention sweeps by age.
CREATE INDEX stream_events_created_idx ON stream_events (created_at);

-- Messages: the position of their own event, the message answered, edits and deletion
-- (a tombstone: body and image_url NULL, deleted_at set).
ALTER TABLE direct_messages
    ADD COLUMN position bigint NOT NULL DEFAULT 0,
    ADD COLUMN reply_to bigint REFERENCES direct_messages (id),
    ADD COLUMN edited_at timestamptz,
    ADD COLUMN deleted_at timestamptz;
ALTER TABLE group_messages
    ADD COLUMN position bigint NOT NULL DEFAULT 0,
    ADD COLUMN reply_to bigint REFERENCES group_messages (id),
    ADD COLUMN edited_at timestamptz,
    ADD COLUMN deleted_at timestamptz;

-- Reactions: a set of (emoji, user) per message.
CREATE TABLE direct_reactions (
    message_id bigint NOT NULL REFERENCES direct_messages (id),
    emoji text NOT NULL,
    user_id bigint NOT NULL REFERENCES users (id),
    PRIMARY KEY (message_id, emoji, user_id)
);
CREATE TABLE group_reactions (
    message_id bigint NOT NULL REFERENCES group_messages (id) ON DELETE CASCADE,
    emoji text NOT NULL,
    user_id bigint NOT NULL REFERENCES users (id),
    PRIMARY KEY (message_id, emoji, user_id)
);

-- One row per user per direct conversation (a conversation with oneself: one row), kept
-- on write: the newest message and its position, and the user's unread count and marker.
CREATE TABLE direct_conversations (
    user_id bigint NOT NULL REFERENCES users (id),
    other_id bigint NOT NULL REFERENCES users (id),
    last_position bigint NOT NULL DEFAULT 0,
    -- No foreign key: it changes with every message, and messages are never deleted.
    last_message_id bigint NOT NULL,
    unread_count bigint NOT NULL DEFAULT 0 CHECK (unread_count >= 0),
    last_read_message_id bigint,
    PRIMARY KEY (user_id, other_id)
) WITH (fillfactor = 70);
-- No index on last_position: the list of one user's conversations (the primary key's
-- range) is sorted per request, and each message's update of its two rows stays HOT
-- (no index column changes), which matters more: it happens on every write.

INSERT INTO direct_conversations
    (user_id, other_id, last_position, last_message_id, unread_count, last_read_message_id)
SELECT user_id, other_id, 0, max(id), sum(unread), max(read_id)
FROM (
    SELECT author_id AS user_id, recipient_id AS other_id, id, 0 AS unread,
        NULL::bigint AS read_id
    FROM direct_messages
    UNION ALL
    SELECT recipient_id, author_id, id, CASE WHEN status <> 'read' THEN 1 ELSE 0 END,
        CASE WHEN status = 'read' THEN id END
    FROM direct_messages WHERE author_id <> recipient_id
) AS sides
GROUP BY user_id, other_id;

-- Groups: their newest message and its position (NULL while they have none).
ALTER TABLE groups
    ADD COLUMN last_position bigint,
    ADD COLUMN last_message_id bigint;
UPDATE groups g SET last_position = 0, last_message_id = newest.id
FROM (SELECT group_id, max(id) AS id FROM group_messages GROUP BY group_id) AS newest
WHERE newest.group_id = g.id;

-- Members: their unread count, and the stream head when they joined (they see the group's
-- events after it).
ALTER TABLE group_members
    ADD COLUMN unread_count bigint NOT NULL DEFAULT 0 CHECK (unread_count >= 0),
    ADD COLUMN joined_position bigint NOT NULL DEFAULT 0;
UPDATE group_members m SET unread_count = (
    SELECT count(*) FROM group_messages gm
    WHERE gm.group_id = m.group_id AND gm.id > m.last_read_message_id
        AND gm.author_id <> m.user_id
);

-- A message batch (pg_batch.py) calls this when a concurrent transaction committed one of
-- its (author_id, client_id) after the batch's snapshot: the batch rolls back, giving its
-- positions back, and is run again.
CREATE FUNCTION hubbub_batch_raced() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a concurrent transaction stored a client_id of this batch; run it again'
        USING ERRCODE = 'serialization_failure';
END
$$;
