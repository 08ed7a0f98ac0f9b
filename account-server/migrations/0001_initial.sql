-- Movan account store, schema version 1: the tables PgStore reads and writes (account-server/src/store/postgres.rs).
-- Applied once, in a transaction, by the account server at start; recorded in movan_schema.

-- Registered players. `username_key` is the username in ASCII lowercase: usernames are unique ignoring ASCII case.
CREATE TABLE users (
    uid           TEXT PRIMARY KEY,
    username      TEXT NOT NULL,
    username_key  TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    role          TEXT NOT NULL,
    banned_at     BIGINT
);

-- The next uid to hand out. Moved in the transaction that adds a user, so a refused registration uses no uid and
-- uids stay contiguous (a sequence would skip on rollback).
CREATE TABLE uid_counter (
    one      BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    next_uid BIGINT NOT NULL
);
INSERT INTO uid_counter (next_uid) VALUES (1000);

-- One login each. `key` is the 32-byte session key (the sync servers need it, so it is stored as is).
CREATE TABLE sessions (
    sid         TEXT PRIMARY KEY,
    uid         TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked     BOOLEAN NOT NULL DEFAULT FALSE,
    session_key BYTEA CHECK (octet_length(session_key) = 32)
);
CREATE INDEX sessions_by_uid ON sessions (uid);

-- SHA-256 of each refresh token (never the token), and whether it was spent; kept until it expires.
CREATE TABLE refresh_tokens (
    digest     BYTEA PRIMARY KEY CHECK (octet_length(digest) = 32),
    sid        TEXT NOT NULL,
    uid        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    spent      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

-- Finished games: the MatchRecord as JSON text, exactly as serialized.
CREATE TABLE matches (
    match_id TEXT PRIMARY KEY,
    record   TEXT NOT NULL
);

-- Each player's matches. `cursor` is the 16-byte MatchCursor: end time in milliseconds and a sequence number, both
-- big-endian, so bytea order is time order, as in sled's index.
CREATE TABLE user_matches (
    uid      TEXT NOT NULL,
    cursor   BYTEA NOT NULL CHECK (octet_length(cursor) = 16),
    match_id TEXT NOT NULL REFERENCES matches (match_id) ON DELETE CASCADE,
    PRIMARY KEY (uid, cursor)
);
CREATE SEQUENCE match_seq;

-- Replay files and their arrival order (`seq`): the oldest go first when over the retention limits.
CREATE TABLE replays (
    match_id TEXT PRIMARY KEY,
    seq      BIGINT NOT NULL UNIQUE,
    size     BIGINT NOT NULL,
    file     BYTEA NOT NULL
);
CREATE SEQUENCE replay_seq;

-- The replays kept and their bytes, moved in the same transactions as `replays`; its row lock orders inserts.
CREATE TABLE replay_usage (
    one   BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    count BIGINT NOT NULL,
    bytes BIGINT NOT NULL
);
INSERT INTO replay_usage (count, bytes) VALUES (0, 0);
