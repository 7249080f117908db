-- Refresh tokens, so that each is spent once (rotation) and a login can be ended (logout).
-- A family is every token descended from one login: rotation issues the next token in the
-- family of the one it spends. A family counts as revoked once any of its tokens is: a token
-- issued into it after the revocation is refused too. Timestamps: INTEGER microseconds.

CREATE TABLE refresh_tokens (
    jti TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    family_id TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    spent_at INTEGER,
    revoked_at INTEGER
) STRICT;
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
