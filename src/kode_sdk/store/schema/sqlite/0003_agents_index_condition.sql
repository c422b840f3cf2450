-- kode-sdk SQLite schema, version 3: the agents indexes no longer depend on `info`.
--
-- Until now every agents index was partial on `info IS NOT NULL`. SQLite
-- rewrites a partial index entry whenever its WHERE clause mentions a column
-- being updated, so each save_info (which rewrites `info`) rewrote all five
-- index entries: more dirty pages in every commit. `template_id` is NOT NULL
-- exactly when info is saved (AgentInfo.template_id is required), so the same
-- rows are indexed under `template_id IS NOT NULL`; a save_info that keeps the
-- template, the user and the creation time now touches only the updated_at
-- and message_count indexes.
DROP INDEX agents_by_created;
DROP INDEX agents_by_updated;
DROP INDEX agents_by_message_count;
DROP INDEX agents_by_template;
DROP INDEX agents_by_user;
CREATE INDEX agents_by_created ON agents (created_at, agent_id) WHERE template_id IS NOT NULL;
CREATE INDEX agents_by_updated ON agents (updated_at, agent_id) WHERE template_id IS NOT NULL;
CREATE INDEX agents_by_message_count ON agents (message_count, agent_id) WHERE template_id IS NOT NULL;
CREATE INDEX agents_by_template ON agents (template_id, created_at, agent_id) WHERE template_id IS NOT NULL;
CREATE INDEX agents_by_user ON agents (user_id, created_at, agent_id) WHERE template_id IS NOT NULL;
