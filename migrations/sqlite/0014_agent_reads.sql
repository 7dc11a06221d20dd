-- When each agent last had a conversation open in the console: the inbox
-- counts the customer's messages after it as unread.
CREATE TABLE agent_reads (
    agent TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    read_at INTEGER NOT NULL,
    PRIMARY KEY (agent, conversation_id)
);
