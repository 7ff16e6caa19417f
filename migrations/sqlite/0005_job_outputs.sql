-- Which job published which dataset version (a cleanse's cleaned and quarantined rows),
-- and by which attempt, recorded with the version in one transaction. A version whose job
-- did not complete it — its worker died after publishing, so a later attempt publishes its
-- own, or the job then failed or was cancelled — is an orphan, which workers delete
-- (`orphaned_outputs`).
CREATE TABLE job_outputs (
    job_id     TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    dataset_id TEXT NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    attempt    INTEGER NOT NULL,
    PRIMARY KEY (job_id, dataset_id)
);
CREATE INDEX job_outputs_dataset ON job_outputs (dataset_id);

-- The queue's tie-break reads each queued owner's last start.
CREATE INDEX jobs_owner_started ON jobs (owner_id, started_at);
