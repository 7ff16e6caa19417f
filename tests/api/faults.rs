//! Faults no request can cause, injected through the workers' hooks: a cleanse whose output
//! is damaged after it was written fails its integrity checks and publishes nothing (or, when
//! the plan says so, publishes with the failed checks in its manifest); a cleanse cancelled
//! after it published its versions removes them, also when the cancellation lands after the
//! worker's last look at the job; a run whose lease ran out records nothing once its job was
//! claimed again, by this same process too.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agensium::jobs::{Hooks, JobHook};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use crate::helpers::{Store, TestApp, spawn_app_hooked};
use crate::jobs::{finished, wait_for};

/// Seven rows; the one without a name is quarantined, the duplicate by email removed.
const MESSY: &str = "id,name,email,amount
1,Ada Lovelace,ADA@Example.com,10.5
2,Grace Hopper,grace@example.com,N/A
3,Ada Lovelace,ada@example.com,10.5
4,Alan Turing,alan@example.com,abc
5,,kat@example.com,7
6,Edsger Dijkstra,edsger@example.com,12
7,Barbara Liskov,barbara@example.com,9
";

const RUN: &str = "mutation($input: RunToolInput!) { runTool(input: $input) { id } }";
const RESULT: &str = "query($id: ID!) { job(id: $id) { status error { code message } output { id }
    report { cleanse { rowsOut checks { name passed message } } } } }";
const VERSIONS: &str = "query($id: ID!) { dataset(id: $id) { versions { id name } } }";
const CANCEL: &str = "mutation($id: ID!) { cancelJob(id: $id) { status cancelRequested } }";
const ALL: &str = "{ datasets(first: 50) { nodes { name } } }";

fn input(dataset: &Value, writeback: Value) -> Value {
    json!({ "input": { "toolId": "clean-my-data", "datasetId": dataset["id"], "parameters": {
        "quarantine-agent": { "required_columns": ["name"] },
        "type-fixer": { "columns": { "amount": "float" } },
        "duplicate-resolver": { "mode": "email_case" },
        "cleanse-writeback": writeback,
    } } })
}

async fn names(app: &TestApp, token: &str) -> Vec<String> {
    let body = app.graphql(Some(token), ALL, json!({})).await;
    let mut names: Vec<String> = body["data"]["datasets"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// Starts the cleanse of `dataset` and waits until its job reaches the test's hook; its id.
async fn run_until_held(
    app: &TestApp,
    token: &str,
    dataset: &Value,
    reached: &mut mpsc::UnboundedReceiver<agensium::domain::JobId>,
) -> Value {
    let body = app.graphql(Some(token), RUN, input(dataset, json!({}))).await;
    let id = body["data"]["runTool"]["id"].clone();
    let job = tokio::time::timeout(Duration::from_secs(60), reached.recv())
        .await
        .expect("the job reaches the hook")
        .unwrap();
    assert_eq!(job.to_string(), id.as_str().unwrap_or_else(|| panic!("{body}")));
    id
}

/// The cancelled cleanse `id` of `dataset` ended CANCELLED with no output or report, and
/// left no version, dataset or file behind.
async fn ended_cancelled_keeping_nothing(
    app: &TestApp,
    token: &str,
    id: &Value,
    dataset: &Value,
    files_before: usize,
) {
    let job = wait_for(app, token, id, finished).await;
    assert_eq!(job["status"], "CANCELLED", "{job}");
    let body = app.graphql(Some(token), RESULT, json!({ "id": id })).await;
    assert_eq!(body["data"]["job"]["output"], Value::Null, "{body}");
    assert_eq!(body["data"]["job"]["report"], Value::Null, "{body}");
    let versions = app.graphql(Some(token), VERSIONS, json!({ "id": dataset["id"] })).await;
    assert_eq!(versions["data"]["dataset"]["versions"].as_array().unwrap().len(), 1, "{versions}");
    assert_eq!(names(app, token).await, ["people.csv"]);
    assert_eq!(app.files_under("datasets").len(), files_before, "{:?}", app.files_under("datasets"));
}

/// Drops the last row of the cleaned file, as a faulty disk or writer could.
fn drop_a_row(output: &Path) {
    let data = output.join("data.parquet");
    let damaged = output.join("damaged.parquet");
    let conn = duckdb::Connection::open_in_memory().unwrap();
    let rows: i64 =
        conn.query_row(&format!("SELECT count(*) FROM '{}'", data.display()), [], |r| r.get(0)).unwrap();
    conn.execute_batch(&format!(
        "COPY (SELECT * FROM '{}' LIMIT {}) TO '{}' (FORMAT parquet)",
        data.display(),
        rows - 1,
        damaged.display()
    ))
    .unwrap();
    std::fs::rename(&damaged, &data).unwrap();
}

async fn a_damaged_output_fails_its_checks_and_nothing_is_published(store: Store) {
    let hooks = Hooks { cleansed: Some(Arc::new(drop_a_row)), ..Hooks::default() };
    let Some(app) = spawn_app_hooked(store, &[], hooks).await else { return };
    let token = app.token_for("ada@example.com").await;
    let dataset = app.upload_ok(&token, "people.csv", MESSY.as_bytes()).await;

    let body = app.graphql(Some(&token), RUN, input(&dataset, json!({}))).await;
    let id = body["data"]["runTool"]["id"].clone();
    assert!(id.is_string(), "{body}");
    let job = wait_for(&app, &token, &id, finished).await;
    assert_eq!(job["status"], "FAILED", "{job}");
    let body = app.graphql(Some(&token), RESULT, json!({ "id": id })).await;
    let job = &body["data"]["job"];
    assert_eq!(job["error"]["code"], "INTEGRITY_CHECK_FAILED", "{body}");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(message.contains("nothing was published"), "{message}");
    assert!(message.contains("row_accounting: 7 rows in = "), "{message}");
    assert_eq!(job["output"], Value::Null, "{body}");
    let versions = app.graphql(Some(&token), VERSIONS, json!({ "id": dataset["id"] })).await;
    assert_eq!(versions["data"]["dataset"]["versions"].as_array().unwrap().len(), 1, "{versions}");
    assert_eq!(names(&app, &token).await, ["people.csv"]);

    // A plan that publishes despite failed checks says which failed in its manifest.
    let body = app.graphql(Some(&token), RUN, input(&dataset, json!({ "fail_on_check": false }))).await;
    let id = body["data"]["runTool"]["id"].clone();
    let job = wait_for(&app, &token, &id, finished).await;
    assert_eq!(job["status"], "COMPLETED", "{job}");
    let body = app.graphql(Some(&token), RESULT, json!({ "id": id })).await;
    let cleanse = &body["data"]["job"]["report"]["cleanse"];
    let failed: Vec<&str> = cleanse["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["row_accounting"], "{body}");
    assert!(body["data"]["job"]["output"]["id"].is_string(), "{body}");
    let check = cleanse["checks"].as_array().unwrap().iter().find(|c| c["name"] == "row_accounting").unwrap();
    let out = cleanse["rowsOut"].as_f64().unwrap() as u64;
    assert!(out > 0);
    let expected = format!("the written file has {} rows", out - 1);
    assert!(check["message"].as_str().unwrap().ends_with(&expected), "{check}");
    assert_eq!(
        names(&app, &token).await,
        ["people (cleaned).csv", "people (quarantined rows).csv", "people.csv"]
    );
}

/// A hook that tells the test which job reached it, then holds the job until the test lets go.
fn holding_hook() -> (JobHook, mpsc::UnboundedReceiver<agensium::domain::JobId>, Arc<Notify>) {
    let (reached_tx, reached) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let reached_tx = Arc::new(Mutex::new(reached_tx));
    let gate = release.clone();
    let hook: JobHook = Arc::new(move |job| {
        let _ = reached_tx.lock().unwrap().send(job);
        let gate = gate.clone();
        Box::pin(async move { gate.notified().await })
    });
    (hook, reached, release)
}

/// Hooks that hold a job once it has published its versions.
fn held_after_publishing() -> (Hooks, mpsc::UnboundedReceiver<agensium::domain::JobId>, Arc<Notify>) {
    let (hook, reached, release) = holding_hook();
    (Hooks { published: Some(hook), ..Hooks::default() }, reached, release)
}

/// Hooks that hold a job right before its end is recorded (after the worker's last look at it).
fn held_before_the_end() -> (Hooks, mpsc::UnboundedReceiver<agensium::domain::JobId>, Arc<Notify>) {
    let (hook, reached, release) = holding_hook();
    (Hooks { finishing: Some(hook), ..Hooks::default() }, reached, release)
}

async fn a_cleanse_cancelled_after_publishing_removes_what_it_published(store: Store) {
    let (hooks, mut reached, release) = held_after_publishing();
    let Some(app) = spawn_app_hooked(store, &[], hooks).await else { return };
    let token = app.token_for("ada@example.com").await;
    let dataset = app.upload_ok(&token, "people.csv", MESSY.as_bytes()).await;
    let files_before = app.files_under("datasets").len();

    let id = run_until_held(&app, &token, &dataset, &mut reached).await;

    // Published: the new version and the quarantined rows are there while the job runs.
    let versions = app.graphql(Some(&token), VERSIONS, json!({ "id": dataset["id"] })).await;
    assert_eq!(versions["data"]["dataset"]["versions"].as_array().unwrap().len(), 2, "{versions}");
    assert_eq!(
        names(&app, &token).await,
        ["people (cleaned).csv", "people (quarantined rows).csv", "people.csv"]
    );
    assert!(app.files_under("datasets").len() > files_before);

    let body = app.graphql(Some(&token), CANCEL, json!({ "id": id })).await;
    assert_eq!(body["data"]["cancelJob"]["cancelRequested"], true, "{body}");
    release.notify_one();
    ended_cancelled_keeping_nothing(&app, &token, &id, &dataset, files_before).await;
}

async fn a_busy_instance_still_ends_the_jobs_of_workers_that_died(store: Store) {
    // The one slot is held by a cleanse waiting in its hook.
    let (hooks, mut reached, release) = held_after_publishing();
    let vars = [("WORKER_CONCURRENCY", "1"), ("JOB_POLL_INTERVAL", "200ms"), ("JOB_MAX_ATTEMPTS", "2")];
    let Some(app) = spawn_app_hooked(store, &vars, hooks).await else { return };
    let token = app.token_for("ada@example.com").await;
    let dataset = app.upload_ok(&token, "people.csv", MESSY.as_bytes()).await;
    let busy = run_until_held(&app, &token, &dataset, &mut reached).await;

    // Two more jobs, which another worker took and then died running: one whose cancellation
    // was asked for, one with no attempts left. Their leases have run out.
    let profile = json!({ "input": { "toolId": "profile-my-data", "datasetId": dataset["id"] } });
    let mut lost = Vec::new();
    for _ in 0..2 {
        let body = app.graphql(Some(&token), RUN, profile.clone()).await;
        lost.push(body["data"]["runTool"]["id"].as_str().unwrap().to_string());
    }
    let past = match store {
        Store::Sqlite => "2000-01-01T00:00:00.000000Z",
        Store::Mysql => "2000-01-01 00:00:00",
    };
    app.execute_sql(&format!(
        "UPDATE jobs SET status = 'RUNNING', worker_id = 'a-dead-worker', lease_expires_at = '{past}', \
         started_at = '{past}', attempts = 1, cancel_requested = 1 WHERE id = '{}';
         UPDATE jobs SET status = 'RUNNING', worker_id = 'a-dead-worker', lease_expires_at = '{past}', \
         started_at = '{past}', attempts = 2 WHERE id = '{}'",
        lost[0], lost[1]
    ))
    .await;
    let cancelled = wait_for(&app, &token, &json!(lost[0]), finished).await;
    assert_eq!(cancelled["status"], "CANCELLED", "{cancelled}");
    let failed = wait_for(&app, &token, &json!(lost[1]), finished).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    let body = app.graphql(Some(&token), RESULT, json!({ "id": lost[1] })).await;
    assert_eq!(body["data"]["job"]["error"]["code"], "WORKER_LOST", "{body}");
    // All the while the slot's own job was still running.
    let body = app.graphql(Some(&token), RESULT, json!({ "id": busy })).await;
    assert_eq!(body["data"]["job"]["status"], "RUNNING", "{body}");
    release.notify_one();
    let job = wait_for(&app, &token, &busy, finished).await;
    assert_eq!(job["status"], "COMPLETED", "{job}");
}

async fn a_cancel_landing_as_the_job_ends_wins(store: Store) {
    // The worker has read the job for the last time and holds it right before recording its
    // end: the cancellation arrives in that window.
    let (hooks, mut reached, release) = held_before_the_end();
    let Some(app) = spawn_app_hooked(store, &[], hooks).await else { return };
    let token = app.token_for("ada@example.com").await;
    let dataset = app.upload_ok(&token, "people.csv", MESSY.as_bytes()).await;
    let files_before = app.files_under("datasets").len();

    let id = run_until_held(&app, &token, &dataset, &mut reached).await;
    let body = app.graphql(Some(&token), CANCEL, json!({ "id": id })).await;
    assert_eq!(body["data"]["cancelJob"]["cancelRequested"], true, "{body}");
    release.notify_one();

    ended_cancelled_keeping_nothing(&app, &token, &id, &dataset, files_before).await;

    // Without a cancellation the same hook lets the job complete.
    let id = run_until_held(&app, &token, &dataset, &mut reached).await;
    release.notify_one();
    let job = wait_for(&app, &token, &id, finished).await;
    assert_eq!(job["status"], "COMPLETED", "{job}");
}

async fn a_run_that_outlived_its_lease_records_nothing_once_its_job_is_claimed_again(store: Store) {
    // The worker holds the job right before recording its end; its lease runs out meanwhile
    // (as when the machine pauses), and this same process, with a slot free, claims the job
    // again: a second attempt, which reaches the hook too.
    let (hooks, mut reached, release) = held_before_the_end();
    let vars = [("WORKER_CONCURRENCY", "2"), ("JOB_POLL_INTERVAL", "200ms")];
    let Some(app) = spawn_app_hooked(store, &vars, hooks).await else { return };
    let token = app.token_for("ada@example.com").await;
    let dataset = app.upload_ok(&token, "people.csv", MESSY.as_bytes()).await;
    let id = run_until_held(&app, &token, &dataset, &mut reached).await;
    let past = match store {
        Store::Sqlite => "2000-01-01T00:00:00.000000Z",
        Store::Mysql => "2000-01-01 00:00:00",
    };
    app.execute_sql(&format!(
        "UPDATE jobs SET lease_expires_at = '{past}' WHERE id = '{}'",
        id.as_str().unwrap()
    ))
    .await;
    let again = tokio::time::timeout(Duration::from_secs(60), reached.recv())
        .await
        .expect("the job is claimed again and reaches the hook")
        .unwrap();
    assert_eq!(again.to_string(), id.as_str().unwrap());

    // The first attempt goes on (the first waiter is woken first): the job is no longer its
    // own, so it records nothing and removes what it published.
    release.notify_one();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let body = app.graphql(Some(&token), RESULT, json!({ "id": id })).await;
        assert_eq!(body["data"]["job"]["status"], "RUNNING", "the first attempt ended the job: {body}");
    }
    release.notify_one();
    let job = wait_for(&app, &token, &id, finished).await;
    assert_eq!(job["status"], "COMPLETED", "{job}");
    let body = app.graphql(Some(&token), RESULT, json!({ "id": id })).await;
    let output = body["data"]["job"]["output"]["id"].clone();
    let versions = app.graphql(Some(&token), VERSIONS, json!({ "id": dataset["id"] })).await;
    let versions = versions["data"]["dataset"]["versions"].as_array().unwrap().clone();
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert!(versions.iter().any(|v| v["id"] == output), "the output is a version: {versions:?} {body}");
    assert_eq!(
        names(&app, &token).await,
        ["people (cleaned).csv", "people (quarantined rows).csv", "people.csv"]
    );
}

macro_rules! on_both_stores {
    ($($name:ident),*) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::helpers::Store::Sqlite).await
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::helpers::Store::Mysql).await
                }
            )*
        }
    };
}

on_both_stores!(
    a_damaged_output_fails_its_checks_and_nothing_is_published,
    a_cleanse_cancelled_after_publishing_removes_what_it_published,
    a_busy_instance_still_ends_the_jobs_of_workers_that_died,
    a_cancel_landing_as_the_job_ends_wins,
    a_run_that_outlived_its_lease_records_nothing_once_its_job_is_claimed_again
);
