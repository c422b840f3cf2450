-- kode-sdk PostgreSQL schema, version 2: full-text search over messages.
--
-- `search` holds to_tsvector('pg_catalog.simple', index_text) where
-- index_text is computed in Python (kode_sdk/store/search.py): the message's
-- words, folded (no case, no diacritics) and joined by spaces, with every
-- character of Chinese, Japanese, Thai, ... text a word of its own. So the
-- `simple` configuration (no stemming, no stop words) has nothing left to
-- decide, and PostgreSQL finds exactly what SQLite and the JSON scan find.
-- It is written in the same statement as the row (insert or rewrite).
-- Rows that exist before this migration are indexed right after it, in the
-- same transaction (PostgresStore._migrate).
-- fastupdate off: each write updates the index itself. With the pending list
-- (the default) a write now and then pays for merging 4 MB of it (W1 p99
-- 9 -> 17 ms) and every search scans what is pending.
ALTER TABLE messages ADD COLUMN search tsvector;
CREATE INDEX messages_search ON messages USING gin (search) WITH (fastupdate = off);
