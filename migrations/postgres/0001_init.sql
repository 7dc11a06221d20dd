-- Conversation log. Times are milliseconds since the Unix epoch; JSON is text.
CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    external_id TEXT NOT NULL,
    display_name TEXT,
    unreachable BIGINT NOT NULL DEFAULT 0,
    surveys_opt_out BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (channel, external_id)
);

CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    channel TEXT NOT NULL,
    thread_key TEXT NOT NULL,
    status TEXT NOT NULL,
    previous_id TEXT REFERENCES conversations(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_customer_at BIGINT,
    last_bot_at BIGINT,
    first_bot_response_at BIGINT,
    handoff_at BIGINT,
    handoff_reason TEXT,
    handoff_detail TEXT,
    assigned_agent TEXT,
    first_human_response_at BIGINT,
    resolved_at BIGINT,
    resolved_by TEXT,
    resolution TEXT,
    offered_human BIGINT NOT NULL DEFAULT 0,
    llm_failures BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX conversations_by_customer ON conversations (customer_id, thread_key, status);
CREATE INDEX conversations_by_created ON conversations (created_at);
CREATE INDEX conversations_by_status ON conversations (status);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    seq BIGINT NOT NULL,
    role TEXT NOT NULL,
    author TEXT,
    text TEXT NOT NULL,
    mode TEXT,
    sources TEXT,
    model TEXT,
    prompt_tokens BIGINT,
    completion_tokens BIGINT,
    latency_ms BIGINT,
    channel TEXT NOT NULL,
    platform_message_id TEXT,
    feedback BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (channel, platform_message_id)
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, seq);

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX events_by_conversation ON events (conversation_id, created_at);
