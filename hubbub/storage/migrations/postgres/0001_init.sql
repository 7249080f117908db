-- Users, direct messages, groups, memberships and group messages.
-- Timestamps are timestamptz; ids are bigserial, so a message id grows with time.

CREATE TABLE users (
    id bigserial PRIMARY KEY,
    username text NOT NULL,
    email text NOT NULL,
    password_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz
);
-- Case-insensitive uniqueness; storage maps these index names to Conflict("username"/"email").
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE direct_messages (
    id bigserial PRIMARY KEY,
    author_id bigint NOT NULL REFERENCES users (id),
    recipient_id bigint NOT NULL REFERENCES users (id),
    body text,
    image_url text,
    client_id text,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'read')),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- NULLs are distinct, so a NULL client_id never conflicts: the same rule as a partial
    -- index WHERE client_id IS NOT NULL, but this index covers every row and so also
    -- serves lookups by author.
    CONSTRAINT direct_messages_client_id_key UNIQUE (author_id, client_id)
);
-- Offline delivery: a recipient's pending messages, oldest first; stays small.
CREATE INDEX direct_messages_pending_idx ON direct_messages (recipient_id, id)
    WHERE status = 'pending';
-- History of one conversation in both directions, by id.
CREATE INDEX direct_messages_conversation_idx ON direct_messages
    (least(author_id, recipient_id), greatest(author_id, recipient_id), id);
-- Conversation partners who wrote to a user.
CREATE INDEX direct_messages_recipient_idx ON direct_messages (recipient_id, author_id);

CREATE TABLE groups (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    created_by bigint NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE group_members (
    group_id bigint NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id bigint NOT NULL REFERENCES users (id),
    role text NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member')),
    last_read_message_id bigint NOT NULL DEFAULT 0,
    joined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_idx ON group_members (user_id);

CREATE TABLE group_messages (
    id bigserial PRIMARY KEY,
    group_id bigint NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    author_id bigint NOT NULL REFERENCES users (id),
    body text,
    image_url text,
    client_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT group_messages_client_id_key UNIQUE (author_id, client_id)
);
CREATE INDEX group_messages_group_idx ON group_messages (group_id, id);
