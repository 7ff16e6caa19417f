-- Co-pilot conversations and what calls to language models cost.
-- A conversation is about one dataset (and optionally one job's report); it goes with the
-- user, the dataset or the job it is about (ON DELETE CASCADE): no talk about deleted data
-- is kept. Deleting a dataset is refused while a job still reads it (datasets_in_use), not
-- because a conversation mentions it.
CREATE TABLE conversations (
    id         TEXT PRIMARY KEY NOT NULL,
    owner_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    dataset_id TEXT REFERENCES datasets (id) ON DELETE CASCADE,
    job_id     TEXT REFERENCES jobs (id) ON DELETE CASCADE,
    title      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX conversations_owner ON conversations (owner_id, id);
CREATE INDEX conversations_dataset ON conversations (dataset_id);
CREATE INDEX conversations_job ON conversations (job_id);

-- Messages are numbered 1, 2, 3… per conversation in the order they were appended;
-- sources is a JSON array of strings.
CREATE TABLE conversation_messages (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content         TEXT NOT NULL,
    sources         TEXT NOT NULL,
    model           TEXT,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

-- One row per call to a language model, for accounting. It goes with the user, but not
-- with the job or conversation it served (no foreign key): what was spent stays counted
-- after a dataset and its jobs are deleted.
CREATE TABLE llm_usage (
    id                TEXT PRIMARY KEY NOT NULL,
    owner_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    job_id            TEXT,
    conversation_id   TEXT,
    purpose           TEXT NOT NULL,
    model             TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created_at        TEXT NOT NULL
);
CREATE INDEX llm_usage_owner ON llm_usage (owner_id, job_id);
