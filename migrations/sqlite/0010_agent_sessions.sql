-- Console sign-in: an agent's password (argon2 PHC string, set with
-- `switchboard agents passwd NAME`), their browser sessions (only a SHA-256
-- of the session cookie is kept, with the CSRF token the console sends back
-- on every change) and failed sign-ins (for the lock-out).
CREATE TABLE agent_passwords (
    agent TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE agent_sessions (
    token_hash TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX agent_sessions_agent ON agent_sessions (agent);

CREATE TABLE sign_in_failures (
    agent TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX sign_in_failures_agent ON sign_in_failures (agent, at);
