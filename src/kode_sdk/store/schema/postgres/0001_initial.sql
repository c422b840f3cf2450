-- kode-sdk PostgreSQL schema, version 1.
--
-- Rules: every primary key starts with agent_id (shardable by agent, e.g. with
-- Citus); agent ids use COLLATE "C" so list(prefix) is a byte-order range on
-- the btree; timestamps are BIGINT epoch milliseconds (UTC); documents are
-- JSONB in `data`, with `raw` holding the exact JSON text only for the few
-- documents JSONB cannot keep exactly (strings holding U+0000, floats written
-- with an exponent); see kode_sdk/store/postgres/sql.py.
-- No foreign keys: saves for an agent without AgentInfo work, and delete
-- removes rows table by table inside one transaction.

CREATE TABLE agents (
    agent_id        text COLLATE "C" PRIMARY KEY,
    info            jsonb,              -- NULL until save_info: the agent "exists" once set
    info_raw        text,
    template_id     text,
    user_id         text,
    created_at      bigint NOT NULL,
    updated_at      bigint NOT NULL,
    message_count   integer NOT NULL DEFAULT 0,   -- reported count (save_info or the last message save)
    last_sfp_index  integer NOT NULL DEFAULT -1,
    breakpoint      text,
    msg_len         integer NOT NULL DEFAULT 0,   -- number of stored message rows
    -- Bumped by every write, checked against the cached copy. A new row starts
    -- at a random value, so a deleted and re-created agent never repeats a
    -- version some store still has cached (no ABA).
    msg_version     bigint NOT NULL DEFAULT (random() * 4e18)::bigint,
    tc_len          integer NOT NULL DEFAULT 0,
    tc_version      bigint NOT NULL DEFAULT (random() * 4e18)::bigint,
    write_token     bigint                        -- random per optimistic write (guards its rows)
);
-- query_sessions: one index per filter, each also serving "newest first".
CREATE INDEX agents_template_created ON agents (template_id, created_at, agent_id) WHERE info IS NOT NULL;
CREATE INDEX agents_user_created ON agents (user_id, created_at, agent_id) WHERE info IS NOT NULL;
CREATE INDEX agents_created ON agents (created_at, agent_id) WHERE info IS NOT NULL;
CREATE INDEX agents_updated ON agents (updated_at, agent_id) WHERE info IS NOT NULL;
CREATE INDEX agents_message_count ON agents (message_count, agent_id) WHERE info IS NOT NULL;

CREATE TABLE messages (
    agent_id     text COLLATE "C" NOT NULL,
    seq          integer NOT NULL,            -- 0-based position in the agent's list
    role         text NOT NULL,
    block_types  text[] NOT NULL,             -- distinct content-block types (content_type filter)
    created_at   bigint NOT NULL,             -- first save of this position
    data         jsonb NOT NULL,
    raw          text,
    PRIMARY KEY (agent_id, seq)
);
CREATE INDEX messages_agent_role ON messages (agent_id, role, created_at, seq);
CREATE INDEX messages_agent_created ON messages (agent_id, created_at, seq);
CREATE INDEX messages_role_created ON messages (role, created_at, seq, agent_id);
CREATE INDEX messages_created ON messages (created_at, seq, agent_id);
CREATE INDEX messages_block_types ON messages USING gin (block_types);

CREATE TABLE tool_calls (
    agent_id           text COLLATE "C" NOT NULL,
    pos                integer NOT NULL,      -- position in the agent's list
    id                 text NOT NULL,
    name               text NOT NULL,
    state              text NOT NULL,
    is_error           boolean NOT NULL,
    approval_required  boolean NOT NULL,
    created_at         bigint NOT NULL,
    updated_at         bigint NOT NULL,
    data               jsonb NOT NULL,
    raw                text,
    PRIMARY KEY (agent_id, pos)
);
CREATE INDEX tool_calls_name_error ON tool_calls (name, is_error, created_at, id, agent_id, pos);
CREATE INDEX tool_calls_agent_created ON tool_calls (agent_id, created_at, id, pos);
CREATE INDEX tool_calls_state_created ON tool_calls (state, created_at, id, agent_id, pos);
CREATE INDEX tool_calls_approval_created ON tool_calls (created_at, id, agent_id, pos) WHERE approval_required;
CREATE INDEX tool_calls_created ON tool_calls (created_at, id, agent_id, pos);

CREATE TABLE events (
    agent_id    text COLLATE "C" NOT NULL,
    seq         bigint NOT NULL,
    channel     text NOT NULL,
    type        text NOT NULL,
    timestamp   bigint NOT NULL,
    data        jsonb NOT NULL,
    raw         text,
    PRIMARY KEY (agent_id, seq)
);
CREATE INDEX events_agent_channel ON events (agent_id, channel, seq);

CREATE TABLE todos (
    agent_id    text COLLATE "C" PRIMARY KEY,
    version     bigint NOT NULL,
    updated_at  bigint NOT NULL,
    data        jsonb NOT NULL,
    raw         text
);

-- Append-only lists: loaded in save order.
CREATE TABLE history_windows (
    agent_id    text COLLATE "C" NOT NULL,
    ord         bigint GENERATED ALWAYS AS IDENTITY,
    id          text NOT NULL,
    timestamp   bigint NOT NULL,
    data        jsonb NOT NULL,
    raw         text,
    PRIMARY KEY (agent_id, ord)
);

CREATE TABLE compression_records (
    agent_id    text COLLATE "C" NOT NULL,
    ord         bigint GENERATED ALWAYS AS IDENTITY,
    id          text NOT NULL,
    timestamp   bigint NOT NULL,
    data        jsonb NOT NULL,
    raw         text,
    PRIMARY KEY (agent_id, ord)
);

CREATE TABLE recovered_files (
    agent_id    text COLLATE "C" NOT NULL,
    ord         bigint GENERATED ALWAYS AS IDENTITY,
    path        text NOT NULL,
    timestamp   bigint NOT NULL,
    data        jsonb NOT NULL,
    raw         text,
    PRIMARY KEY (agent_id, ord)
);

CREATE TABLE media_cache (
    agent_id    text COLLATE "C" NOT NULL,
    pos         integer NOT NULL,
    key         text NOT NULL,
    data        jsonb NOT NULL,
    raw         text,
    PRIMARY KEY (agent_id, pos)
);

CREATE TABLE snapshots (
    agent_id    text COLLATE "C" NOT NULL,
    id          text NOT NULL,
    created_at  bigint NOT NULL,
    data        jsonb NOT NULL,
    raw         text,
    PRIMARY KEY (agent_id, id)
);
CREATE INDEX snapshots_agent_created ON snapshots (agent_id, created_at, id);
