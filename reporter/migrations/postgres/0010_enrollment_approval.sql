-- Host takeover defence (issue 19, item 1). `agents.roles` now holds the roles
-- the reporter trusts (approved by an admin, or granted by a role-scoped
-- enrollment secret). What the agent asked for is kept apart in
-- `requested_roles` until approved. Agents enrolled before this migration keep
-- the roles they had.
ALTER TABLE agents ADD COLUMN requested_roles TEXT NOT NULL DEFAULT '[]';
UPDATE agents SET requested_roles = roles;
-- An admin's permission to enroll once more a host whose agent is active.
CREATE TABLE enroll_allowances (
    host TEXT PRIMARY KEY,
    allowed_by TEXT NOT NULL,
    allowed_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
)
