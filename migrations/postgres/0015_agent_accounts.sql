-- Agents managed from the console (settings view, `switchboard agents
-- invite`): agents added there (`added` = true, with their role), and the
-- disabled flag (booleans as 0/1), which also applies to agents from [[agents]] in config.
CREATE TABLE agent_accounts (
    name TEXT PRIMARY KEY,
    added BIGINT NOT NULL,
    admin BIGINT NOT NULL,
    disabled BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Invite links: only a SHA-256 of the link's token is kept; one use.
CREATE TABLE agent_invites (
    token_hash TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX agent_invites_agent ON agent_invites (agent);

-- When each agent was last seen in the console (for "online" in transfer).
CREATE TABLE agent_presence (
    agent TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
