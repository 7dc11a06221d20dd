-- Platform inputs that are kept before they are confirmed (button presses,
-- staff messages) and the dead letters: inputs that panicked or could not be
-- processed after several attempts. A dead letter keeps its raw payload so
-- `switchboard dead-letters --retry ID` can hand it back to its channel.
CREATE TABLE inbound (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    claimed_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (channel, key)
);
CREATE INDEX inbound_by_status ON inbound (status, updated_at);
