-- Processes sharing this database (several `switchboard run` on one
-- PostgreSQL): each registers itself and beats; one that stops beating is
-- gone, and the customer messages it stored and never answered are
-- answered by another. `messages.owner` is the process that stored a
-- message and answers it.
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
);
ALTER TABLE messages ADD COLUMN owner TEXT;
-- Which process is bringing a staff thread up to date, until when: two
-- processes never post the same card or forward the same message, and a
-- card whose posting a crash interrupted is posted once the lease ends.
ALTER TABLE staff_threads ADD COLUMN sync_until BIGINT;
