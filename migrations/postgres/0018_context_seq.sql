-- Where the bot's context starts after an agent gives a conversation back,
-- as a message number: messages with a higher `seq` are context. The time
-- in `context_since` could not tell apart an agent's reply and the
-- give-back made in the same millisecond. Conversations given back before
-- this column existed get the number of their last message before then.
ALTER TABLE conversations ADD COLUMN context_after_seq BIGINT;
UPDATE conversations SET context_after_seq = (
    SELECT COALESCE(MAX(m.seq), 0) FROM messages m
    WHERE m.conversation_id = conversations.id AND m.created_at < conversations.context_since
) WHERE context_since IS NOT NULL;
