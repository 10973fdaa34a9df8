-- Staff tokens can be rotated and expire (issue 19, item 9): when the current
-- token was issued. Existing tokens count from their user's creation.
ALTER TABLE users ADD COLUMN token_issued_at BIGINT;
UPDATE users SET token_issued_at = created_at
