//! Jobs through the API: the registry, runTool with bad input, a profile followed over
//! WebSocket to the end, cancellation, queue positions, tenancy, and datasets in use.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::both_stores;
use crate::helpers::{TestApp, error_code};

const RUN: &str = "mutation($input: RunToolInput!) { runTool(input: $input) { id status progress toolId agents queuePosition parameters } }";
pub const JOB: &str = "query($id: ID!) { job(id: $id) { id status progress stage attempts cancelRequested error { code message } startedAt finishedAt } }";

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn run_profile(app: &TestApp, token: &str, dataset: &Value, parameters: Value) -> Value {
    let body = app
        .graphql(
            Some(token),
            RUN,
            json!({ "input": { "toolId": "profile-my-data", "datasetId": dataset["id"], "parameters": parameters } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["runTool"].clone()
}

/// Polls a job until `done` holds for it (or fails the test after a minute).
pub async fn wait_for(app: &TestApp, token: &str, id: &Value, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = app.graphql(Some(token), JOB, json!({ "id": id })).await;
        let job = body["data"]["job"].clone();
        if done(&job) {
            return job;
        }
        assert!(Instant::now() < deadline, "job never got there: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn finished(job: &Value) -> bool {
    matches!(job["status"].as_str(), Some("COMPLETED" | "FAILED" | "CANCELLED"))
}

/// A Parquet file of `rows` rows of random numbers and text: slow enough to profile that a
/// test can cancel it mid-way.
pub fn big_parquet(rows: u64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.parquet");
    let conn = duckdb::Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!(
        "SELECT setseed(0.5); COPY (SELECT range AS id, random() * 1000 AS x, random() AS y, \
         md5(range::VARCHAR) AS label FROM range({rows})) TO '{}' (FORMAT parquet)",
        path.display()
    ))
    .unwrap();
    std::fs::read(path).unwrap()
}

pub async fn connect(app: &TestApp, protocol: &str, token: &str) -> Socket {
    let mut request = format!("ws://127.0.0.1:{}/graphql", app.port).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", protocol.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("WebSocket upgrade");
    let init =
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    socket.send(Message::text(init.to_string())).await.unwrap();
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    socket
}

pub async fn next(socket: &mut Socket) -> Option<Value> {
    crate::websocket::next_within(socket, Duration::from_secs(60)).await
}

/// Subscribes to a job's progress and collects every snapshot until the server completes
/// the subscription.
pub async fn follow(socket: &mut Socket, protocol: &str, job_id: &Value) -> (Vec<Value>, Vec<Value>) {
    let start = if protocol == "graphql-ws" { "start" } else { "subscribe" };
    let query = "subscription($id: ID!) { jobProgress(jobId: $id) { id status progress stage } }";
    let message =
        json!({ "id": "p", "type": start, "payload": { "query": query, "variables": { "id": job_id } } });
    socket.send(Message::text(message.to_string())).await.unwrap();
    let (mut snapshots, mut errors) = (Vec::new(), Vec::new());
    loop {
        let message = next(socket).await.expect("subscription completes before the socket closes");
        match message["type"].as_str() {
            Some("next" | "data") if message["payload"]["errors"].is_null() => {
                snapshots.push(message["payload"]["data"]["jobProgress"].clone())
            }
            Some("next" | "data") => errors.push(message["payload"]["errors"][0].clone()),
            Some("error") => {
                errors.push(message["payload"][0].clone());
                return (snapshots, errors);
            }
            Some("complete") => return (snapshots, errors),
            other => panic!("unexpected message {other:?}: {message}"),
        }
    }
}

both_stores! {
    async fn the_registry_describes_every_parameter(app) {
        let token = app.token_for("ada@example.com").await;
        let body = app.graphql(Some(&token), "{ tools { id name agents { id parameters { name type default allowed minimum maximum description } } } tool(id: \"profile-my-data\") { fileRequirements } }", json!({})).await;
        let tool = &body["data"]["tools"][0];
        assert_eq!(tool["id"], "profile-my-data", "{body}");
        let parameters = tool["agents"][0]["parameters"].as_array().unwrap();
        let top_n = parameters.iter().find(|p| p["name"] == "top_n_values").unwrap();
        assert_eq!((top_n["type"].as_str(), top_n["default"].as_i64(), top_n["minimum"].as_f64()), (Some("integer"), Some(10), Some(1.0)));
        assert!(parameters.iter().all(|p| !p["description"].as_str().unwrap().is_empty()));
        assert_eq!(body["data"]["tool"]["fileRequirements"]["baseline"], "optional");
        // A parameter without a default says null (the field is nullable); each type is one
        // the field's description explains.
        let cleanse = body["data"]["tools"].as_array().unwrap().iter().find(|t| t["id"] == "clean-my-data").unwrap();
        let all: Vec<&Value> = body["data"]["tools"].as_array().unwrap().iter()
            .flat_map(|t| t["agents"].as_array().unwrap()).flat_map(|a| a["parameters"].as_array().unwrap()).collect();
        let output_name = cleanse["agents"].as_array().unwrap().iter()
            .flat_map(|a| a["parameters"].as_array().unwrap()).find(|p| p["name"] == "output_name").unwrap();
        assert!(output_name["default"].is_null(), "{output_name}");
        let described = ["integer", "number", "boolean", "enum", "string", "strings", "columns", "column_map", "column_values", "ranges", "patterns", "value_maps", "units", "tests"];
        assert!(all.iter().all(|p| described.contains(&p["type"].as_str().unwrap())), "{all:?}");
        let schema = app.graphql(Some(&token), "{ __type(name: \"ParameterSpec\") { fields { name description type { kind } } } }", json!({})).await;
        let fields = schema["data"]["__type"]["fields"].as_array().unwrap();
        let type_doc = fields.iter().find(|f| f["name"] == "type").unwrap()["description"].as_str().unwrap();
        assert!(described.iter().all(|t| type_doc.contains(&format!("`{t}`"))), "{type_doc}");
        assert_eq!(fields.iter().find(|f| f["name"] == "default").unwrap()["type"]["kind"], "SCALAR");
        let (status, anonymous) = app.post_graphql(None, "{ tools { id } }", json!({})).await;
        assert_eq!((status, error_code(&anonymous)), (200, "UNAUTHENTICATED"));
    }

    async fn bad_run_requests_name_the_path_and_queue_nothing(app) {
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "a.csv", b"a,b\n1,2\n").await;
        let cases = [
            (json!({ "toolId": "no-such-tool", "datasetId": dataset["id"] }), "toolId"),
            (json!({ "toolId": "profile-my-data", "datasetId": dataset["id"], "agents": ["nobody"] }), "agents"),
            (json!({ "toolId": "profile-my-data", "datasetId": dataset["id"], "parameters": { "unified-profiler": { "top_n_values": "ten" } } }), "unified-profiler.top_n_values"),
            (json!({ "toolId": "profile-my-data", "datasetId": dataset["id"], "parameters": { "unified-profiler": { "typo": 1 } } }), "unified-profiler.typo"),
            (json!({ "toolId": "profile-my-data", "datasetId": dataset["id"], "parameters": { "unified-profiler": { "histogram_bins": 100000 } } }), "unified-profiler.histogram_bins"),
        ];
        for (input, path) in cases {
            let body = app.graphql(Some(&token), RUN, json!({ "input": input })).await;
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
            assert_eq!(body["errors"][0]["extensions"]["field"], path, "{body}");
        }
        let body = app.graphql(Some(&token), RUN, json!({ "input": { "toolId": "no-such-tool", "datasetId": dataset["id"] } })).await;
        assert_eq!(body["errors"][0]["extensions"]["allowed"], json!(["profile-my-data", "clean-my-data"]));
        let missing = app.graphql(Some(&token), RUN, json!({ "input": { "toolId": "profile-my-data", "datasetId": "00000000-0000-7000-8000-000000000000" } })).await;
        assert_eq!(error_code(&missing), "NOT_FOUND");
        let jobs = app.graphql(Some(&token), "{ jobs { totalCount } }", json!({})).await;
        assert_eq!(jobs["data"]["jobs"]["totalCount"], 0, "no job was created");
    }

    async fn a_profile_streams_its_progress_and_reports_exact_statistics(app) {
        let token = app.token_for("ada@example.com").await;
        let csv = b"id,amount,email,day\n1,10,a@example.com,2024-01-01\n2,20,b@example.com,2024-01-02\n3,30,c@example.com,2024-01-03\n4,40,d@example.com,2024-01-04\n4,40,d@example.com,2024-01-04\n";
        let dataset = app.upload_ok(&token, "sales.csv", csv).await;
        let job = run_profile(&app, &token, &dataset, json!({ "unified-profiler": { "top_n_values": 3 } })).await;
        assert_eq!(job["toolId"], "profile-my-data");
        assert_eq!(job["agents"], json!(["unified-profiler", "score-risk", "test-coverage-agent", "readiness-rater"]), "every agent that needs no baseline");
        assert_eq!(job["parameters"]["unified-profiler"]["top_n_values"], 3);
        assert_eq!(job["parameters"]["unified-profiler"]["histogram_bins"], 20, "defaults are filled in");

        // Both subprotocols follow the same job to its end.
        let mut modern = connect(&app, "graphql-transport-ws", &token).await;
        let mut legacy = connect(&app, "graphql-ws", &token).await;
        let ((snapshots, errors), (legacy_snapshots, legacy_errors)) =
            tokio::join!(follow(&mut modern, "graphql-transport-ws", &job["id"]), follow(&mut legacy, "graphql-ws", &job["id"]));
        assert!(errors.is_empty() && legacy_errors.is_empty(), "{errors:?} {legacy_errors:?}");
        for snapshots in [&snapshots, &legacy_snapshots] {
            let last = snapshots.last().expect("at least one snapshot");
            assert_eq!((last["status"].as_str(), last["progress"].as_f64()), (Some("COMPLETED"), Some(100.0)), "{snapshots:?}");
            let progress: Vec<f64> = snapshots.iter().map(|s| s["progress"].as_f64().unwrap()).collect();
            assert!(progress.windows(2).all(|w| w[0] <= w[1]), "progress went backwards: {progress:?}");
        }

        let query = "query($id: ID!) { job(id: $id) { status finishedAt report { profile { rowCount columnCount duplicateRowCount qualityScore grade quality { completeness validity uniqueness consistency } alerts { code column } columns { name type semanticType nullCount distinctCount min max mean stddev median q25 q75 zeros negatives invalidCount top: topValues(limit: 2) { value count } all: topValues(limit: 10) { value count } histogram(bins: 3) { lower upper count } fine: histogram(bins: 6) { count } } } agents { agentId status summaryMetrics alerts { code } recommendations { code } parameters } } } }";
        let body = app.graphql(Some(&token), query, json!({ "id": job["id"] })).await;
        assert!(body["errors"].is_null(), "{body}");
        let profile = &body["data"]["job"]["report"]["profile"];
        assert_eq!((profile["rowCount"].as_f64(), profile["columnCount"].as_i64()), (Some(5.0), Some(4)));
        assert_eq!(profile["duplicateRowCount"], 1.0);
        let column = |name: &str| profile["columns"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();
        let amount = column("amount");
        // amount = 10, 20, 30, 40, 40: mean 28, sample variance (324+64+4+144+144)/4 = 170.
        assert_eq!(amount["mean"].as_f64(), Some(28.0));
        assert!((amount["stddev"].as_f64().unwrap() - 170f64.sqrt()).abs() < 1e-9, "{amount}");
        assert_eq!((amount["median"].as_f64(), amount["q25"].as_f64(), amount["q75"].as_f64()), (Some(30.0), Some(20.0), Some(40.0)));
        assert_eq!((amount["min"].as_str(), amount["max"].as_str()), (Some("10"), Some("40")));
        assert_eq!((amount["distinctCount"].as_f64(), amount["nullCount"].as_f64(), amount["zeros"].as_f64(), amount["negatives"].as_f64()), (Some(4.0), Some(0.0), Some(0.0), Some(0.0)));
        assert_eq!(amount["top"], json!([{ "value": "40", "count": 2.0 }, { "value": "10", "count": 1.0 }]));
        assert_eq!(amount["all"].as_array().unwrap().len(), 4, "every value, computed beyond the stored three");
        // Three equal-width bins over [10, 40]: [10,20) [20,30) [30,40].
        assert_eq!(amount["histogram"], json!([
            { "lower": 10.0, "upper": 20.0, "count": 1.0 },
            { "lower": 20.0, "upper": 30.0, "count": 1.0 },
            { "lower": 30.0, "upper": 40.0, "count": 3.0 },
        ]));
        assert_eq!(amount["fine"].as_array().unwrap().iter().map(|b| b["count"].as_f64().unwrap()).sum::<f64>(), 5.0);
        let email = column("email");
        assert_eq!(email["semanticType"], "email", "{email}");
        assert_eq!(email["invalidCount"], 0.0);
        assert_eq!(column("day")["type"], "DATE");
        let quality = &profile["quality"];
        assert_eq!(quality["uniqueness"].as_f64(), Some(80.0), "one row in five is a duplicate");
        assert_eq!(quality["completeness"].as_f64(), Some(100.0));
        let agent = &body["data"]["job"]["report"]["agents"][0];
        assert_eq!((agent["agentId"].as_str(), agent["status"].as_str()), (Some("unified-profiler"), Some("success")));
        assert_eq!(agent["summaryMetrics"]["duplicateRowCount"], 1);
        assert_eq!(agent["parameters"]["top_n_values"], 3);
        assert!(profile["alerts"].as_array().unwrap().iter().any(|a| a["code"] == "DUPLICATE_ROWS"), "{profile}");

        let listed = app.graphql(Some(&token), "{ done: jobs(status: COMPLETED, toolId: \"profile-my-data\") { totalCount nodes { id } } queued: jobs(status: QUEUED) { totalCount } }", json!({})).await;
        assert_eq!(listed["data"]["done"]["nodes"], json!([{ "id": job["id"] }]), "{listed}");
        assert_eq!(listed["data"]["queued"]["totalCount"], 0);
    }

    async fn jobs_are_private_to_their_owner(app) {
        let ada = app.token_for("ada@example.com").await;
        let bob = app.token_for("bob@example.com").await;
        let dataset = app.upload_ok(&ada, "a.csv", b"a\n1\n2\n").await;
        let job = run_profile(&app, &ada, &dataset, Value::Null).await;
        let body = app.graphql(Some(&bob), JOB, json!({ "id": job["id"] })).await;
        assert_eq!(error_code(&body), "NOT_FOUND");
        let body = app.graphql(Some(&bob), "mutation($id: ID!) { cancelJob(id: $id) { status } }", json!({ "id": job["id"] })).await;
        assert_eq!(error_code(&body), "NOT_FOUND");
        let body = app.graphql(Some(&bob), RUN, json!({ "input": { "toolId": "profile-my-data", "datasetId": dataset["id"] } })).await;
        assert_eq!(error_code(&body), "NOT_FOUND", "bob cannot profile ada's dataset");
        let mut socket = connect(&app, "graphql-transport-ws", &bob).await;
        let (snapshots, errors) = follow(&mut socket, "graphql-transport-ws", &job["id"]).await;
        assert!(snapshots.is_empty(), "{snapshots:?}");
        assert_eq!(errors[0]["extensions"]["code"], "NOT_FOUND", "{errors:?}");
        let listed = app.graphql(Some(&bob), "{ jobs { totalCount } }", json!({})).await;
        assert_eq!(listed["data"]["jobs"]["totalCount"], 0);
        wait_for(&app, &ada, &job["id"], finished).await;
    }

    async fn a_running_profile_is_cancelled_within_a_second(app, &[("DUCKDB_THREADS", "1")]) {
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "big.parquet", &big_parquet(3_000_000)).await;
        let job = run_profile(&app, &token, &dataset, Value::Null).await;
        let running = wait_for(&app, &token, &job["id"], |j| j["status"] == "RUNNING" && j["progress"].as_f64().unwrap_or(0.0) >= 5.0 || finished(j)).await;
        assert_eq!(running["status"], "RUNNING", "the profile finished before it could be cancelled: {running}");
        let asked = Instant::now();
        let body = app.graphql(Some(&token), "mutation($id: ID!) { cancelJob(id: $id) { status cancelRequested } }", json!({ "id": job["id"] })).await;
        assert_eq!(body["data"]["cancelJob"]["cancelRequested"], true, "{body}");
        let ended = wait_for(&app, &token, &job["id"], finished).await;
        let took = asked.elapsed();
        assert_eq!(ended["status"], "CANCELLED", "{ended}");
        assert!(took < Duration::from_millis(1500), "took {took:?}");
        let report = app.graphql(Some(&token), "query($id: ID!) { job(id: $id) { report { agents { agentId } } } }", json!({ "id": job["id"] })).await;
        assert_eq!(report["data"]["job"]["report"], Value::Null, "partial output is discarded");
        // The job's spill directory is gone.
        assert!(app.files_under("duckdb-tmp/jobs").is_empty());
        // Cancelling a finished job changes nothing.
        let again = app.graphql(Some(&token), "mutation($id: ID!) { cancelJob(id: $id) { status } }", json!({ "id": job["id"] })).await;
        assert_eq!(again["data"]["cancelJob"]["status"], "CANCELLED");
    }

    async fn histograms_of_other_bins_than_one_stored_bin_are_computed(app) {
        // A report of one bin per column (`histogram_bins: 1`) is not a constant column's:
        // asking for four bins counts four. The stored numbers read back exactly.
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "a.csv", b"x,y\n1,123456789.12345679\n2,123456789.12345679\n3,123456789.12345679\n4,123456789.12345679\n").await;
        let job = run_profile(&app, &token, &dataset, json!({ "unified-profiler": { "histogram_bins": 1 } })).await;
        let job = wait_for(&app, &token, &job["id"], finished).await;
        assert_eq!(job["status"], "COMPLETED", "{job}");
        let query = "query($id: ID!) { job(id: $id) { report { profile { columns { name mean stored: histogram(bins: 1) { count } four: histogram(bins: 4) { lower upper count } } } } } }";
        let body = app.graphql(Some(&token), query, json!({ "id": job["id"] })).await;
        let columns = &body["data"]["job"]["report"]["profile"]["columns"];
        assert_eq!(columns[0]["stored"], json!([{ "count": 4.0 }]), "{body}");
        let counts: Vec<f64> = columns[0]["four"].as_array().unwrap_or_else(|| panic!("{body}")).iter().map(|b| b["count"].as_f64().unwrap()).collect();
        assert_eq!(counts, [1.0, 1.0, 1.0, 1.0], "{body}");
        // y is constant: its one bin whatever the bins asked; its mean is its value.
        assert_eq!(columns[1]["four"], json!([{ "lower": 123456789.12345679, "upper": 123456789.12345679, "count": 4.0 }]), "{body}");
        assert_eq!(columns[1]["mean"].as_f64().map(f64::to_bits), Some(123456789.12345679f64.to_bits()), "{body}");
    }

    async fn progress_stops_when_the_sockets_token_expires(app, &[("SERVER_ROLE", "api")]) {
        // No worker: the job stays queued until it is cancelled, after the token expired.
        let token = app.token_for("ada@example.com").await;
        let me = app.graphql(Some(&token), "{ me { id } }", json!({})).await;
        let short = crate::helpers::forge_token(me["data"]["me"]["id"].as_str().unwrap(), jsonwebtoken::Algorithm::HS256, crate::helpers::SECRET_KEY, 2);
        let dataset = app.upload_ok(&token, "a.csv", b"a\n1\n").await;
        let job = run_profile(&app, &token, &dataset, Value::Null).await;
        let mut socket = connect(&app, "graphql-transport-ws", &short).await;
        let query = "subscription($id: ID!) { jobProgress(jobId: $id) { status dataset { name } } }";
        let start = json!({ "id": "p", "type": "subscribe", "payload": { "query": query, "variables": { "id": job["id"] } } });
        socket.send(Message::text(start.to_string())).await.unwrap();
        let first = next(&mut socket).await.unwrap();
        assert_eq!(first["payload"]["data"]["jobProgress"]["status"], "QUEUED", "{first}");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let cancelled = app.graphql(Some(&token), "mutation($id: ID!) { cancelJob(id: $id) { status } }", json!({ "id": job["id"] })).await;
        assert_eq!(cancelled["data"]["cancelJob"]["status"], "CANCELLED", "{cancelled}");
        // The change is not sent: the token is no longer good.
        let refused = next(&mut socket).await.unwrap();
        assert_eq!(refused["type"], "next", "{refused}");
        assert!(refused["payload"]["data"].is_null(), "{refused}");
        assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{refused}");
        assert_eq!(next(&mut socket).await.unwrap(), json!({ "id": "p", "type": "complete" }));
    }

    async fn a_user_may_have_only_so_many_jobs_queued_or_running(
        app,
        &[("SERVER_ROLE", "api"), ("MAX_ACTIVE_JOBS_PER_USER", "2")]
    ) {
        // No worker runs in this instance: jobs stay queued.
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "a.csv", b"a\n1\n").await;
        let first = run_profile(&app, &token, &dataset, Value::Null).await;
        run_profile(&app, &token, &dataset, Value::Null).await;
        let input = json!({ "input": { "toolId": "profile-my-data", "datasetId": dataset["id"] } });
        let refused = app.graphql(Some(&token), RUN, input.clone()).await;
        assert_eq!(error_code(&refused), "RATE_LIMITED", "{refused}");
        assert_eq!(refused["errors"][0]["extensions"]["maximum"], 2, "{refused}");
        let all = app.graphql(Some(&token), "{ jobs { totalCount } }", json!({})).await;
        assert_eq!(all["data"]["jobs"]["totalCount"], 2, "nothing was queued: {all}");
        // Another user's queue is their own.
        let other = app.token_for("bob@example.com").await;
        let theirs = app.upload_ok(&other, "b.csv", b"b\n2\n").await;
        run_profile(&app, &other, &theirs, Value::Null).await;
        // A job that ends makes room.
        let body = app.graphql(Some(&token), "mutation($id: ID!) { cancelJob(id: $id) { status } }", json!({ "id": first["id"] })).await;
        assert_eq!(body["data"]["cancelJob"]["status"], "CANCELLED", "{body}");
        let accepted = app.graphql(Some(&token), RUN, input).await;
        assert!(accepted["errors"].is_null(), "{accepted}");
    }

    async fn one_users_histograms_do_not_hold_back_anothers(app) {
        // Alice asks for 120 on-demand histograms in one request; Bob for one while hers run.
        // Each user computes one at a time, so Bob's starts at the next free turn instead of
        // queueing behind all of hers.
        let mut csv = (0..10).map(|c| format!("c{c}")).collect::<Vec<_>>().join(",");
        csv.push('\n');
        for r in 0..60_000u64 {
            let row: Vec<String> = (0..10u64).map(|c| ((r * 7919 + c * 104_729) % 100_003).to_string()).collect();
            csv.push_str(&row.join(","));
            csv.push('\n');
        }
        let mut profiled = Vec::new();
        for who in ["alice@example.com", "bob@example.com"] {
            let token = app.token_for(who).await;
            let dataset = app.upload_ok(&token, "numbers.csv", csv.as_bytes()).await;
            let job = run_profile(&app, &token, &dataset, json!({ "unified-profiler": { "histogram_bins": 20 } })).await;
            let done = wait_for(&app, &token, &job["id"], |j| j["status"] == "COMPLETED").await;
            assert_eq!(done["status"], "COMPLETED", "{done}");
            profiled.push((token, job["id"].clone()));
        }
        let aliases: String = (2..14).map(|b| format!(" h{b}: histogram(bins: {b}) {{ count }}")).collect();
        let heavy = format!("query($id: ID!) {{ job(id: $id) {{ report {{ profile {{ columns {{{aliases} }} }} }} }} }}");
        let light = "query($id: ID!) { job(id: $id) { report { profile { columns { histogram(bins: 7) { count } } } } } }";
        let ((alice, alice_job), (bob, bob_job)) = (&profiled[0], &profiled[1]);
        let started = Instant::now();
        let hers = app.graphql(Some(alice), &heavy, json!({ "id": alice_job }));
        let his = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let asked = Instant::now();
            let body = app.graphql(Some(bob), light, json!({ "id": bob_job })).await;
            (asked.elapsed(), body)
        };
        let (hers, (his_time, his)) = tokio::join!(hers, his);
        let her_time = started.elapsed();
        assert!(hers["errors"].is_null() && his["errors"].is_null(), "{hers} {his}");
        assert!(his_time * 3 < her_time, "Bob waited {his_time:?} of Alice's {her_time:?}");
    }

    async fn parallel_runs_do_not_pass_the_active_job_limit(
        app,
        &[("SERVER_ROLE", "api"), ("MAX_ACTIVE_JOBS_PER_USER", "3")]
    ) {
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "a.csv", b"a\n1\n").await;
        let input = json!({ "input": { "toolId": "profile-my-data", "datasetId": dataset["id"] } });
        let answers = futures_util::future::join_all((0..12).map(|_| app.graphql(Some(&token), RUN, input.clone()))).await;
        let accepted = answers.iter().filter(|a| a["errors"].is_null()).count();
        assert_eq!(accepted, 3, "{answers:?}");
        for refused in answers.iter().filter(|a| !a["errors"].is_null()) {
            assert_eq!(error_code(refused), "RATE_LIMITED", "{refused}");
        }
        let all = app.graphql(Some(&token), "{ jobs { totalCount } }", json!({})).await;
        assert_eq!(all["data"]["jobs"]["totalCount"], 3, "{all}");
    }

    async fn queued_jobs_show_their_position_and_hold_their_dataset(app, &[("SERVER_ROLE", "api")]) {
        // No worker runs in this instance: jobs stay queued.
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "a.csv", b"a\n1\n").await;
        let first = run_profile(&app, &token, &dataset, Value::Null).await;
        let second = run_profile(&app, &token, &dataset, Value::Null).await;
        assert_eq!((first["status"].as_str(), first["queuePosition"].as_i64()), (Some("QUEUED"), Some(0)));
        assert_eq!(second["queuePosition"], 1);
        // A list asks for every position at once (one read of the queue for the batch).
        let list = app.graphql(Some(&token), "{ jobs(status: QUEUED) { nodes { id queuePosition } } }", json!({})).await;
        let positions: Vec<(Value, Value)> = list["data"]["jobs"]["nodes"].as_array().unwrap_or_else(|| panic!("{list}")).iter().map(|j| (j["id"].clone(), j["queuePosition"].clone())).collect();
        assert_eq!(positions, vec![(second["id"].clone(), json!(1)), (first["id"].clone(), json!(0))], "newest first");
        let delete = "mutation($id: ID!) { deleteDataset(id: $id) }";
        let refused = app.graphql(Some(&token), delete, json!({ "id": dataset["id"] })).await;
        assert_eq!(error_code(&refused), "CONFLICT", "{refused}");
        assert!(app.graphql(Some(&token), "query($id: ID!) { dataset(id: $id) { id } }", json!({ "id": dataset["id"] })).await["errors"].is_null());
        for job in [&first, &second] {
            let body = app.graphql(Some(&token), "mutation($id: ID!) { cancelJob(id: $id) { status finishedAt } }", json!({ "id": job["id"] })).await;
            assert_eq!(body["data"]["cancelJob"]["status"], "CANCELLED", "{body}");
        }
        let deleted = app.graphql(Some(&token), delete, json!({ "id": dataset["id"] })).await;
        assert_eq!(deleted["data"]["deleteDataset"], true, "{deleted}");
    }
}
