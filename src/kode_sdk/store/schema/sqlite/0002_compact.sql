-- kode-sdk SQLite schema, version 2: a smaller file.
--
-- 1. JSON documents. From this version on, every `data` column may hold either
--    JSON TEXT (as in version 1) or a compressed BLOB (kode_sdk/store/sqlite/blob.py):
--    rows written before stay as they are. Version-1 code refuses this schema,
--    so no reader that cannot decompress ever sees a BLOB.
--
-- 2. Messages keep two indexes instead of five. Along one agent's list,
--    created_at never decreases (writers give a new row at least the
--    created_at of the row before it; the fix-up below makes rows written by
--    version 1 under a clock that stepped back obey it too), so "newest first"
--    within one agent is seq order: the primary key serves every query that
--    names an agent, and one index on created_at serves the others (ties on
--    created_at are sorted by seq and agent_id in the few rows that share a
--    millisecond). Measured on W4 (2,400 messages): the four indexes replaced
--    took 311 KB, the new one 41 KB.
--
-- 3. The small per-agent tables become WITHOUT ROWID (clustered on their
--    primary key): one b-tree each instead of a table and an index; agents
--    loses agents_listed (list() reads the primary-key index and checks info).

CREATE TEMP TABLE kode_created_at_fix AS
SELECT rid, floor_ms FROM (
    SELECT rowid AS rid, created_at,
           MAX(created_at) OVER (PARTITION BY agent_id ORDER BY seq ROWS UNBOUNDED PRECEDING) AS floor_ms
    FROM messages
) WHERE created_at < floor_ms;
UPDATE messages SET created_at = (SELECT floor_ms FROM kode_created_at_fix WHERE rid = messages.rowid)
WHERE rowid IN (SELECT rid FROM kode_created_at_fix);
DROP TABLE kode_created_at_fix;

DROP INDEX messages_by_time;
DROP INDEX messages_by_role;
DROP INDEX messages_by_agent_time;
DROP INDEX messages_by_agent_role;
CREATE INDEX messages_by_time ON messages (created_at);

DROP INDEX agents_listed;

CREATE TABLE todos_v2 (
    agent_id   TEXT    NOT NULL PRIMARY KEY REFERENCES agents (agent_id) ON DELETE CASCADE,
    updated_at INTEGER NOT NULL,
    data       TEXT    NOT NULL
) WITHOUT ROWID;
INSERT INTO todos_v2 (agent_id, updated_at, data) SELECT agent_id, updated_at, data FROM todos;
DROP TABLE todos;
ALTER TABLE todos_v2 RENAME TO todos;

CREATE TABLE history_windows_v2 (
    agent_id TEXT    NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    data     TEXT    NOT NULL,
    PRIMARY KEY (agent_id, idx)
) WITHOUT ROWID;
INSERT INTO history_windows_v2 (agent_id, idx, data) SELECT agent_id, idx, data FROM history_windows;
DROP TABLE history_windows;
ALTER TABLE history_windows_v2 RENAME TO history_windows;

CREATE TABLE compression_records_v2 (
    agent_id TEXT    NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    data     TEXT    NOT NULL,
    PRIMARY KEY (agent_id, idx)
) WITHOUT ROWID;
INSERT INTO compression_records_v2 (agent_id, idx, data) SELECT agent_id, idx, data FROM compression_records;
DROP TABLE compression_records;
ALTER TABLE compression_records_v2 RENAME TO compression_records;

CREATE TABLE recovered_files_v2 (
    agent_id TEXT    NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    data     TEXT    NOT NULL,
    PRIMARY KEY (agent_id, idx)
) WITHOUT ROWID;
INSERT INTO recovered_files_v2 (agent_id, idx, data) SELECT agent_id, idx, data FROM recovered_files;
DROP TABLE recovered_files;
ALTER TABLE recovered_files_v2 RENAME TO recovered_files;

CREATE TABLE media_cache_v2 (
    agent_id TEXT    NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    data     TEXT    NOT NULL,
    PRIMARY KEY (agent_id, idx)
) WITHOUT ROWID;
INSERT INTO media_cache_v2 (agent_id, idx, data) SELECT agent_id, idx, data FROM media_cache;
DROP TABLE media_cache;
ALTER TABLE media_cache_v2 RENAME TO media_cache;

-- list_snapshots sorts one agent's few snapshots by created_at; the index on
-- (agent_id, created_at, id) is dropped with the old table.
CREATE TABLE snapshots_v2 (
    agent_id   TEXT    NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    id         TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    PRIMARY KEY (agent_id, id)
) WITHOUT ROWID;
INSERT INTO snapshots_v2 (agent_id, id, created_at, data) SELECT agent_id, id, created_at, data FROM snapshots;
DROP TABLE snapshots;
ALTER TABLE snapshots_v2 RENAME TO snapshots;
