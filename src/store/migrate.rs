//! Versioned migrations for both backends, embedded in the binary.
//!
//! Each version has a SQLite and a MySQL script under `migrations/`. Applied versions are
//! recorded with a checksum in `schema_migrations`; a script edited after it was applied
//! stops start-up rather than leaving two databases with different schemas. The backends
//! serialise concurrent runs (SQLite: `BEGIN IMMEDIATE`; MySQL: `GET_LOCK`).

use sha2::{Digest, Sha256};

/// One schema version.
#[derive(Debug)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub mysql: &'static str,
}

/// Every migration, oldest first. A test checks this list matches `migrations/`.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "accounts",
        sqlite: include_str!("../../migrations/sqlite/0001_accounts.sql"),
        mysql: include_str!("../../migrations/mysql/0001_accounts.sql"),
    },
    Migration {
        version: 2,
        name: "datasets",
        sqlite: include_str!("../../migrations/sqlite/0002_datasets.sql"),
        mysql: include_str!("../../migrations/mysql/0002_datasets.sql"),
    },
    Migration {
        version: 3,
        name: "jobs",
        sqlite: include_str!("../../migrations/sqlite/0003_jobs.sql"),
        mysql: include_str!("../../migrations/mysql/0003_jobs.sql"),
    },
    Migration {
        version: 4,
        name: "ai",
        sqlite: include_str!("../../migrations/sqlite/0004_ai.sql"),
        mysql: include_str!("../../migrations/mysql/0004_ai.sql"),
    },
    Migration {
        version: 5,
        name: "job_outputs",
        sqlite: include_str!("../../migrations/sqlite/0005_job_outputs.sql"),
        mysql: include_str!("../../migrations/mysql/0005_job_outputs.sql"),
    },
    Migration {
        version: 6,
        name: "dataset_kind",
        sqlite: include_str!("../../migrations/sqlite/0006_dataset_kind.sql"),
        mysql: include_str!("../../migrations/mysql/0006_dataset_kind.sql"),
    },
];

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this run.
    pub applied: Vec<u32>,
    /// Versions that were already there.
    pub already_applied: Vec<u32>,
}

impl Migration {
    /// Hex SHA-256 of the script, to detect a script changed after it was applied.
    pub fn checksum(script: &str) -> String {
        hex(&Sha256::digest(script.as_bytes()))
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits a script into statements: each ends with `;` at the end of a line. Comment-only
/// chunks are dropped.
pub(crate) fn statements(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let stmt = current.trim().trim_end_matches(';').trim().to_string();
            if !stmt.is_empty() {
                out.push(stmt);
            }
            current.clear();
        }
    }
    let rest = current.trim();
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// Which migrations to apply, given the `(version, checksum)` rows already recorded and
/// the backend's script of each migration. Refuses a script changed after it was applied.
pub(crate) fn pending(
    recorded: &[(u32, String)],
    script: fn(&Migration) -> &'static str,
) -> anyhow::Result<(Vec<&'static Migration>, Vec<u32>)> {
    let mut pending = Vec::new();
    let mut already_applied = Vec::new();
    for migration in MIGRATIONS {
        match recorded.iter().find(|(v, _)| *v == migration.version) {
            Some((_, checksum)) if *checksum != Migration::checksum(script(migration)) => {
                anyhow::bail!(
                    "migration {} was changed after it was applied to this database; \
                     restore the original script and add a new migration instead",
                    migration.version
                )
            }
            Some(_) => already_applied.push(migration.version),
            None => pending.push(migration),
        }
    }
    Ok((pending, already_applied))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_matches_the_files() {
        for backend in ["sqlite", "mysql"] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(backend);
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            files.sort();
            let expected: Vec<String> =
                MIGRATIONS.iter().map(|m| format!("{:04}_{}.sql", m.version, m.name)).collect();
            assert_eq!(files, expected, "migrations/{backend} and MIGRATIONS differ");
        }
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "versions must be consecutive");
        }
    }

    #[test]
    fn edited_scripts_are_refused() {
        let sqlite = |m: &Migration| m.sqlite;
        let (todo, done) = pending(&[], sqlite).unwrap();
        assert_eq!((todo.len(), done.len()), (MIGRATIONS.len(), 0));
        let good = vec![(1, Migration::checksum(MIGRATIONS[0].sqlite))];
        assert_eq!(pending(&good, sqlite).unwrap().1, vec![1]);
        let edited = vec![(1, "0".repeat(64))];
        assert!(pending(&edited, sqlite).unwrap_err().to_string().contains("changed after it was applied"));
    }

    #[test]
    fn splits_statements() {
        let s = statements("-- c\nCREATE TABLE a (x INT);\n\nCREATE INDEX i ON a (x);\n");
        assert_eq!(s, vec!["CREATE TABLE a (x INT)", "CREATE INDEX i ON a (x)"]);
    }
}
