-- Keep a conversation's timestamps in step with its messages inside the
-- INSERT itself (one round trip per message instead of two).
CREATE FUNCTION messages_touch() RETURNS trigger AS $$
BEGIN
    UPDATE conversations SET
        updated_at = NEW.created_at,
        last_customer_at = CASE WHEN NEW.role = 'customer' THEN NEW.created_at ELSE last_customer_at END,
        last_bot_at = CASE WHEN NEW.role = 'bot' THEN NEW.created_at ELSE last_bot_at END,
        first_bot_response_at = CASE WHEN NEW.role = 'bot' THEN COALESCE(first_bot_response_at, NEW.created_at) ELSE first_bot_response_at END,
        first_human_response_at = CASE WHEN NEW.role = 'agent' THEN COALESCE(first_human_response_at, NEW.created_at) ELSE first_human_response_at END
    WHERE id = NEW.conversation_id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER messages_touch AFTER INSERT ON messages
FOR EACH ROW WHEN (NEW.role IN ('customer', 'bot', 'agent'))
EXECUTE FUNCTION messages_touch();

-- When the customer was last sent a survey (typed answers are only looked
-- for after one).
ALTER TABLE customers ADD COLUMN surveyed_at BIGINT;
