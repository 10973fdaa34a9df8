CREATE TABLE notices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    digest BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT NOT NULL,
    sent_at BIGINT,
    failed_at BIGINT,
    last_error TEXT,
    UNIQUE (dedup_key, channel, recipient)
);
CREATE INDEX notices_due ON notices (next_attempt_at);
CREATE INDEX notices_created ON notices (created_at);
CREATE TABLE notify_state (
    subject TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    since BIGINT NOT NULL
)
