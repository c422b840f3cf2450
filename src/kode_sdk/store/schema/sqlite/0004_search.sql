-- kode-sdk SQLite schema, version 4: full-text search over messages.
--
-- messages_search is a contentless FTS5 table (it keeps the index, not the
-- text: the message is in messages.data already), one row per message with
-- rowid = messages.rowid. Its text is the message's folded words joined by
-- spaces (kode_sdk/store/search.py; ASCII text as it is, which unicode61
-- splits the same way), computed in Python by SqliteStore.
--
-- Writes only queue: a trigger puts each new or rewritten message's rowid in
-- messages_search_pending, in the writing transaction (one small row). The
-- index catches up in batches: every search first indexes what is pending,
-- in its own write transaction, so a search always sees every committed
-- message, and the FTS5 work of many commits is done in one (what it costs
-- per commit is most of what it costs at all). PostgreSQL's GIN "fastupdate"
-- pending list is the same idea.
--
-- A contentless row is deleted by giving FTS5 the exact text it was indexed
-- with, so the delete triggers call kode_index_text(data), a Python function
-- every SqliteStore connection registers (register_functions); a foreign
-- connection that deletes or rewrites messages must register it too. The
-- text must stay a pure function of data: a change to it needs a migration
-- that rebuilds the index ('delete-all', then queue every row).
CREATE VIRTUAL TABLE messages_search USING fts5(
    body,
    content = '',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE messages_search_pending (id INTEGER PRIMARY KEY);
CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
    INSERT OR IGNORE INTO messages_search_pending (id) VALUES (new.rowid);
END;
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_search (messages_search, rowid, body)
        SELECT 'delete', old.rowid, kode_index_text(old.data)
        WHERE NOT EXISTS (SELECT 1 FROM messages_search_pending WHERE id = old.rowid);
    DELETE FROM messages_search_pending WHERE id = old.rowid;
END;
CREATE TRIGGER messages_search_update AFTER UPDATE OF data ON messages BEGIN
    INSERT INTO messages_search (messages_search, rowid, body)
        SELECT 'delete', old.rowid, kode_index_text(old.data)
        WHERE NOT EXISTS (SELECT 1 FROM messages_search_pending WHERE id = old.rowid);
    INSERT OR IGNORE INTO messages_search_pending (id) VALUES (new.rowid);
END;
INSERT INTO messages_search_pending (id) SELECT rowid FROM messages;
