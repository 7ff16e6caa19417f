-- What a dataset is: an upload, a cleanse's cleaned rows (a new version) or its quarantined
-- rows (kept apart, not a version). Existing rows: a derived dataset is cleaned, unless a
-- cleanse's report names it as its quarantine.
ALTER TABLE datasets ADD COLUMN kind VARCHAR(16) NOT NULL DEFAULT 'upload';
UPDATE datasets SET kind = 'cleaned' WHERE parent_id IS NOT NULL;
UPDATE datasets SET kind = 'quarantine'
WHERE id IN (
    SELECT JSON_UNQUOTE(JSON_EXTRACT(report, '$.cleanse.quarantine_dataset_id')) FROM jobs
    WHERE report IS NOT NULL AND JSON_VALID(report)
);
