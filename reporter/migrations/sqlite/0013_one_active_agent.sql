-- One active agent per host, enforced by the database (issue 19), as on
-- PostgreSQL where two reporters may share the database. Duplicates (the
-- newest is kept) are revoked before the index is made.
UPDATE agents SET revoked_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000
WHERE revoked_at IS NULL AND EXISTS (
    SELECT 1 FROM agents n
    WHERE n.host = agents.host AND n.revoked_at IS NULL
      AND (n.created_at > agents.created_at OR (n.created_at = agents.created_at AND n.id > agents.id))
);
CREATE UNIQUE INDEX agents_one_active ON agents (host) WHERE revoked_at IS NULL
