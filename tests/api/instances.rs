//! Several processes on one metadata store and one storage: a worker process killed
//! mid-job, its job picked up again by another after the lease expires (or failed as
//! WORKER_LOST when no attempts are left), and progress followed on the API instance while
//! a worker in another process runs the job.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::both_stores;
use crate::helpers::{SECRET_KEY, TestApp};
use crate::jobs::{big_parquet, connect, finished, follow, run_profile, wait_for};

/// An `agensium serve --role worker` process on the test server's store and data directory.
struct Worker(Child);

impl Worker {
    fn start(app: &TestApp, max_attempts: u32) -> Worker {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(env!("CARGO_BIN_EXE_agensium"))
            .args(["serve", "--role", "worker"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("DATABASE_URL", &app.database_url)
            .env("DATA_DIR", app.data_dir.path())
            .env("SECRET_KEY", SECRET_KEY)
            .env("DUCKDB_MEMORY_LIMIT", "256MB")
            .env("DUCKDB_THREADS", "1")
            .env("JOB_LEASE", "2s")
            .env("JOB_POLL_INTERVAL", "200ms")
            .env("JOB_MAX_ATTEMPTS", max_attempts.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Worker(child)
    }

    /// SIGKILL: no chance to clean up or give the job back.
    fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Worker {
    /// SIGTERM, then waits for the process to exit.
    fn terminate(mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status().unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the worker did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn started(app: &TestApp, token: &str, job: &Value) -> Value {
    wait_for(app, token, &job["id"], |j| {
        j["status"] == "RUNNING" && j["progress"].as_f64().unwrap_or(0.0) >= 5.0 || finished(j)
    })
    .await
}

both_stores! {
    async fn a_killed_workers_job_is_finished_by_another_process(app, &[("SERVER_ROLE", "api")]) {
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "big.parquet", &big_parquet(3_000_000)).await;
        let first = Worker::start(&app, 3);
        let job = run_profile(&app, &token, &dataset, Value::Null).await;
        // Progress is followed on this (API) instance while another process runs the job.
        let mut socket = connect(&app, "graphql-transport-ws", &token).await;
        let job_id = job["id"].clone();
        let watcher = tokio::spawn(async move { follow(&mut socket, "graphql-transport-ws", &job_id).await });
        let running = started(&app, &token, &job).await;
        assert_eq!((running["status"].as_str(), running["attempts"].as_i64()), (Some("RUNNING"), Some(1)), "{running}");
        first.kill();
        let _second = Worker::start(&app, 3);
        let done = wait_for(&app, &token, &job["id"], finished).await;
        assert_eq!((done["status"].as_str(), done["attempts"].as_i64()), (Some("COMPLETED"), Some(2)), "{done}");
        let (snapshots, errors) = watcher.await.unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let progress: Vec<f64> = snapshots.iter().map(|s| s["progress"].as_f64().unwrap()).collect();
        assert!(progress.windows(2).all(|w| w[0] <= w[1]), "progress went backwards: {progress:?}");
        assert_eq!(snapshots.last().unwrap()["status"], "COMPLETED");
        assert!(snapshots.iter().any(|s| s["status"] == "RUNNING"), "{snapshots:?}");
    }

    async fn a_cancel_asked_of_a_worker_that_then_died_ends_with_no_worker_up(app, &[("SERVER_ROLE", "api")]) {
        // No worker process at all: the job's worker took it, was asked to cancel it, and
        // died before it could (its lease is over). The subscriber sees it end.
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "t.csv", b"a\n1\n").await;
        let job = run_profile(&app, &token, &dataset, Value::Null).await;
        let past = if app.database_url.starts_with("mysql") { "2000-01-01 00:00:00" } else { "2000-01-01T00:00:00.000000Z" };
        app.execute_sql(&format!(
            "UPDATE jobs SET status = 'RUNNING', worker_id = 'gone', attempts = 1, cancel_requested = 1, \
             started_at = '{past}', lease_expires_at = '{past}' WHERE id = '{}'",
            job["id"].as_str().unwrap()
        ))
        .await;
        let mut socket = connect(&app, "graphql-transport-ws", &token).await;
        let (snapshots, errors) =
            tokio::time::timeout(Duration::from_secs(20), follow(&mut socket, "graphql-transport-ws", &job["id"]))
                .await
                .expect("the subscription ends");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(snapshots.first().unwrap()["status"], "RUNNING", "{snapshots:?}");
        assert_eq!(snapshots.last().unwrap()["status"], "CANCELLED", "{snapshots:?}");
    }

    async fn a_job_whose_workers_keep_dying_fails_as_worker_lost(app, &[("SERVER_ROLE", "api")]) {
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "big.parquet", &big_parquet(3_000_000)).await;
        let first = Worker::start(&app, 1);
        let job = run_profile(&app, &token, &dataset, Value::Null).await;
        started(&app, &token, &job).await;
        first.kill();
        let asked = Instant::now();
        let _second = Worker::start(&app, 1);
        let ended = wait_for(&app, &token, &job["id"], finished).await;
        assert_eq!(ended["status"], "FAILED", "{ended}");
        assert_eq!(ended["error"]["code"], "WORKER_LOST", "{ended}");
        assert!(asked.elapsed() < Duration::from_secs(30));
        let body = app.graphql(Some(&token), "query($id: ID!) { job(id: $id) { finishedAt } }", json!({ "id": job["id"] })).await;
        assert!(body["data"]["job"]["finishedAt"].is_string(), "{body}");
    }

    async fn a_worker_stopped_with_sigterm_puts_its_job_back_in_the_queue(app, &[("SERVER_ROLE", "api")]) {
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "big.parquet", &big_parquet(3_000_000)).await;
        let worker = Worker::start(&app, 3);
        let job = run_profile(&app, &token, &dataset, Value::Null).await;
        let running = started(&app, &token, &job).await;
        assert_eq!(running["status"], "RUNNING", "{running}");
        assert!(worker.terminate().success());
        // Released, not failed, and the attempt is not counted.
        let body = app.graphql(Some(&token), "query($id: ID!) { job(id: $id) { status attempts queuePosition error { code } } }", json!({ "id": job["id"] })).await;
        let back = &body["data"]["job"];
        assert_eq!((back["status"].as_str(), back["attempts"].as_i64(), back["queuePosition"].as_i64()), (Some("QUEUED"), Some(0), Some(0)), "{body}");
        // The next worker runs it to the end.
        let _next = Worker::start(&app, 3);
        let done = wait_for(&app, &token, &job["id"], finished).await;
        assert_eq!((done["status"].as_str(), done["attempts"].as_i64()), (Some("COMPLETED"), Some(1)), "{done}");
    }
}
