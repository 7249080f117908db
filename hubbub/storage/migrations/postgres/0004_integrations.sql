-- Integrations: the product's own id for a user, server API keys, blocks and mutes.
-- (The webhook outbox comes in its own migration.)

-- The id the embedding product knows a user by (a JWT `sub`, or POST /api/v1/users).
ALTER TABLE users ADD COLUMN external_id text;
CREATE UNIQUE INDEX users_external_id_key ON users (external_id) WHERE external_id IS NOT NULL;

-- Server API keys. A key is 32 random bytes, so a SHA-256 of it is as safe to keep as a
-- slow password hash and costs nothing per request. A name is unique among live keys.
CREATE TABLE api_keys (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    key_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE UNIQUE INDEX api_keys_live_name_key ON api_keys (name) WHERE revoked_at IS NULL;
CREATE UNIQUE INDEX api_keys_hash_key ON api_keys (key_hash);

-- blocker_id blocked blocked_id: the blocked user's direct messages to the blocker are
-- refused, and presence and typing do not pass between them in either direction.
CREATE TABLE user_blocks (
    blocker_id bigint NOT NULL REFERENCES users (id),
    blocked_id bigint NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id)
);
CREATE INDEX user_blocks_blocked_idx ON user_blocks (blocked_id);

-- A user's muted conversations: kind 'direct' with the other user's id, or 'group' with
-- the group's id. muted_until NULL means until unmuted. A direct conversation may be muted
-- before its first message, so this is not a column of direct_conversations.
CREATE TABLE conversation_mutes (
    user_id bigint NOT NULL REFERENCES users (id),
    kind text NOT NULL CHECK (kind IN ('direct', 'group')),
    conversation_id bigint NOT NULL,
    muted_until timestamptz,
    PRIMARY KEY (user_id, kind, conversation_id)
);
