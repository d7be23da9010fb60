-- Namespace-scoped API keys (src/api/access.rs; /api/v1/apikeys).
-- Mirrored in migrations/sqlite/0012_api_keys.sql.
--
-- A key is shown once as `<id>.<secret>`: the id (`bk_` + 16 random
-- hex digits) is public and names the key in logs, lists and metrics; the
-- secret (32 random bytes, hex) is stored only as its SHA-256. A fast hash
-- is right here, not argon2: the secret is 256 random bits, not a
-- password a person chose, so there is nothing to guess from a dictionary
-- and stretching would only slow every request down.
--
-- A node reads a key by primary key and trusts what it read for at most
-- half a second, so a revocation holds on every node within a second.
-- `last_used_at` is written at most once a minute per key and node.

create table api_keys (
    id text not null,
    -- Lowercase hex SHA-256 of the secret.
    secret_hash text not null,
    -- The one namespace the key may use; null for an admin key (all).
    namespace text,
    -- admin, writer or reader.
    role text not null,
    description text not null default '',
    created_at bigint not null,
    -- Milliseconds since the epoch; null: never expires.
    expires_at bigint,
    revoked_at bigint,
    last_used_at bigint,
    constraint api_keys_pkey primary key (id)
);
