-- Articles suggested from answered conversations (the learning loop): a
-- draft built from the customer's question and the agents' replies, waiting
-- for an admin to edit and publish it into the knowledge base, or dismiss
-- it. One suggestion per conversation. `tags` is a JSON array of strings;
-- `by_model` is 1 when the language model wrote the draft, 0 for the plain
-- template. `published_slug` is the article it became.
CREATE TABLE kb_suggestions (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL UNIQUE REFERENCES conversations(id),
    created_by TEXT NOT NULL,
    title TEXT NOT NULL,
    slug TEXT NOT NULL,
    tags TEXT NOT NULL,
    body TEXT NOT NULL,
    by_model INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    decided_by TEXT,
    decided_at INTEGER,
    published_slug TEXT
);
CREATE INDEX kb_suggestions_by_status ON kb_suggestions (status, created_at);
