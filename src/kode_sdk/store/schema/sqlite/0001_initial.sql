-- kode-sdk SQLite schema, version 1.
--
-- Every primary key starts with agent_id; timestamps are epoch milliseconds
-- (UTC); JSON columns hold compact UTF-8 JSON text written by kode_sdk.jsoncodec.
-- Every child table references agents(agent_id) ON DELETE CASCADE, so deleting
-- the registry row deletes everything of that agent in one statement.
-- Indexes are plain ascending ones: SQLite walks them backwards for "newest
-- first" (created_at DESC, seq/id DESC, agent_id DESC).

-- One row per agent that has anything stored. `info` (the AgentInfo wire JSON)
-- stays NULL until save_info: exists(), list() and query_sessions() only see
-- rows with info. msg_version / tc_version change on every save of the message
-- / tool-call list, so a process can tell whether its cached copy is current.
CREATE TABLE agents (
    agent_id      TEXT    NOT NULL PRIMARY KEY,
    info          TEXT,
    template_id   TEXT,
    user_id       TEXT,
    created_at    INTEGER,
    updated_at    INTEGER NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0,
    msg_version   INTEGER NOT NULL DEFAULT 0,
    tc_version    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX agents_listed ON agents (agent_id) WHERE info IS NOT NULL;
CREATE INDEX agents_by_created ON agents (created_at, agent_id) WHERE info IS NOT NULL;
CREATE INDEX agents_by_updated ON agents (updated_at, agent_id) WHERE info IS NOT NULL;
CREATE INDEX agents_by_message_count ON agents (message_count, agent_id) WHERE info IS NOT NULL;
CREATE INDEX agents_by_template ON agents (template_id, created_at, agent_id) WHERE info IS NOT NULL;
CREATE INDEX agents_by_user ON agents (user_id, created_at, agent_id) WHERE info IS NOT NULL;

-- The conversation: seq is the 0-based position in the agent's list;
-- created_at is the time of the row's first save (a rewrite keeps it);
-- block_types is a JSON array of the distinct content-block types.
CREATE TABLE messages (
    agent_id    TEXT    NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    role        TEXT    NOT NULL,
    block_types TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    data        TEXT    NOT NULL,
    PRIMARY KEY (agent_id, seq)
);
CREATE INDEX messages_by_time ON messages (created_at, seq, agent_id);
CREATE INDEX messages_by_role ON messages (role, created_at, seq, agent_id);
CREATE INDEX messages_by_agent_time ON messages (agent_id, created_at, seq);
CREATE INDEX messages_by_agent_role ON messages (agent_id, role, created_at, seq);

-- Tool-call records: pos is the 0-based position in the agent's list.
CREATE TABLE tool_calls (
    agent_id          TEXT    NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    id                TEXT    NOT NULL,
    pos               INTEGER NOT NULL,
    name              TEXT    NOT NULL,
    state             TEXT    NOT NULL,
    is_error          INTEGER NOT NULL,
    approval_required INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    data              TEXT    NOT NULL,
    PRIMARY KEY (agent_id, id),
    UNIQUE (agent_id, pos)
);
CREATE INDEX tool_calls_by_time ON tool_calls (created_at, id, agent_id);
CREATE INDEX tool_calls_by_agent_time ON tool_calls (agent_id, created_at, id);
CREATE INDEX tool_calls_by_name ON tool_calls (name, created_at, id, agent_id);
CREATE INDEX tool_calls_by_name_error ON tool_calls (name, is_error, created_at, id, agent_id);
CREATE INDEX tool_calls_by_agent_state ON tool_calls (agent_id, state, name);

-- The event timeline; `since` is a range read of the primary key. Rows are
-- small and always read in key order, so the table is clustered on its key.
CREATE TABLE events (
    agent_id  TEXT    NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    channel   TEXT    NOT NULL,
    type      TEXT    NOT NULL,
    timestamp INTEGER NOT NULL,
    data      TEXT    NOT NULL,
    PRIMARY KEY (agent_id, seq)
) WITHOUT ROWID;

CREATE TABLE todos (
    agent_id   TEXT    NOT NULL PRIMARY KEY REFERENCES agents (agent_id) ON DELETE CASCADE,
    updated_at INTEGER NOT NULL,
    data       TEXT    NOT NULL
);

-- Append-only lists, kept in save order (idx).
CREATE TABLE history_windows (
    agent_id TEXT    NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    data     TEXT    NOT NULL,
    PRIMARY KEY (agent_id, idx)
);
CREATE TABLE compression_records (
    agent_id TEXT    NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    data     TEXT    NOT NULL,
    PRIMARY KEY (agent_id, idx)
);
CREATE TABLE recovered_files (
    agent_id TEXT    NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    data     TEXT    NOT NULL,
    PRIMARY KEY (agent_id, idx)
);

-- Replaced as a whole by save_media_cache.
CREATE TABLE media_cache (
    agent_id TEXT    NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    data     TEXT    NOT NULL,
    PRIMARY KEY (agent_id, idx)
);

CREATE TABLE snapshots (
    agent_id   TEXT    NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    id         TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    PRIMARY KEY (agent_id, id)
);
CREATE INDEX snapshots_by_time ON snapshots (agent_id, created_at, id);
