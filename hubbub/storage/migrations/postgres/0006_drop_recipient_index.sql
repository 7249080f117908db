-- direct_messages_recipient_idx (recipient_id, author_id) served one query: a user's
-- conversation partners, which now come from direct_conversations (a range of its primary
-- key). No statement reads it any more, and every message write (and every delivery mark,
-- an update that cannot be HOT: status is in the pending index's predicate) kept it up.
-- (Should users ever be deleted, the recipient foreign key would want an index on
-- recipient_id again.)
DROP INDEX IF EXISTS direct_messages_recipient_idx;
