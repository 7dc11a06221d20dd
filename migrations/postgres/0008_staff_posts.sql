-- Every message the bot posted into a staff desk (hand-off cards, forwarded
-- customer messages, status notices), so an agent's reply to one of them is
-- routed by the stored mapping of the replied-to message, never by text
-- found in it. `post_ref` is the desk's message reference (`msg:<id>`).
CREATE TABLE staff_posts (
    desk TEXT NOT NULL,
    post_ref TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (desk, post_ref)
);
