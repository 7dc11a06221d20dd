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

-- Cards posted before this table existed, in desks without topics or
-- threads, were their own thread reference (`msg:<id>`): replies to them
-- keep working. (Posts forwarded before it were never recorded; agents
-- reply to the card or write in the topic/thread instead.)
INSERT INTO staff_posts (desk, post_ref, conversation_id, created_at)
SELECT desk, thread_ref, conversation_id, updated_at FROM staff_threads
WHERE thread_ref LIKE 'msg:%'
ON CONFLICT (desk, post_ref) DO NOTHING;
