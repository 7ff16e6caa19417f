-- The queue's tie-break reads each queued owner's last start. (First: MySQL 8 has no
-- CREATE INDEX IF NOT EXISTS, and the table below is created only if missing.)
CREATE INDEX jobs_owner_started ON jobs (owner_id, started_at);

-- Which job published which dataset version (a cleanse's cleaned and quarantined rows),
-- and by which attempt, recorded with the version in one transaction. A version whose job
-- did not complete it — its worker died after publishing, so a later attempt publishes its
-- own, or the job then failed or was cancelled — is an orphan, which workers delete
-- (`orphaned_outputs`).
CREATE TABLE IF NOT EXISTS job_outputs (
    job_id     CHAR(36) NOT NULL,
    dataset_id CHAR(36) NOT NULL,
    attempt    INT      NOT NULL,
    PRIMARY KEY (job_id, dataset_id),
    KEY job_outputs_dataset (dataset_id),
    CONSTRAINT job_outputs_job_fk FOREIGN KEY (job_id) REFERENCES jobs (id) ON DELETE CASCADE,
    CONSTRAINT job_outputs_dataset_fk FOREIGN KEY (dataset_id) REFERENCES datasets (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
