-- Agent locks as leases, for stores behind a transaction-mode pooler
-- (PgBouncer), where session advisory locks cannot work: pooled clients share
-- server sessions. One row per held lock; expiry on the server's clock; see
-- kode_sdk/store/postgres/pooler.py. Keyed by agent_id like every table.

CREATE TABLE agent_leases (
    agent_id    text COLLATE "C" PRIMARY KEY,
    holder      text NOT NULL,          -- random per acquisition
    expires_at  timestamptz NOT NULL
);
