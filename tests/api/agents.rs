//! Profile My Data's other agents through the API — drift against a baseline, personal-data
//! risk, data tests, readiness — and the report downloads (JSON, Excel, HTML).

use std::fmt::Write;

use serde_json::{Value, json};

use crate::both_stores;
use crate::helpers::{TestApp, error_code};
use crate::jobs::{finished, wait_for};

const RUN: &str = "mutation($input: RunToolInput!) { runTool(input: $input) { id agents } }";
const REPORT: &str = "query($id: ID!) { job(id: $id) { status error { code message } report { agents { agentId status executionTimeMs summaryMetrics alerts { code severity column message } issues { code column message } recommendations { code column } rowLevelIssues(first: 1000) { row column code message } parameters } } downloads { name format url sizeBytes expiresAt } } }";

/// Valid (Luhn) test card numbers.
const CARDS: [&str; 4] =
    ["4242 4242 4242 4242", "4111111111111111", "5555-5555-5555-4444", "378282246310005"];

/// Last month: 400 rows. `amount` is uniform on 0–99, `segment` spread evenly over four
/// values, `stable` uniform on 0–9.
fn baseline_csv() -> String {
    let mut csv = String::from("id,amount,segment,stable,email,card,old_col\n");
    for i in 1..=400 {
        let segment = ["a", "b", "c", "d"][i % 4];
        writeln!(csv, "{i},{},{segment},{},user{i}@example.com,{},1", i % 100, i % 10, CARDS[i % 4]).unwrap();
    }
    csv
}

/// This month: 500 rows. `amount` shifted up by 50, `segment` mostly "a", `stable` exactly as
/// before, `old_col` gone, `new_col` new, and row 500 repeats id 7.
fn current_csv() -> String {
    let mut csv = String::from("id,amount,segment,stable,email,card,new_col\n");
    for i in 1..=500 {
        let id = if i == 500 { 7 } else { i };
        let segment = if i % 10 < 7 { "a" } else { "b" };
        writeln!(csv, "{id},{},{segment},{},user{i}@example.com,{},2", i % 100 + 50, i % 10, CARDS[i % 4])
            .unwrap();
    }
    csv
}

async fn run(app: &TestApp, token: &str, input: Value) -> Value {
    let body = app.graphql(Some(token), RUN, json!({ "input": input })).await;
    assert!(body["errors"].is_null(), "{body}");
    let id = body["data"]["runTool"]["id"].clone();
    let job = wait_for(app, token, &id, finished).await;
    assert_eq!(job["status"], "COMPLETED", "{job}");
    let body = app.graphql(Some(token), REPORT, json!({ "id": id })).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["job"].clone()
}

fn agent<'a>(job: &'a Value, id: &str) -> &'a Value {
    job["report"]["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agentId"] == id)
        .unwrap_or_else(|| panic!("no {id} in {job}"))
}

fn drift_of<'a>(drift: &'a Value, column: &str) -> &'a Value {
    drift["summaryMetrics"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["column"] == column)
        .unwrap_or_else(|| panic!("no {column} in {drift}"))
}

both_stores! {
    async fn every_agent_runs_against_a_baseline_end_to_end(app) {
        let token = app.token_for("ada@example.com").await;
        let baseline = app.upload_ok(&token, "customers-may.csv", baseline_csv().as_bytes()).await;
        let current = app.upload_ok(&token, "customers-june.csv", current_csv().as_bytes()).await;
        let tests = json!([
            { "type": "unique", "column": "id" },
            { "type": "range", "column": "amount", "min": 0, "max": 120, "weight": 2 },
            { "type": "regex", "column": "email", "pattern": "user\\d+@example\\.com" },
        ]);
        let job = run(&app, &token, json!({
            "toolId": "profile-my-data",
            "datasetId": current["id"],
            "baselineDatasetId": baseline["id"],
            "parameters": { "test-coverage-agent": { "tests": tests, "suggest_tests": false } },
        })).await;
        let ids: Vec<&str> = job["report"]["agents"].as_array().unwrap().iter().map(|a| a["agentId"].as_str().unwrap()).collect();
        assert_eq!(ids, ["unified-profiler", "drift-detector", "score-risk", "test-coverage-agent", "readiness-rater"]);
        for agent in job["report"]["agents"].as_array().unwrap() {
            assert_eq!(agent["status"], "success", "{agent}");
            assert!(agent["executionTimeMs"].as_f64().unwrap() >= 0.0);
            assert!(agent["parameters"].is_object(), "parameters actually used: {agent}");
        }

        // Drift: the shifted column and the new category mix are detected; the unchanged
        // column is not; the schema and row count changes are reported.
        let drift = agent(&job, "drift-detector");
        let metrics = &drift["summaryMetrics"];
        assert_eq!((metrics["baselineRowCount"].as_u64(), metrics["currentRowCount"].as_u64()), (Some(400), Some(500)));
        assert_eq!((metrics["rowCountChange"].as_i64(), metrics["rowCountChangePercent"].as_f64()), (Some(100), Some(25.0)));
        let amount = drift_of(drift, "amount");
        assert_eq!((amount["test"].as_str(), amount["verdict"].as_str()), (Some("ks"), Some("drift")), "{amount}");
        assert!(amount["pValue"].as_f64().unwrap() < 0.05, "{amount}");
        // KS D: below 50 only the baseline has values; F_baseline(49) = 200/400, F_current(49) = 0.
        assert!((amount["statistic"].as_f64().unwrap() - 0.5).abs() < 1e-9, "{amount}");
        let stable = drift_of(drift, "stable");
        assert_eq!(stable["verdict"], "no_drift", "{stable}");
        assert_eq!(stable["statistic"].as_f64(), Some(0.0), "identical distributions: {stable}");
        assert!(stable["psi"].as_f64().unwrap().abs() < 1e-9, "{stable}");
        let segment = drift_of(drift, "segment");
        assert_eq!((segment["test"].as_str(), segment["verdict"].as_str()), (Some("chi_square"), Some("drift")), "{segment}");
        let codes: Vec<(&str, &str)> = drift["alerts"].as_array().unwrap().iter().map(|a| (a["code"].as_str().unwrap(), a["column"].as_str().unwrap_or(""))).collect();
        for expected in [("COLUMN_ADDED", "new_col"), ("COLUMN_REMOVED", "old_col"), ("DRIFT", "amount"), ("DRIFT", "segment"), ("ROW_COUNT_CHANGE", "")] {
            assert!(codes.contains(&expected), "{expected:?} missing from {codes:?}");
        }
        assert!(!codes.contains(&("DRIFT", "stable")), "{codes:?}");

        // Risk: emails and card numbers found, examples masked everywhere in the result.
        let risk = agent(&job, "score-risk");
        let columns = risk["summaryMetrics"]["columns"].as_array().unwrap();
        let kind = |name: &str| columns.iter().find(|c| c["column"] == name).map(|c| c["kind"].as_str().unwrap().to_string());
        assert_eq!(kind("email").as_deref(), Some("email"), "{risk}");
        assert_eq!(kind("card").as_deref(), Some("credit_card"), "{risk}");
        assert_eq!(kind("amount"), None, "{risk}");
        let text = risk.to_string();
        assert!(!text.contains("example.com") && !text.contains("4242 4242 4242 4242") && !text.contains("4111111111111111"), "raw personal data in {text}");
        assert!(risk["summaryMetrics"]["regulations"].as_array().unwrap().contains(&json!("GDPR")), "{risk}");
        assert!(risk["summaryMetrics"]["riskScore"].as_f64().unwrap() > 0.0);
        assert!(risk["alerts"].as_array().unwrap().iter().any(|a| a["code"] == "PII_DETECTED" && a["column"] == "card" && a["severity"] == "critical"), "{risk}");

        // Tests: exact failures, row numbers and the weighted score.
        let coverage = agent(&job, "test-coverage-agent");
        let tests = coverage["summaryMetrics"]["tests"].as_array().unwrap();
        assert_eq!(tests.len(), 3, "no suggestions asked for: {coverage}");
        let failing: Vec<u64> = tests.iter().map(|t| t["failing"].as_u64().unwrap()).collect();
        // amount = i % 100 + 50 > 120 for i % 100 in 71..=99: 29 values in each hundred.
        assert_eq!(failing, [1, 145, 0]);
        let score = coverage["summaryMetrics"]["testScore"].as_f64().unwrap();
        let expected = (100.0 * 499.0 / 500.0 + 2.0 * 100.0 * 355.0 / 500.0 + 100.0) / 4.0;
        assert!((score - expected).abs() < 1e-9, "{score} != {expected}");
        let rows = coverage["rowLevelIssues"].as_array().unwrap();
        assert!(rows.iter().any(|r| r["row"] == 500.0 && r["column"] == "id" && r["code"] == "DUPLICATE_VALUE"), "{coverage}");
        let out_of_range: Vec<f64> = rows.iter().filter(|r| r["code"] == "OUT_OF_RANGE").map(|r| r["row"].as_f64().unwrap()).collect();
        assert_eq!(out_of_range.len(), 100, "capped at max_failing_rows");
        assert_eq!(&out_of_range[..3], [71.0, 72.0, 73.0]);

        // Readiness: complete, consistent data is READY, with its components.
        let readiness = agent(&job, "readiness-rater");
        let m = &readiness["summaryMetrics"];
        assert_eq!(m["verdict"], "READY", "{readiness}");
        assert_eq!(m["completeness"].as_f64(), Some(100.0));
        assert!(m["reasons"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().contains("READY")));
    }

    async fn suggested_tests_come_from_the_profile(app) {
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "june.csv", current_csv().as_bytes()).await;
        let job = run(&app, &token, json!({ "toolId": "profile-my-data", "datasetId": dataset["id"], "agents": ["test-coverage-agent", "readiness-rater"] })).await;
        assert!(job["report"]["profile"].is_null(), "the profiler was not asked for");
        let coverage = agent(&job, "test-coverage-agent");
        let tests = coverage["summaryMetrics"]["tests"].as_array().unwrap();
        assert!(tests.iter().all(|t| t["source"] == "suggested"), "{coverage}");
        assert!(tests.iter().any(|t| t["type"] == "regex" && t["column"] == "email" && t["failing"] == 0), "{coverage}");
        assert!(tests.iter().any(|t| t["type"] == "range" && t["column"] == "amount"), "{coverage}");
        assert!(coverage["summaryMetrics"]["testScore"].as_f64().is_some());
        // The profiler's time: its own when it profiles; 0 when a later run takes its profile
        // from the cache (same version, same parameters).
        let other = app.upload_ok(&token, "july.csv", current_csv().as_bytes()).await;
        let first = run(&app, &token, json!({ "toolId": "profile-my-data", "datasetId": other["id"], "agents": ["unified-profiler"] })).await;
        let again = run(&app, &token, json!({ "toolId": "profile-my-data", "datasetId": other["id"], "agents": ["unified-profiler"] })).await;
        assert!(agent(&first, "unified-profiler")["executionTimeMs"].as_f64().unwrap() > 0.0, "{first}");
        assert_eq!(agent(&again, "unified-profiler")["executionTimeMs"], 0.0, "{again}");
    }

    async fn range_tests_compare_large_integers_exactly(app) {
        // Identifiers a double cannot tell apart (1.5e18 ± 1): the bounds keep their digits
        // from the request to DuckDB.
        let token = app.token_for("ada@example.com").await;
        let csv = "id\n1500000000000000001\n1500000000000000000\n1499999999999999999\n";
        let dataset = app.upload_ok(&token, "ids.csv", csv.as_bytes()).await;
        let tests = json!([{ "type": "range", "column": "id", "min": 1500000000000000001u64, "max": 1500000000000000001u64 }]);
        let job = run(&app, &token, json!({
            "toolId": "profile-my-data",
            "datasetId": dataset["id"],
            "agents": ["test-coverage-agent"],
            "parameters": { "test-coverage-agent": { "tests": tests, "suggest_tests": false } },
        })).await;
        let coverage = agent(&job, "test-coverage-agent");
        let test = &coverage["summaryMetrics"]["tests"][0];
        assert_eq!((test["checked"].as_u64(), test["failing"].as_u64()), (Some(3), Some(2)), "{coverage}");
        assert_eq!(test["min"], json!(1500000000000000001u64), "{coverage}");
    }

    async fn a_column_named_like_card_numbers_is_masked_when_only_the_profiler_ran(app) {
        // The profiler alone checks no values for personal data: the header `pan` says what
        // the column holds, and its one value (quoted by the constant-column alert) must not
        // reach a report or the co-pilot.
        let token = app.token_for("ada@example.com").await;
        let mut csv = String::from("id,pan,x\n");
        for i in 0..20 {
            csv.push_str(&format!("{i},4111111111111111,{}\n", i % 3));
        }
        let dataset = app.upload_ok(&token, "cards.csv", csv.as_bytes()).await;
        let job = run(&app, &token, json!({ "toolId": "profile-my-data", "datasetId": dataset["id"], "agents": ["unified-profiler"] })).await;
        for format in ["html", "xlsx"] {
            let link = job["downloads"].as_array().unwrap().iter().find(|d| d["format"] == format).unwrap().clone();
            let response = app.client.get(format!("{}{}", app.address, link["url"].as_str().unwrap())).send().await.unwrap();
            let bytes = response.bytes().await.unwrap().to_vec();
            let text = if format == "xlsx" {
                use std::io::Read;
                let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
                let mut all = String::new();
                for i in 0..archive.len() {
                    archive.by_index(i).unwrap().read_to_string(&mut all).unwrap();
                }
                all
            } else {
                String::from_utf8(bytes).unwrap()
            };
            assert!(!text.contains("4111111111111111"), "{format} shows the card number");
            assert!(text.contains("1111"), "{format} shows the masked value");
        }
        let ask = "mutation($input: AskCopilotInput!) { askCopilot(input: $input) { answer } }";
        let body = app.graphql(Some(&token), ask, json!({ "input": { "question": "what are the alerts?", "datasetId": dataset["id"] } })).await;
        let answer = body["data"]["askCopilot"]["answer"].as_str().unwrap_or_else(|| panic!("{body}"));
        assert!(answer.contains("pan:"), "alerts name their column: {answer}");
        assert!(!answer.contains("4111111111111111"), "{answer}");
    }

    async fn agent_requests_are_checked_against_the_dataset(app) {
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "june.csv", current_csv().as_bytes()).await;
        let refused = |body: &Value, field: &str| {
            assert_eq!(error_code(body), "BAD_USER_INPUT", "{body}");
            assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
        };
        let body = app.graphql(Some(&token), RUN, json!({ "input": { "toolId": "profile-my-data", "datasetId": dataset["id"], "agents": ["drift-detector"] } })).await;
        refused(&body, "baselineDatasetId");
        let body = app.graphql(Some(&token), RUN, json!({ "input": { "toolId": "profile-my-data", "datasetId": dataset["id"],
            "parameters": { "test-coverage-agent": { "tests": [{ "type": "unique", "column": "nope" }] } } } })).await;
        refused(&body, "test-coverage-agent.tests[0].column");
        assert!(body["errors"][0]["extensions"]["allowed"].as_array().unwrap().contains(&json!("amount")), "{body}");
        let body = app.graphql(Some(&token), RUN, json!({ "input": { "toolId": "profile-my-data", "datasetId": dataset["id"],
            "parameters": { "test-coverage-agent": { "tests": [{ "type": "range", "column": "segment", "min": 1 }] } } } })).await;
        refused(&body, "test-coverage-agent.tests[0].column");
        let body = app.graphql(Some(&token), RUN, json!({ "input": { "toolId": "profile-my-data", "datasetId": dataset["id"],
            "parameters": { "test-coverage-agent": { "tests": [{ "type": "regex", "column": "email", "pattern": "([a-z" }] } } } })).await;
        refused(&body, "test-coverage-agent.tests[0]");
        // Valid for the regex crate, refused by DuckDB's RE2 (at most 1,000 repetitions):
        // DuckDB, which runs the test, has the last word.
        let body = app.graphql(Some(&token), RUN, json!({ "input": { "toolId": "profile-my-data", "datasetId": dataset["id"],
            "parameters": { "test-coverage-agent": { "tests": [{ "type": "regex", "column": "email", "pattern": "[a-z]{1001}" }] } } } })).await;
        refused(&body, "test-coverage-agent.tests[0]");
        let body = app.graphql(Some(&token), RUN, json!({ "input": { "toolId": "profile-my-data", "datasetId": dataset["id"],
            "parameters": { "drift-detector": { "bins": 5 } } } })).await;
        refused(&body, "baselineDatasetId");
        let jobs = app.graphql(Some(&token), "{ jobs { totalCount } }", json!({})).await;
        assert_eq!(jobs["data"]["jobs"]["totalCount"], 0, "no job was created");
    }

    async fn reports_download_as_json_excel_and_html(app) {
        let token = app.token_for("ada@example.com").await;
        let baseline = app.upload_ok(&token, "may.csv", baseline_csv().as_bytes()).await;
        let current = app.upload_ok(&token, "june.csv", current_csv().as_bytes()).await;
        let job = run(&app, &token, json!({ "toolId": "profile-my-data", "datasetId": current["id"], "baselineDatasetId": baseline["id"] })).await;
        let downloads = job["downloads"].as_array().unwrap();
        let formats: Vec<&str> = downloads.iter().map(|d| d["format"].as_str().unwrap()).collect();
        assert_eq!(formats, ["json", "xlsx", "html"], "{job}");
        let get = |format: &str| {
            let link = downloads.iter().find(|d| d["format"] == format).unwrap().clone();
            let client = app.client.clone();
            let url = format!("{}{}", app.address, link["url"].as_str().unwrap());
            async move {
                let response = client.get(url).send().await.unwrap();
                assert_eq!(response.status().as_u16(), 200, "{link}");
                let headers = response.headers().clone();
                let bytes = response.bytes().await.unwrap().to_vec();
                assert_eq!(bytes.len() as f64, link["sizeBytes"].as_f64().unwrap(), "{link}");
                (headers, bytes)
            }
        };

        let (headers, json_bytes) = get("json").await;
        assert!(headers["content-type"].to_str().unwrap().starts_with("application/json"));
        let report: Value = serde_json::from_slice(&json_bytes).unwrap();
        assert_eq!(report["report"]["agents"].as_array().unwrap().len(), 5, "{report}");
        assert!(report["report"]["drift"]["columns"].is_array(), "the drift details are in the JSON report");

        // The summary is written from the report, and states no number the report lacks.
        let body = app.graphql(Some(&token), "query($id: ID!) { job(id: $id) { report { summary } } }", json!({ "id": job_id(&app, &token).await })).await;
        let summary = body["data"]["job"]["report"]["summary"].as_str().unwrap_or_else(|| panic!("{body}")).to_string();
        for section in ["## Executive Summary", "## Technical Findings", "## Recommended Actions", "## Next Steps"] {
            assert!(summary.contains(section), "{summary}");
        }
        assert!(summary.contains("june.csv has 500 rows and 7 columns"), "{summary}");
        let stored: agensium::domain::Report = serde_json::from_value(report["report"].clone()).unwrap();
        assert_eq!(agensium::explain::ungrounded(&summary, &stored), Vec::<String>::new(), "{summary}");

        let (_, xlsx) = get("xlsx").await;
        use calamine::Reader;
        let workbook: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx)).expect("a workbook");
        let sheets = workbook.sheet_names();
        assert!(sheets.iter().any(|s| s == "Summary"), "{sheets:?}");
        assert!(sheets.len() >= 6, "a summary and one sheet per agent: {sheets:?}");

        let (headers, html) = get("html").await;
        assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
        let html = String::from_utf8(html).unwrap();
        assert!(html.contains("<svg"), "charts are inline SVG");
        assert!(!html.contains("example.com"), "personal data is masked in the HTML report");
        assert!(!html.contains("http://") && !html.contains("https://"), "the page loads nothing");

        // A link is bound to its job and owner: a forged or altered one is refused.
        let url = downloads[0]["url"].as_str().unwrap();
        let response = app.client.get(format!("{}{}x", app.address, url)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401);
        // Another user cannot see the job, hence gets no links.
        let bob = app.token_for("bob@example.com").await;
        let body = app.graphql(Some(&bob), "query($id: ID!) { job(id: $id) { downloads { url } } }", json!({ "id": job_id(&app, &token).await })).await;
        assert_eq!(error_code(&body), "NOT_FOUND");
    }

    async fn personal_data_is_masked_in_reports_of_runs_that_did_not_look_for_it(app) {
        // `contact` holds e-mails and `client` names: neither header names personal data.
        let people = |n: usize, shift: usize| {
            let mut csv = String::from("id,contact,client,amount\n");
            let names = ["James Smith", "Maria Garcia", "Anna Rossi", "Robert Brown", "Mary Jones"];
            for i in 0..n {
                writeln!(csv, "{i},person{}@example.com,{},{}", i % 7, names[(i + shift) % 5], i % 13).unwrap();
            }
            csv
        };
        let token = app.token_for("ada@example.com").await;
        let baseline = app.upload_ok(&token, "april.csv", people(60, 0).as_bytes()).await;
        let current = app.upload_ok(&token, "may.csv", people(80, 2).as_bytes()).await;
        let fetch = |job: &Value, format: &str| {
            let downloads = job["downloads"].as_array().unwrap();
            let link = downloads.iter().find(|d| d["format"] == format).unwrap().clone();
            let (client, url) = (app.client.clone(), format!("{}{}", app.address, link["url"].as_str().unwrap()));
            async move { client.get(url).send().await.unwrap().text().await.unwrap() }
        };

        // The drift detector alone: its categories of both columns are masked in the page.
        let drift = run(&app, &token, json!({ "toolId": "profile-my-data", "datasetId": current["id"], "baselineDatasetId": baseline["id"], "agents": ["drift-detector"] })).await;
        let page = fetch(&drift, "html").await;
        assert!(page.contains("contact") && page.contains("client"), "the columns are compared");
        assert!(!page.contains("person1@example.com"), "an e-mail in clear");
        assert!(!page.contains("Maria Garcia"), "a name in clear");
        // The JSON is the report as stored: raw, and saying which columns are personal.
        let report: Value = serde_json::from_str(&fetch(&drift, "json").await).unwrap();
        let personal = report["report"]["drift"]["personal_columns"].to_string();
        assert!(personal.contains("contact") && personal.contains("client"), "{personal}");

        // The risk scorer finds the names; a later profile run that does not score risks
        // still masks them, and so does the co-pilot asked about the dataset.
        let risk = run(&app, &token, json!({ "toolId": "profile-my-data", "datasetId": current["id"], "agents": ["score-risk"] })).await;
        assert_eq!(agent(&risk, "score-risk")["status"], "success", "{risk}");
        let profile = run(&app, &token, json!({ "toolId": "profile-my-data", "datasetId": current["id"], "agents": ["unified-profiler"] })).await;
        let page = fetch(&profile, "html").await;
        assert!(page.contains("client"), "the column is profiled");
        for name in ["James Smith", "Maria Garcia", "Anna Rossi"] {
            assert!(!page.contains(name), "{name} in clear in the profile's page");
        }
        let body = app.graphql(Some(&token), "mutation($input: AskCopilotInput!) { askCopilot(input: $input) { answer } }", json!({ "input": { "question": "top values of client", "datasetId": current["id"] } })).await;
        let answer = body["data"]["askCopilot"]["answer"].as_str().unwrap_or_default().to_string();
        assert!(answer.contains("client") && !answer.contains("Smith") && !answer.contains("Garcia"), "{body}");
    }

    async fn row_level_issues_take_a_count_that_is_not_negative(app) {
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "june.csv", current_csv().as_bytes()).await;
        let job = run(&app, &token, json!({ "toolId": "profile-my-data", "datasetId": dataset["id"], "agents": ["test-coverage-agent"] })).await;
        assert!(agent(&job, "test-coverage-agent")["rowLevelIssues"].as_array().is_some_and(|r| !r.is_empty()), "{job}");
        let query = "query($id: ID!, $n: Int!) { job(id: $id) { report { agents { rowLevelIssues(first: $n) { row } } } } }";
        let id = job_id(&app, &token).await;
        let body = app.graphql(Some(&token), query, json!({ "id": id, "n": -1 })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        let body = app.graphql(Some(&token), query, json!({ "id": id, "n": 0 })).await;
        assert_eq!(body["data"]["job"]["report"]["agents"][0]["rowLevelIssues"], json!([]), "{body}");
    }

    async fn a_drift_report_keeps_its_baselines_name_after_the_baseline_is_deleted(app) {
        let token = app.token_for("ada@example.com").await;
        let baseline = app.upload_ok(&token, "may.csv", baseline_csv().as_bytes()).await;
        let current = app.upload_ok(&token, "june.csv", current_csv().as_bytes()).await;
        let job = run(&app, &token, json!({ "toolId": "profile-my-data", "datasetId": current["id"], "baselineDatasetId": baseline["id"], "agents": ["drift-detector"] })).await;
        assert_eq!(agent(&job, "drift-detector")["status"], "success", "{job}");
        let id = job_id(&app, &token).await;
        let deleted = app.graphql(Some(&token), "mutation($id: ID!) { deleteDataset(id: $id) }", json!({ "id": baseline["id"] })).await;
        assert_eq!(deleted["data"]["deleteDataset"], true, "{deleted}");
        // Fresh links: the job no longer points at the deleted baseline.
        let body = app.graphql(Some(&token), REPORT, json!({ "id": id })).await;
        assert!(body["errors"].is_null(), "{body}");
        let downloads = body["data"]["job"]["downloads"].as_array().unwrap().clone();
        let fetch = |format: &str| {
            let link = downloads.iter().find(|d| d["format"] == format).unwrap().clone();
            let (client, url) = (app.client.clone(), format!("{}{}", app.address, link["url"].as_str().unwrap()));
            async move { client.get(url).send().await.unwrap().text().await.unwrap() }
        };
        let report: Value = serde_json::from_str(&fetch("json").await).unwrap();
        assert_eq!(report["job"]["baseline"], "may.csv", "{}", report["job"]);
        assert_eq!(report["report"]["drift"]["baseline_name"], "may.csv");
        assert!(fetch("html").await.contains("may.csv"), "the page names the baseline");
    }
}

async fn job_id(app: &TestApp, token: &str) -> Value {
    let body = app.graphql(Some(token), "{ jobs(status: COMPLETED) { nodes { id } } }", json!({})).await;
    body["data"]["jobs"]["nodes"][0]["id"].clone()
}
