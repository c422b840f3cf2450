-- kode-sdk SQLite schema, version 4: full-text search over messages.
--
-- messages_search is a contentless FTS5 table (it keeps the index, not the
-- text: the message is in messages.data already), one row per message with
-- rowid = messages.rowid. Its text is kode_index_text(data): the message's
-- folded words joined by spaces (kode_sdk/store/search.py, registered on
-- every connection SqliteStore opens), so the tokenizer only splits at
-- spaces; unicode61 with remove_diacritics 2 is a backstop for anything else.
-- Triggers keep it in step with messages in the writing transaction, whatever
-- the path (save, append, fork, delete, prune). A contentless row is deleted
-- by giving FTS5 the exact text it was indexed with, which is why the text
-- must be a pure function of data: a change to that function needs a
-- migration that rebuilds the index ('delete-all', then re-insert).
CREATE VIRTUAL TABLE messages_search USING fts5(
    body,
    content = '',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_search (rowid, body) VALUES (new.rowid, kode_index_text(new.data));
END;
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_search (messages_search, rowid, body) VALUES ('delete', old.rowid, kode_index_text(old.data));
END;
CREATE TRIGGER messages_search_update AFTER UPDATE OF data ON messages BEGIN
    INSERT INTO messages_search (messages_search, rowid, body) VALUES ('delete', old.rowid, kode_index_text(old.data));
    INSERT INTO messages_search (rowid, body) VALUES (new.rowid, kode_index_text(new.data));
END;
INSERT INTO messages_search (rowid, body) SELECT rowid, kode_index_text(data) FROM messages;
