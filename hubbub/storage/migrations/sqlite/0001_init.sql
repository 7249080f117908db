-- Users, direct messages, groups, memberships and group messages.
-- Timestamps are INTEGER microseconds since the Unix epoch, UTC: they sort, and
-- round-trip exactly. AUTOINCREMENT keeps ids from ever being reused, so a message id
-- grows with time.

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NOCASE folds ASCII letters only (PostgreSQL's lower() folds per its locale).
    username TEXT NOT NULL COLLATE NOCASE UNIQUE,
    email TEXT NOT NULL COLLATE NOCASE UNIQUE,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen INTEGER
) STRICT;

CREATE TABLE direct_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    author_id INTEGER NOT NULL REFERENCES users (id),
    recipient_id INTEGER NOT NULL REFERENCES users (id),
    body TEXT,
    image_url TEXT,
    client_id TEXT,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'read')),
    created_at INTEGER NOT NULL,
    -- NULLs are distinct, so a NULL client_id never conflicts; the index also serves
    -- lookups by author.
    UNIQUE (author_id, client_id)
) STRICT;
CREATE INDEX direct_messages_pending_idx ON direct_messages (recipient_id, id)
    WHERE status = 'pending';
CREATE INDEX direct_messages_conversation_idx ON direct_messages
    (min(author_id, recipient_id), max(author_id, recipient_id), id);
CREATE INDEX direct_messages_recipient_idx ON direct_messages (recipient_id, author_id);

CREATE TABLE groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created_by INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE group_members (
    group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id),
    role TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member')),
    last_read_message_id INTEGER NOT NULL DEFAULT 0,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
) STRICT;
CREATE INDEX group_members_user_idx ON group_members (user_id);

CREATE TABLE group_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    author_id INTEGER NOT NULL REFERENCES users (id),
    body TEXT,
    image_url TEXT,
    client_id TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (author_id, client_id)
) STRICT;
CREATE INDEX group_messages_group_idx ON group_messages (group_id, id);
