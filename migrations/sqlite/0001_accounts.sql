-- Accounts and sessions.
-- Timestamps are UTC, stored as RFC 3339 text with microseconds (sorts as text).
CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('USER', 'ADMIN')),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- Refresh tokens are stored only as SHA-256 hashes. Every token of one sign-in shares a
-- family: presenting a token that was already rotated revokes the family.
CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    family_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    revoked_at  TEXT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
