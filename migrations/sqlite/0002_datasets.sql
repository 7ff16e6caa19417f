-- Datasets and their versions. A cleanse creates a new version (parent_id) with the same
-- root_id; the original is kept. Files live under DATA_DIR/datasets/<owner>/<id>/.
CREATE TABLE datasets (
    id                 TEXT PRIMARY KEY NOT NULL,
    owner_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    root_id            TEXT NOT NULL,
    parent_id          TEXT REFERENCES datasets (id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    format             TEXT NOT NULL,
    original_filename  TEXT NOT NULL,
    size_bytes         INTEGER NOT NULL,
    sha256             TEXT NOT NULL,
    row_count          INTEGER NOT NULL,
    column_count       INTEGER NOT NULL,
    columns            TEXT NOT NULL,
    rejected_row_count INTEGER NOT NULL,
    notices            TEXT NOT NULL,
    created_at         TEXT NOT NULL
);
CREATE INDEX datasets_owner ON datasets (owner_id, id);
CREATE INDEX datasets_root ON datasets (root_id);
