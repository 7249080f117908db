-- v2: the stream (every event a user's connections can miss, in commit order), rich
-- messages (reply, edit, deletion, reactions) and the conversation list with its counters.
-- The same schema as PostgreSQL's 0003; timestamps are INTEGER microseconds. A write
-- transaction (BEGIN IMMEDIATE) is exclusive, so positions are in commit order by itself.

CREATE TABLE stream_head (
    only_row INTEGER PRIMARY KEY DEFAULT 1 CHECK (only_row = 1),
    -- Names this database's stream: a cursor of another epoch is unknown. 12 lowercase hex.
    epoch TEXT NOT NULL,
    position INTEGER NOT NULL DEFAULT 0,
    swept_through INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO stream_head (epoch) VALUES (lower(hex(randomblob(6))));

CREATE TABLE stream_events (
    position INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('message', 'group_message', 'message_edited',
        'message_deleted', 'reaction', 'read_receipt', 'group_read', 'status')),
    user_a INTEGER,
    user_b INTEGER,
    group_id INTEGER,
    message_id INTEGER,
    actor_id INTEGER,
    data TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX stream_events_user_a_idx ON stream_events (user_a, position)
    WHERE user_a IS NOT NULL;
CREATE INDEX stream_events_user_b_idx ON stream_events (user_b, position)
    WHERE user_b IS NOT NULL;
CREATE INDEX stream_events_group_idx ON stream_events (group_id, position)
    WHERE group_id IS NOT NULL;
CREATE INDEX stream_events_created_idx ON stream_events (created_at);

ALTER TABLE direct_messages ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
ALTER TABLE direct_messages ADD COLUMN reply_to INTEGER REFERENCES direct_messages (id);
ALTER TABLE direct_messages ADD COLUMN edited_at INTEGER;
ALTER TABLE direct_messages ADD COLUMN deleted_at INTEGER;
ALTER TABLE group_messages ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
ALTER TABLE group_messages ADD COLUMN reply_to INTEGER REFERENCES group_messages (id);
ALTER TABLE group_messages ADD COLUMN edited_at INTEGER;
ALTER TABLE group_messages ADD COLUMN deleted_at INTEGER;

CREATE TABLE direct_reactions (
    message_id INTEGER NOT NULL REFERENCES direct_messages (id),
    emoji TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id),
    PRIMARY KEY (message_id, emoji, user_id)
) STRICT, WITHOUT ROWID;
CREATE TABLE group_reactions (
    message_id INTEGER NOT NULL REFERENCES group_messages (id) ON DELETE CASCADE,
    emoji TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id),
    PRIMARY KEY (message_id, emoji, user_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE direct_conversations (
    user_id INTEGER NOT NULL REFERENCES users (id),
    other_id INTEGER NOT NULL REFERENCES users (id),
    last_position INTEGER NOT NULL DEFAULT 0,
    last_message_id INTEGER NOT NULL,
    unread_count INTEGER NOT NULL DEFAULT 0 CHECK (unread_count >= 0),
    last_read_message_id INTEGER,
    PRIMARY KEY (user_id, other_id)
) STRICT;
CREATE INDEX direct_conversations_order_idx
    ON direct_conversations (user_id, last_position, other_id);

INSERT INTO direct_conversations
    (user_id, other_id, last_position, last_message_id, unread_count, last_read_message_id)
SELECT user_id, other_id, 0, max(id), sum(unread), max(read_id)
FROM (
    SELECT author_id AS user_id, recipient_id AS other_id, id, 0 AS unread, NULL AS read_id
    FROM direct_messages
    UNION ALL
    SELECT recipient_id, author_id, id, CASE WHEN status <> 'read' THEN 1 ELSE 0 END,
        CASE WHEN status = 'read' THEN id END
    FROM direct_messages WHERE author_id <> recipient_id
)
GROUP BY user_id, other_id;

ALTER TABLE groups ADD COLUMN last_position INTEGER;
ALTER TABLE groups ADD COLUMN last_message_id INTEGER;
UPDATE groups SET last_position = 0,
    last_message_id = (SELECT max(id) FROM group_messages WHERE group_id = groups.id)
WHERE EXISTS (SELECT 1 FROM group_messages WHERE group_id = groups.id);

ALTER TABLE group_members ADD COLUMN unread_count INTEGER NOT NULL DEFAULT 0
    CHECK (unread_count >= 0);
ALTER TABLE group_members ADD COLUMN joined_position INTEGER NOT NULL DEFAULT 0;
UPDATE group_members SET unread_count = (
    SELECT count(*) FROM group_messages gm
    WHERE gm.group_id = group_members.group_id AND gm.id > group_members.last_read_message_id
        AND gm.author_id <> group_members.user_id
);
