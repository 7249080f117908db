-- Refresh tokens, so that each is spent once (rotation) and a login can be ended (logout).
-- A family is every token descended from one login: rotation issues the next token in the
-- family of the one it spends. A family counts as revoked once any of its tokens is: a token
-- issued into it after the revocation is refused too.

CREATE TABLE refresh_tokens (
    jti text PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id),
    family_id text NOT NULL,
    issued_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    spent_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
