-- One active agent per host, enforced by the database (issue 19): two
-- reporters sharing this database could each enroll the same new host at
-- the same moment, leaving two active agents. Duplicates left by that (the
-- newest is kept) are revoked before the index is made.
UPDATE agents SET revoked_at = (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT
WHERE revoked_at IS NULL AND EXISTS (
    SELECT 1 FROM agents n
    WHERE n.host = agents.host AND n.revoked_at IS NULL
      AND (n.created_at > agents.created_at OR (n.created_at = agents.created_at AND n.id > agents.id))
);
CREATE UNIQUE INDEX agents_one_active ON agents (host) WHERE revoked_at IS NULL
