-- What a dataset is: an upload, a cleanse's cleaned rows (a new version) or its quarantined
-- rows (kept apart, not a version). Existing rows: a derived dataset is cleaned, unless a
-- cleanse's report names it as its quarantine. An instance of an earlier version does not
-- set the kind: a cleanse it publishes after this runs reads as an upload, so upgrade every
-- instance sharing the store together.
ALTER TABLE datasets ADD COLUMN kind VARCHAR(16) NOT NULL DEFAULT 'upload';
UPDATE datasets SET kind = 'cleaned' WHERE parent_id IS NOT NULL;
UPDATE datasets SET kind = 'quarantine'
WHERE id IN (
    SELECT JSON_UNQUOTE(JSON_EXTRACT(report, '$.cleanse.quarantine_dataset_id')) FROM jobs
    WHERE report IS NOT NULL AND JSON_VALID(report)
);
