-- What the customer was told when an agent joined, transferred, gave back or
-- closed their conversation. The notice is stored on the transition's own
-- event, in the same transaction, so the record and the state change cannot
-- part; `actor_name` is the name the customer saw (a role-based Discord
-- agent's display name is not in config). `notified_at` is set once, by
-- whoever sends it, so a notice goes out at most once.
ALTER TABLE events ADD COLUMN actor_name TEXT;
ALTER TABLE events ADD COLUMN notice TEXT;
ALTER TABLE events ADD COLUMN notified_at INTEGER;
CREATE INDEX events_unsent_notices ON events (created_at)
    WHERE notice IS NOT NULL AND notified_at IS NULL;

-- A widget mailbox message that is a notice (shown as such, not as a bot
-- bubble).
ALTER TABLE web_messages ADD COLUMN notice INTEGER NOT NULL DEFAULT 0;
