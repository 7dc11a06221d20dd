-- Messages the core sends to web-widget customers outside a request/response
-- (agent replies, notices, survey questions); the widget polls for them.
CREATE TABLE web_messages (
    id TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    text TEXT NOT NULL,
    buttons TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX web_messages_by_session ON web_messages (session, id);
