-- Hand-off workflow: where each conversation lives in each staff desk
-- (Telegram agents' group, Discord staff channel), and how far the customer's
-- messages have been forwarded there. Everything the desk loop needs to
-- resume after a restart is here.
CREATE TABLE staff_threads (
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    desk TEXT NOT NULL,
    thread_ref TEXT,
    state TEXT NOT NULL,
    forwarded_seq BIGINT NOT NULL DEFAULT 0,
    notified_status TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, desk)
);

ALTER TABLE conversations ADD COLUMN repinged_at BIGINT;
ALTER TABLE conversations ADD COLUMN context_since BIGINT;
