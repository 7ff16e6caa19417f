-- Co-pilot conversations and what calls to language models cost.
-- A conversation is about one dataset (and optionally one job's report); it goes with the
-- user, the dataset or the job it is about (ON DELETE CASCADE): no talk about deleted data
-- is kept. Deleting a dataset is refused while a job still reads it (datasets_in_use), not
-- because a conversation mentions it.
CREATE TABLE IF NOT EXISTS conversations (
    id          CHAR(36)     NOT NULL,
    owner_id    CHAR(36)     NOT NULL,
    dataset_id  CHAR(36)     NULL,
    job_id      CHAR(36)     NULL,
    title       VARCHAR(255) NOT NULL,
    created_at  DATETIME(6)  NOT NULL,
    updated_at  DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    KEY conversations_owner (owner_id, id),
    KEY conversations_dataset (dataset_id),
    KEY conversations_job (job_id),
    CONSTRAINT conversations_owner_fk FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT conversations_dataset_fk FOREIGN KEY (dataset_id) REFERENCES datasets (id) ON DELETE CASCADE,
    CONSTRAINT conversations_job_fk FOREIGN KEY (job_id) REFERENCES jobs (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Messages are numbered 1, 2, 3… per conversation in the order they were appended (the
-- conversation row is locked FOR UPDATE while numbering); sources is a JSON array of strings.
CREATE TABLE IF NOT EXISTS conversation_messages (
    conversation_id CHAR(36)     NOT NULL,
    seq             INT          NOT NULL,
    role            VARCHAR(16)  NOT NULL,
    content         MEDIUMTEXT   NOT NULL,
    sources         MEDIUMTEXT   NOT NULL,
    model           VARCHAR(255) NULL,
    created_at      DATETIME(6)  NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    CONSTRAINT conversation_messages_role CHECK (role IN ('user', 'assistant')),
    CONSTRAINT conversation_messages_conversation_fk FOREIGN KEY (conversation_id)
        REFERENCES conversations (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per call to a language model, for accounting. It goes with the user, but not
-- with the job or conversation it served (no foreign key): what was spent stays counted
-- after a dataset and its jobs are deleted.
CREATE TABLE IF NOT EXISTS llm_usage (
    id                CHAR(36)     NOT NULL,
    owner_id          CHAR(36)     NOT NULL,
    job_id            CHAR(36)     NULL,
    conversation_id   CHAR(36)     NULL,
    purpose           VARCHAR(32)  NOT NULL,
    model             VARCHAR(255) NOT NULL,
    prompt_tokens     BIGINT       NOT NULL,
    completion_tokens BIGINT       NOT NULL,
    created_at        DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    KEY llm_usage_owner (owner_id, job_id),
    CONSTRAINT llm_usage_owner_fk FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
