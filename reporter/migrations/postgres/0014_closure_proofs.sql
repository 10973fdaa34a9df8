-- Issue 19 items 1, 7, 17 and issue 21 (deletion runs, deadlines).
-- When the reporter received each proof (the agent's own clock is not trusted).
ALTER TABLE erasure_results ADD COLUMN received_at BIGINT NOT NULL DEFAULT 0;
-- Every distinct run received for a pending phase: the certificate shows the
-- run that deleted, not only the verification that followed.
CREATE TABLE erasure_runs (
    account TEXT NOT NULL,
    phase TEXT NOT NULL,
    host TEXT NOT NULL,
    run_digest TEXT NOT NULL,
    report_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (account, phase, host, run_digest)
);
-- The hosts that must prove a phase, frozen when the phase became pending.
CREATE TABLE closure_phase_hosts (
    account TEXT NOT NULL,
    phase TEXT NOT NULL,
    host TEXT NOT NULL,
    PRIMARY KEY (account, phase, host)
);
ALTER TABLE closures ADD COLUMN due_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE closures ADD COLUMN overdue_at BIGINT;
ALTER TABLE closures ADD COLUMN approved_by TEXT NOT NULL DEFAULT ''
