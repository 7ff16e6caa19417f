-- Jobs: a tool run over a dataset. Workers claim QUEUED jobs (or RUNNING ones whose lease
-- expired: their worker died) in id order, which is creation order (UUIDv7).
CREATE TABLE jobs (
    id                  TEXT PRIMARY KEY NOT NULL,
    owner_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tool_id             TEXT NOT NULL,
    agents              TEXT NOT NULL,
    parameters          TEXT NOT NULL,
    dataset_id          TEXT NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    baseline_dataset_id TEXT REFERENCES datasets (id) ON DELETE CASCADE,
    status              TEXT NOT NULL,
    progress            REAL NOT NULL,
    stage               TEXT,
    error_code          TEXT,
    error_message       TEXT,
    attempts            INTEGER NOT NULL,
    cancel_requested    INTEGER NOT NULL,
    worker_id           TEXT,
    lease_expires_at    TEXT,
    output_dataset_id   TEXT,
    report              TEXT,
    created_at          TEXT NOT NULL,
    started_at          TEXT,
    finished_at         TEXT,
    updated_at          TEXT NOT NULL
);
CREATE INDEX jobs_owner ON jobs (owner_id, id);
CREATE INDEX jobs_queue ON jobs (status, id);
CREATE INDEX jobs_dataset ON jobs (dataset_id);
CREATE INDEX jobs_baseline ON jobs (baseline_dataset_id);
