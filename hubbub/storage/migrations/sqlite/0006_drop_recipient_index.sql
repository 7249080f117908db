-- The same as PostgreSQL's 0006: no statement reads direct_messages_recipient_idx since
-- conversation partners come from direct_conversations.
DROP INDEX IF EXISTS direct_messages_recipient_idx;
