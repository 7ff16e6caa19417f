-- Datasets and their versions. A cleanse creates a new version (parent_id) with the same
-- root_id; the original is kept. Files live under DATA_DIR/datasets/<owner>/<id>/.
CREATE TABLE IF NOT EXISTS datasets (
    id                 CHAR(36)      NOT NULL,
    owner_id           CHAR(36)      NOT NULL,
    root_id            CHAR(36)      NOT NULL,
    parent_id          CHAR(36)      NULL,
    name               VARCHAR(255)  NOT NULL,
    format             VARCHAR(16)   NOT NULL,
    original_filename  VARCHAR(255)  NOT NULL,
    size_bytes         BIGINT        NOT NULL,
    sha256             CHAR(64)      NOT NULL,
    row_count          BIGINT        NOT NULL,
    column_count       INT           NOT NULL,
    columns            LONGTEXT      NOT NULL,
    rejected_row_count BIGINT        NOT NULL,
    notices            TEXT          NOT NULL,
    created_at         DATETIME(6)   NOT NULL,
    PRIMARY KEY (id),
    KEY datasets_owner (owner_id, id),
    KEY datasets_root (root_id),
    CONSTRAINT datasets_owner_fk FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT datasets_parent_fk FOREIGN KEY (parent_id) REFERENCES datasets (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
