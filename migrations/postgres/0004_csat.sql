-- Surveys after resolution. One row per resolved conversation at most; the
-- row is the schedule, and a survey is claimed (state 'sending') before it
-- is sent, so it is sent once even with several processes on one database.
CREATE TABLE surveys (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations(id),
    customer_id TEXT NOT NULL REFERENCES customers(id),
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    claimed_until BIGINT,
    sent_at BIGINT,
    resolution TEXT,
    agent TEXT,
    ask_ces BIGINT NOT NULL DEFAULT 0,
    ask_nps BIGINT NOT NULL DEFAULT 0,
    step TEXT,
    step_at BIGINT,
    csat BIGINT,
    csat_at BIGINT,
    ces BIGINT,
    nps BIGINT,
    comment TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX surveys_due ON surveys (state, due_at);
CREATE INDEX surveys_by_customer ON surveys (customer_id, sent_at);
