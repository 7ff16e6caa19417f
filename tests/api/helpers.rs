//! Starts the real server on port 0, against a fresh SQLite file or a fresh MySQL
//! database, and talks to it as a client would.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use agensium::app::Application;
use agensium::config::Config;
use mysql_async::prelude::Queryable;
use serde_json::{Value, json};

/// The signing key every test server uses, so tests can forge tokens.
pub const SECRET_KEY: &str = "test-secret-key-0123456789abcdef-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Mysql,
}

/// The MySQL server tests use: `AGENSIUM_TEST_MYSQL_URL` (e.g. `mysql://root@127.0.0.1:3306/test`).
/// Without it MySQL tests are skipped — unless `AGENSIUM_REQUIRE_MYSQL=1`, as in CI, where
/// a missing server fails the run.
pub fn mysql_admin_url() -> Option<String> {
    match std::env::var("AGENSIUM_TEST_MYSQL_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("AGENSIUM_REQUIRE_MYSQL").is_ok_and(|v| v == "1") {
                panic!("AGENSIUM_REQUIRE_MYSQL=1 but AGENSIUM_TEST_MYSQL_URL is not set");
            }
            eprintln!("skipping: set AGENSIUM_TEST_MYSQL_URL to run the MySQL suite");
            None
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh, empty MySQL database, dropped when this value is dropped.
pub struct MysqlDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl MysqlDatabase {
    pub async fn create() -> Option<MysqlDatabase> {
        let admin_url = mysql_admin_url()?;
        let name = format!(
            "agt_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let mut conn = mysql_async::Conn::from_url(&admin_url)
            .await
            .expect("MySQL reachable at AGENSIUM_TEST_MYSQL_URL");
        conn.query_drop(format!("CREATE DATABASE `{name}`")).await.expect("create test database");
        conn.disconnect().await.ok();
        let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin_url);
        Some(MysqlDatabase { url: format!("{base}/{name}"), admin_url, name })
    }
}

impl Drop for MysqlDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = mysql_async::Conn::from_url(&admin_url).await {
                    let _ = conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`")).await;
                    let _ = conn.disconnect().await;
                }
            });
        })
        .join();
    }
}

/// A running server and a client for it.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub store: Store,
    pub data_dir: tempfile::TempDir,
    pub database_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _mysql: Option<MysqlDatabase>,
}

/// Starts a server with extra environment variables; `None` when the MySQL suite is skipped.
pub async fn spawn_app_with(store: Store, vars: &[(&str, &str)]) -> Option<TestApp> {
    spawn_app_hooked(store, vars, agensium::jobs::Hooks::default()).await
}

/// Starts a server whose workers call `hooks` (fault injection); `None` when the MySQL suite
/// is skipped.
pub async fn spawn_app_hooked(
    store: Store,
    vars: &[(&str, &str)],
    hooks: agensium::jobs::Hooks,
) -> Option<TestApp> {
    let data_dir = tempfile::tempdir().unwrap();
    let (database_url, mysql) = match store {
        Store::Sqlite => (format!("sqlite://{}", data_dir.path().join("meta.sqlite3").display()), None),
        Store::Mysql => {
            let db = MysqlDatabase::create().await?;
            (db.url.clone(), Some(db))
        }
    };
    let mut map: HashMap<String, String> = HashMap::new();
    map.insert("HOST".into(), "127.0.0.1".into());
    map.insert("PORT".into(), "0".into());
    map.insert("DATA_DIR".into(), data_dir.path().display().to_string());
    map.insert("DATABASE_URL".into(), database_url.clone());
    map.insert("SECRET_KEY".into(), SECRET_KEY.into());
    map.insert("DUCKDB_MEMORY_LIMIT".into(), "256MB".into());
    map.insert("DUCKDB_THREADS".into(), "1".into());
    map.insert("FRONTEND_URL".into(), "http://app.example, https://admin.example".into());
    map.insert("SHUTDOWN_TIMEOUT".into(), "5s".into());
    // The server runs inside this test binary, which cannot answer `sandbox-query`.
    map.insert("COPILOT_SQL_PROGRAM".into(), env!("CARGO_BIN_EXE_agensium").into());
    for (k, v) in vars {
        map.insert((*k).into(), (*v).into());
    }
    let config = Config::from_map(&map).expect("test configuration is valid");
    let app = Application::build(config).await.expect("server starts").with_job_hooks(hooks);
    let port = app.port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    Some(TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::new(),
        store,
        data_dir,
        database_url,
        shutdown: Some(tx),
        server: Some(server),
        _mysql: mysql,
    })
}

impl TestApp {
    /// POSTs a GraphQL request; returns the status and the JSON body.
    pub async fn post_graphql(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// A GraphQL request's body (any status).
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.post_graphql(token, query, variables).await.1
    }

    /// Signs up; returns the `AuthPayload`.
    pub async fn sign_up(&self, email: &str, password: &str) -> Value {
        let body = self
            .graphql(
                None,
                "mutation($e: String!, $p: String!) { signUp(email: $e, password: $p) { accessToken refreshToken expiresIn user { id email role } } }",
                json!({ "e": email, "p": password }),
            )
            .await;
        assert!(body["errors"].is_null(), "signUp failed: {body}");
        body["data"]["signUp"].clone()
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Value {
        self.graphql(
            None,
            "mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { accessToken refreshToken expiresIn user { id email role } } }",
            json!({ "e": email, "p": password }),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Value {
        self.graphql(
            None,
            "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken expiresIn user { email } } }",
            json!({ "t": refresh_token }),
        )
        .await
    }

    /// Uploads a file with the GraphQL multipart request; returns the status and body.
    pub async fn upload(
        &self,
        token: &str,
        filename: &str,
        bytes: Vec<u8>,
        name: Option<&str>,
    ) -> (u16, Value) {
        let operations = json!({
            "query": "mutation($file: Upload!, $name: String) { uploadDataset(file: $file, name: $name) { id name format originalFilename sizeBytes sha256 rowCount columnCount columns { name type } rejectedRowCount notices } }",
            "variables": { "file": null, "name": name },
        });
        let form = reqwest::multipart::Form::new()
            .text("operations", operations.to_string())
            .text("map", json!({ "0": ["variables.file"] }).to_string())
            .part("0", reqwest::multipart::Part::bytes(bytes).file_name(filename.to_string()));
        let response = self
            .client
            .post(format!("{}/graphql", self.address))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .expect("upload sent");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// Uploads a file that must be accepted; returns the `Dataset`.
    pub async fn upload_ok(&self, token: &str, filename: &str, bytes: &[u8]) -> Value {
        let (status, body) = self.upload(token, filename, bytes.to_vec(), None).await;
        assert!(status == 200 && body["errors"].is_null(), "upload of {filename} failed ({status}): {body}");
        body["data"]["uploadDataset"].clone()
    }

    /// Signs up a user and returns their access token.
    pub async fn token_for(&self, email: &str) -> String {
        self.sign_up(email, "correct horse battery").await["accessToken"].as_str().unwrap().to_string()
    }

    /// Files left in a folder under the data directory (recursively).
    pub fn files_under(&self, relative: &str) -> Vec<std::path::PathBuf> {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    let path = entry.path();
                    if path.is_dir() { walk(&path, out) } else { out.push(path) }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.data_dir.path().join(relative), &mut out);
        out
    }

    /// Runs raw SQL against the server's metadata store (to break it on purpose).
    pub async fn execute_sql(&self, sql: &str) {
        match self.store {
            Store::Sqlite => {
                let path = self.database_url.trim_start_matches("sqlite://").to_string();
                let sql = sql.to_string();
                tokio::task::spawn_blocking(move || {
                    rusqlite::Connection::open(path).unwrap().execute_batch(&sql).unwrap()
                })
                .await
                .unwrap();
            }
            Store::Mysql => {
                let mut conn = mysql_async::Conn::from_url(&self.database_url).await.unwrap();
                conn.query_drop(sql).await.unwrap();
                conn.disconnect().await.ok();
            }
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(handle) => handle.await?,
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.server.take() {
            handle.abort();
        }
    }
}

/// An access token signed with `key`, expiring `exp_offset` seconds from now.
pub fn forge_token(user_id: &str, algorithm: jsonwebtoken::Algorithm, key: &str, exp_offset: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({ "sub": user_id, "role": "ADMIN", "iat": now, "exp": now + exp_offset, "jti": "x" });
    let key = jsonwebtoken::EncodingKey::from_secret(key.as_bytes()).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::new(algorithm), &claims, &key).unwrap()
}

/// The code of the first error of a GraphQL body.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {body}"))
}

/// Runs each test against SQLite and against MySQL (`::sqlite::` / `::mysql::` in names).
#[macro_export]
macro_rules! both_stores {
    (@vars) => { &[] };
    (@vars $vars:expr) => { $vars };
    ($( $(#[$meta:meta])* async fn $name:ident($app:ident $(, $vars:expr)?) $body:block )*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let vars: &[(&str, &str)] = $crate::both_stores!(@vars $($vars)?);
                    let $app = $crate::helpers::spawn_app_with($crate::helpers::Store::Sqlite, vars).await.unwrap();
                    $body
                }
            )*
        }
        mod mysql {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let vars: &[(&str, &str)] = $crate::both_stores!(@vars $($vars)?);
                    let Some($app) = $crate::helpers::spawn_app_with($crate::helpers::Store::Mysql, vars).await else { return };
                    $body
                }
            )*
        }
    };
}
