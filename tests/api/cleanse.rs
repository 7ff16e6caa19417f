//! Clean My Data through the API: a messy upload previewed, cleaned through `runTool` with
//! progress followed over WebSocket, the cleaned version and the quarantined rows downloaded
//! with the manifest; column names that are not SQL-safe; bad plans refused before anything
//! is queued; tenancy.

use serde_json::{Value, json};

use crate::both_stores;
use crate::helpers::{TestApp, error_code};
use crate::jobs::{connect, follow, wait_for};

/// Seven rows with the usual mess: spaces, capitals, mixed phone and date formats, an "N/A",
/// a value that is not a number, a missing name, a duplicate by email, an outlying age.
const MESSY: &str = "id,name,email,phone,amount,joined,city,age
1, Ada  Lovelace ,ADA@Example.com ,(415) 555-2671,10.5,2024-01-05,NYC,36
2,Grace Hopper,grace@example.com,415.555.2671,N/A,05/02/2024,new york,45
3,Ada Lovelace,ada@example.com,+1 415 555 2671,10.5,2024-01-05,NYC,36
4,Alan Turing,alan@example.com,415-555-2671,abc,2024-02-07,London,41
5,,kat@example.com,4155552671,7,2024-03-03,Boston,50
6,Edsger Dijkstra,edsger@example.com,,12,Mar 10 2024,NYC,72
7,Barbara Liskov,barbara@example.com,,9,2024-03-01,Boston,300
";

fn plan() -> Value {
    json!({
        "quarantine-agent": { "required_columns": ["name"] },
        "type-fixer": { "columns": { "amount": "float" } },
        "field-standardization": {
            "date_columns": ["joined"],
            "case": { "city": "title" },
            "value_maps": { "city": { "Nyc": "New York" } },
        },
        "duplicate-resolver": { "mode": "email_case" },
        "null-handler": { "strategies": { "amount": "median" } },
        "outlier-remover": { "columns": ["age"], "method": "iqr", "action": "cap" },
    })
}

const PREVIEW: &str = "mutation($input: RunToolInput!) { previewTool(input: $input) { rowsBefore rowsAfter rowsRemoved rowsQuarantined plan { agentId description } changes sample } }";
const RUN: &str = "mutation($input: RunToolInput!) { runTool(input: $input) { id status toolId agents } }";
const RESULT: &str = "query($id: ID!) { job(id: $id) { status error { code message }
    output { id name rowCount parent { id } csv: download { url } }
    quarantine { id rowCount columns { name } csv: download { url } }
    report { cleanse { rowsIn rowsOut rowsRemoved rowsQuarantined
        steps { agentId step description rowsRemoved rowsQuarantined }
        changes { agentId step column changed failed } checks { name passed message } }
      agents { agentId status executionTimeMs summaryMetrics issues { code column } } }
    downloads { name kind format url sizeBytes } } }";

async fn get_text(app: &TestApp, url: &str) -> String {
    let response = app.client.get(format!("{}{url}", app.address)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "{url}");
    response.text().await.unwrap()
}

/// Runs `input` through `runTool`, waits for the job to complete, and returns `RESULT`'s body.
async fn run_to_the_end(app: &TestApp, token: &str, input: &Value) -> Value {
    let body = app.graphql(Some(token), RUN, json!({ "input": input })).await;
    let id = body["data"]["runTool"]["id"].clone();
    let job = wait_for(app, token, &id, crate::jobs::finished).await;
    assert_eq!(job["status"], "COMPLETED", "{job}");
    app.graphql(Some(token), RESULT, json!({ "id": id })).await
}

/// Values `step` changed and failed in `column`, by the manifest.
fn change(manifest: &Value, step: &str, column: &str) -> (u64, u64) {
    let found: Vec<&Value> = manifest["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["step"] == step && c["column"] == column)
        .collect();
    assert!(found.len() <= 1, "one entry per step and column: {found:?}");
    found
        .first()
        .map_or((0, 0), |c| (c["changed"].as_f64().unwrap() as u64, c["failed"].as_f64().unwrap() as u64))
}

both_stores! {
    async fn a_messy_file_is_previewed_cleaned_and_downloaded_with_its_manifest(app) {
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "people.csv", MESSY.as_bytes()).await;
        let input = json!({ "toolId": "clean-my-data", "datasetId": dataset["id"], "parameters": plan() });

        // The preview runs the whole plan on a sample (here every row) and writes nothing.
        let body = app.graphql(Some(&token), PREVIEW, json!({ "input": input })).await;
        assert!(body["errors"].is_null(), "{body}");
        let preview = &body["data"]["previewTool"];
        assert_eq!(
            (preview["rowsBefore"].as_f64(), preview["rowsAfter"].as_f64(), preview["rowsRemoved"].as_f64(), preview["rowsQuarantined"].as_f64()),
            (Some(7.0), Some(4.0), Some(1.0), Some(2.0)),
            "{preview}"
        );
        let sample = preview["sample"].as_array().unwrap();
        assert_eq!(sample.len(), 7);
        let row = |n: u64| sample.iter().find(|r| r["row"] == n).unwrap().clone();
        assert_eq!(row(1)["after"]["name"], "Ada Lovelace");
        assert_eq!(row(1)["before"]["name"], " Ada  Lovelace ");
        assert_eq!(row(3)["after"], Value::Null, "the duplicate by email is removed");
        assert_eq!(row(3)["fate"], "deduplicate");
        assert!(row(5)["fate"].as_str().unwrap().contains("missing name"), "{}", row(5));
        assert!(row(4)["fate"].as_str().unwrap().contains("amount is not a number"), "{}", row(4));
        assert!(preview["plan"].as_array().unwrap().iter().any(|s| s["agentId"] == "duplicate-resolver"));
        // The sample pages, and can show only the rows the plan touches.
        let query = "mutation($input: RunToolInput!) { previewTool(input: $input) { page: sample(first: 2, offset: 1) changed: sample(changedOnly: true) } }";
        let body = app.graphql(Some(&token), query, json!({ "input": input })).await;
        let rows = |list: &Value| list.as_array().unwrap_or_else(|| panic!("{body}")).iter().map(|r| r["row"].as_u64().unwrap()).collect::<Vec<_>>();
        assert_eq!(rows(&body["data"]["previewTool"]["page"]), [2, 3], "{body}");
        let touched: Vec<u64> = sample.iter().filter(|r| !r["fate"].is_null() || r["after"] != r["before"]).map(|r| r["row"].as_u64().unwrap()).collect();
        assert!(touched.contains(&3), "{touched:?}");
        assert_eq!(rows(&body["data"]["previewTool"]["changed"]), touched, "{body}");
        let query = "mutation($input: RunToolInput!) { previewTool(input: $input) { sample(first: 0) } }";
        let body = app.graphql(Some(&token), query, json!({ "input": input })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        let versions = app.graphql(Some(&token), "query($id: ID!) { dataset(id: $id) { versions { id } } }", json!({ "id": dataset["id"] })).await;
        assert_eq!(versions["data"]["dataset"]["versions"].as_array().unwrap().len(), 1, "a preview writes nothing");

        // The run, followed over WebSocket to the end.
        let body = app.graphql(Some(&token), RUN, json!({ "input": input })).await;
        assert!(body["errors"].is_null(), "{body}");
        let job = body["data"]["runTool"].clone();
        let job_id = job["id"].clone();
        assert_eq!(job["agents"].as_array().unwrap().len(), 8, "every agent by default");
        let mut socket = connect(&app, "graphql-transport-ws", &token).await;
        let (snapshots, errors) = follow(&mut socket, "graphql-transport-ws", &job["id"]).await;
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(snapshots.last().unwrap()["status"], "COMPLETED", "{snapshots:?}");
        let progress: Vec<f64> = snapshots.iter().map(|s| s["progress"].as_f64().unwrap()).collect();
        assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");

        let body = app.graphql(Some(&token), RESULT, json!({ "id": job["id"] })).await;
        let job = &body["data"]["job"];
        assert_eq!(job["status"], "COMPLETED", "{body}");
        let manifest = &job["report"]["cleanse"];
        assert_eq!(
            (manifest["rowsIn"].as_f64(), manifest["rowsOut"].as_f64(), manifest["rowsRemoved"].as_f64(), manifest["rowsQuarantined"].as_f64()),
            (Some(7.0), Some(4.0), Some(1.0), Some(2.0)),
            "{manifest}"
        );
        for check in manifest["checks"].as_array().unwrap() {
            assert_eq!(check["passed"], true, "{check}");
        }
        // Every expected change, by step and column.
        assert_eq!(change(manifest, "null_tokens", "amount"), (1, 0), "N/A nulled");
        assert_eq!(change(manifest, "nulls", "amount"), (1, 0), "then filled with the median");
        assert_eq!(change(manifest, "fix_types", "amount").1, 1, "abc does not convert");
        assert_eq!(change(manifest, "standardize", "email"), (1, 0));
        assert_eq!(change(manifest, "standardize", "name"), (1, 0));
        assert_eq!(change(manifest, "standardize", "joined"), (2, 0));
        assert_eq!(change(manifest, "standardize", "city"), (4, 0));
        assert_eq!(change(manifest, "outliers", "age"), (1, 0));
        let agents = job["report"]["agents"].as_array().unwrap();
        let nulls = &agents.iter().find(|a| a["agentId"] == "null-handler").unwrap()["summaryMetrics"];
        assert_eq!(
            (&nulls["valuesNulled"]["amount"], &nulls["valuesFilled"]["amount"], &nulls["valuesChanged"]["amount"]),
            (&json!(1), &json!(1), &json!(2)),
            "{nulls}"
        );
        let dedupe = manifest["steps"].as_array().unwrap().iter().find(|s| s["agentId"] == "duplicate-resolver").unwrap();
        assert_eq!(dedupe["rowsRemoved"], 1.0);

        // The cleaned version: a child of the original, as CSV.
        let output = &job["output"];
        assert_eq!(output["parent"]["id"], dataset["id"]);
        assert_eq!(output["name"], "people (cleaned).csv");
        assert_eq!(output["rowCount"], 4.0);
        let csv = get_text(&app, output["csv"]["url"].as_str().unwrap()).await;
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "id,name,email,phone,amount,joined,city,age");
        assert_eq!(lines[1], "1,Ada Lovelace,ada@example.com,+14155552671,10.5,2024-01-05,New York,36");
        assert_eq!(lines[2], "2,Grace Hopper,grace@example.com,+14155552671,10.5,2024-02-05,New York,45");
        assert_eq!(lines[3], "6,Edsger Dijkstra,edsger@example.com,,12.0,2024-03-10,New York,72");
        assert_eq!(lines[4], "7,Barbara Liskov,barbara@example.com,,9.0,2024-03-01,Boston,258");
        assert_eq!(lines.len(), 5);

        // The quarantined rows, as they were, with their reasons and row numbers.
        let quarantine = &job["quarantine"];
        assert_eq!(quarantine["rowCount"], 2.0);
        let names: Vec<&str> = quarantine["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names.last(), Some(&"_row"));
        assert!(names.contains(&"_reason"));
        let csv = get_text(&app, quarantine["csv"]["url"].as_str().unwrap()).await;
        assert!(csv.contains("amount is not a number") && csv.contains("missing name"), "{csv}");
        assert!(csv.contains(",abc,"), "quarantined rows keep their original values: {csv}");

        // Downloads: the report, the manifest and the written data.
        let downloads = job["downloads"].as_array().unwrap();
        let kinds: Vec<&str> = downloads.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        for kind in ["report", "manifest", "cleaned", "quarantine"] {
            assert!(kinds.contains(&kind), "{kinds:?}");
        }
        let manifest_link = downloads.iter().find(|d| d["kind"] == "manifest").unwrap();
        assert_eq!(manifest_link["name"], "people-manifest.json");
        let file: Value = serde_json::from_str(&get_text(&app, manifest_link["url"].as_str().unwrap()).await).unwrap();
        assert_eq!(file["manifest"]["rows_out"], 4);
        assert_eq!(file["manifest"]["output_dataset_id"], output["id"]);
        let cleaned = downloads.iter().find(|d| d["kind"] == "cleaned").unwrap();
        let response = app.client.get(format!("{}{}", app.address, cleaned["url"].as_str().unwrap())).send().await.unwrap();
        assert!(response.bytes().await.unwrap().starts_with(b"PAR1"));

        // The original is untouched.
        // Its versions are the upload and the cleaned rows; the quarantined rows are a dataset
        // of their own, derived from it.
        let original = app.graphql(Some(&token), "query($id: ID!) { dataset(id: $id) { rowCount kind preview(limit: 1) versions { id kind } } }", json!({ "id": dataset["id"] })).await;
        assert_eq!(original["data"]["dataset"]["rowCount"], 7.0);
        assert_eq!(original["data"]["dataset"]["kind"], "UPLOAD");
        assert_eq!(original["data"]["dataset"]["preview"][0]["name"], " Ada  Lovelace ");
        assert_eq!(
            original["data"]["dataset"]["versions"],
            json!([{ "id": dataset["id"], "kind": "UPLOAD" }, { "id": output["id"], "kind": "CLEANED" }]),
            "{original}"
        );
        let body = app.graphql(Some(&token), "query($id: ID!) { dataset(id: $id) { kind parent { id } rowCount versions { id } } }", json!({ "id": job["quarantine"]["id"] })).await;
        assert_eq!(body["data"]["dataset"], json!({ "kind": "QUARANTINE", "parent": { "id": dataset["id"] }, "rowCount": 2.0,
            "versions": [{ "id": job["quarantine"]["id"] }] }), "{body}");
        let body = app.graphql(Some(&token), "{ q: datasets(kind: [QUARANTINE]) { totalCount nodes { id } } v: datasets(kind: [UPLOAD, CLEANED]) { totalCount } all: datasets { totalCount } }", json!({})).await;
        assert_eq!(body["data"]["q"], json!({ "totalCount": 1, "nodes": [{ "id": job["quarantine"]["id"] }] }), "{body}");
        assert_eq!((&body["data"]["v"]["totalCount"], &body["data"]["all"]["totalCount"]), (&json!(2), &json!(3)), "{body}");
        // A field aliased `versions` is not refused for its alias.
        let body = app.graphql(Some(&token), "query($id: ID!) { versions: dataset(id: $id) { versions { id } } }", json!({ "id": dataset["id"] })).await;
        assert_eq!(body["data"]["versions"]["versions"].as_array().map(Vec::len), Some(2), "{body}");
        // A version's versions are the same family: nesting them multiplied the response by
        // three per level (a few levels exhausted the server's memory); refused instead.
        for nested in ["versions { versions { id } }", "versions { parent { versions { id } } }",
                       "a: versions { b: versions { id } }", "a: versions { parent { b: versions { id } } }",
                       "...F } } fragment F on Dataset { versions { ... on Dataset { versions { id } }"] {
            let body = app.graphql(Some(&token), &format!("query($id: ID!) {{ dataset(id: $id) {{ {nested} }} }}"), json!({ "id": dataset["id"] })).await;
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{nested}: {body}");
        }
        // What to run next says on which dataset: profile the cleaned version, and compare it
        // with the original as the baseline.
        let body = app.graphql(Some(&token), "query($id: ID!) { job(id: $id) { report { nextTools { toolId agents dataset { id } baselineDataset { id } } } } }", json!({ "id": job_id })).await;
        let next = body["data"]["job"]["report"]["nextTools"].as_array().unwrap_or_else(|| panic!("{body}")).clone();
        assert_eq!(next.len(), 2, "{body}");
        assert_eq!((&next[0]["toolId"], &next[0]["dataset"]["id"], &next[0]["baselineDataset"]), (&json!("profile-my-data"), &output["id"], &Value::Null), "{body}");
        assert_eq!(next[1]["agents"], json!(["drift-detector"]), "{body}");
        assert_eq!((&next[1]["dataset"]["id"], &next[1]["baselineDataset"]["id"]), (&output["id"], &dataset["id"]), "{body}");
        // Its outputs deleted, the job says it has none, without an error.
        let id = job_id;
        for version in [output["id"].clone(), job["quarantine"]["id"].clone()] {
            let deleted = app.graphql(Some(&token), "mutation($id: ID!) { deleteDataset(id: $id) }", json!({ "id": version })).await;
            assert_eq!(deleted["data"]["deleteDataset"], true, "{deleted}");
        }
        let body = app.graphql(Some(&token), "query($id: ID!) { job(id: $id) { output { id } quarantine { id } } jobs { nodes { output { id } } } }", json!({ "id": id })).await;
        assert!(body["errors"].is_null(), "{body}");
        assert_eq!(body["data"]["job"], json!({ "output": null, "quarantine": null }), "{body}");
        // Nor does it suggest runs on them.
        let body = app.graphql(Some(&token), "query($id: ID!) { job(id: $id) { report { nextTools { toolId dataset { id } } } } }", json!({ "id": id })).await;
        assert_eq!(body["data"]["job"]["report"]["nextTools"], json!([]), "{body}");
    }

    async fn any_column_name_works_and_none_injects_sql(app) {
        let token = app.token_for("ada@example.com").await;
        let csv = "\"na\"\"me'; DROP TABLE x; --\",SELECT,größe in cm\n a ,x,180\n,y,170\nb ,z,-\n";
        let dataset = app.upload_ok(&token, "odd.csv", csv.as_bytes()).await;
        let weird = "na\"me'; DROP TABLE x; --";
        let parameters = json!({
            "quarantine-agent": { "required_columns": [weird] },
            "field-standardization": { "case": { "SELECT": "upper" }, "units": {} },
            "type-fixer": { "columns": { "größe in cm": "integer" }, "on_failure": "null" },
            "null-handler": { "auto": false },
        });
        let input = json!({ "toolId": "clean-my-data", "datasetId": dataset["id"], "parameters": parameters,
            "agents": ["quarantine-agent", "type-fixer", "field-standardization", "null-handler"] });
        let body = app.graphql(Some(&token), PREVIEW, json!({ "input": input })).await;
        assert!(body["errors"].is_null(), "{body}");
        let preview = &body["data"]["previewTool"];
        assert_eq!((preview["rowsBefore"].as_f64(), preview["rowsAfter"].as_f64(), preview["rowsQuarantined"].as_f64()), (Some(3.0), Some(2.0), Some(1.0)), "{preview}");
        let sample = preview["sample"].as_array().unwrap();
        let first = sample.iter().find(|r| r["row"] == 1).unwrap();
        assert_eq!(first["after"][weird], "a");
        assert_eq!(first["after"]["SELECT"], "X");
        assert_eq!(first["after"]["größe in cm"], "180");
        let third = sample.iter().find(|r| r["row"] == 3).unwrap();
        assert_eq!(third["after"]["größe in cm"], Value::Null, "- is a null token");
    }

    async fn bad_plans_are_refused_before_anything_is_queued(app) {
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "people.csv", MESSY.as_bytes()).await;
        let cases = [
            (json!({ "quarantine-agent": { "required_columns": ["nope"] } }), "quarantine-agent.required_columns"),
            (json!({ "field-standardization": { "phone_region": "XX" } }), "field-standardization.phone_region"),
            (json!({ "field-standardization": { "date_columns": ["id"] } }), "field-standardization.date_columns"),
            (json!({ "null-handler": { "strategies": { "name": "mean" } } }), "null-handler.strategies"),
            (json!({ "field-standardization": { "email_columns": ["email"], "phone_columns": ["email"] } }), "field-standardization.phone_columns"),
            (json!({ "quarantine-agent": { "patterns": [{ "column": "name", "pattern": "(?<=a)b" }] } }), "quarantine-agent.patterns[0]"),
            // Refused by RE2 (DuckDB), not by the first check: the same field.
            (json!({ "quarantine-agent": { "patterns": [{ "column": "name", "pattern": "a" }, { "column": "name", "pattern": "(?<n>a)" }] } }), "quarantine-agent.patterns[1]"),
            (json!({ "outlier-remover": { "columns": ["name"] } }), "outlier-remover.columns"),
            (json!({ "duplicate-resolver": { "mode": "fuzzy" } }), "duplicate-resolver.key_columns"),
            // Values only DuckDB can judge are checked by it before a job exists.
            (json!({ "null-handler": { "strategies": { "age": "constant" }, "constants": { "age": "abc" } } }), "null-handler.constants"),
            (json!({ "type-fixer": { "columns": { "amount": "float" } },
                     "null-handler": { "strategies": { "amount": "constant" }, "constants": { "amount": "1e400" } } }), "null-handler.constants"),
            (json!({ "field-standardization": { "date_columns": ["joined"], "date_output": "%Q" } }), "field-standardization.date_output"),
            (json!({ "field-standardization": { "date_columns": ["joined"], "date_formats": ["%Y", "%Q"] } }), "field-standardization.date_formats"),
            (json!({ "quarantine-agent": { "ranges": [{ "column": "age", "min": "5" }] } }), "quarantine-agent.ranges[0].min"),
            // A conversion the column's type cannot take names the agent's parameter.
            (json!({ "type-fixer": { "columns": { "id": "date" } } }), "type-fixer.columns"),
        ];
        for (parameters, field) in cases {
            for mutation in [RUN, PREVIEW] {
                let input = json!({ "toolId": "clean-my-data", "datasetId": dataset["id"], "parameters": parameters });
                let body = app.graphql(Some(&token), mutation, json!({ "input": input })).await;
                assert_eq!(error_code(&body), "BAD_USER_INPUT", "{parameters} {body}");
                let got = body["errors"][0]["extensions"]["field"].as_str().unwrap_or_default();
                assert!(got.starts_with(field), "{parameters}: {got} {body}");
            }
        }
        let body = app.graphql(Some(&token), "mutation($input: RunToolInput!) { runTool(input: $input) { id } }",
            json!({ "input": { "toolId": "clean-my-data", "datasetId": dataset["id"], "parameters": { "type-fixer": { "columns": { "nope": "integer" } } } } })).await;
        assert_eq!(body["errors"][0]["extensions"]["allowed"][0], "id", "{body}");
        // A column whose name the compiled steps keep for themselves: refused, naming it.
        let reserved = app.upload_ok(&token, "reserved.csv", b"__ag_x,name\n1,a\n").await;
        for mutation in [RUN, PREVIEW] {
            let input = json!({ "toolId": "clean-my-data", "datasetId": reserved["id"] });
            let body = app.graphql(Some(&token), mutation, json!({ "input": input })).await;
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
            assert_eq!(body["errors"][0]["extensions"]["field"], "datasetId", "{body}");
            assert!(body["errors"][0]["message"].as_str().unwrap().contains("\"__ag_x\""), "{body}");
        }
        let body = app.graphql(Some(&token), PREVIEW, json!({ "input": { "toolId": "profile-my-data", "datasetId": dataset["id"] } })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        let jobs = app.graphql(Some(&token), "{ jobs { totalCount } }", json!({})).await;
        assert_eq!(jobs["data"]["jobs"]["totalCount"], 0, "{jobs}");

        // A cleanse compares with no baseline: one given is refused (whoever's it is); another
        // user's dataset is not found; an anonymous caller is refused.
        let bob = app.token_for("bob@example.com").await;
        let bobs = app.upload_ok(&bob, "bob.csv", b"a\n1\n").await;
        for baseline in [json!("garbage"), bobs["id"].clone(), dataset["id"].clone()] {
            for mutation in [RUN, PREVIEW] {
                let input = json!({ "toolId": "clean-my-data", "datasetId": dataset["id"], "baselineDatasetId": baseline });
                let body = app.graphql(Some(&token), mutation, json!({ "input": input })).await;
                assert_eq!(error_code(&body), "BAD_USER_INPUT", "{baseline} {body}");
                assert_eq!(body["errors"][0]["extensions"]["field"], "baselineDatasetId", "{body}");
            }
        }
        let input = json!({ "toolId": "clean-my-data", "datasetId": dataset["id"] });
        let body = app.graphql(Some(&bob), PREVIEW, json!({ "input": input })).await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
        let body = app.graphql(None, PREVIEW, json!({ "input": input })).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }

    async fn nulls_with_no_value_to_fill_them_are_left_counted_and_reported(app) {
        let token = app.token_for("ada@example.com").await;
        // A forward fill before the first reading, a back fill after the last note.
        let csv = "t,reading,note\n1,,a\n2,5,\n3,,b\n4,7,\n";
        let dataset = app.upload_ok(&token, "readings.csv", csv.as_bytes()).await;
        let parameters = json!({ "null-handler": { "auto": false, "strategies": { "reading": "forward_fill", "note": "back_fill" } } });
        let input = json!({ "toolId": "clean-my-data", "datasetId": dataset["id"], "parameters": parameters,
            "agents": ["cleanse-previewer", "null-handler", "cleanse-writeback"] });
        let body = app.graphql(Some(&token), PREVIEW, json!({ "input": input })).await;
        assert!(body["errors"].is_null(), "{body}");
        let preview = &body["data"]["previewTool"];
        let columns = json!({ "changes": preview["changes"]["columns"] });
        assert_eq!(change(&columns, "nulls", "reading"), (1, 1), "{preview}");
        assert_eq!(change(&columns, "nulls", "note"), (1, 1), "{preview}");

        let body = run_to_the_end(&app, &token, &input).await;
        let job = &body["data"]["job"];
        let manifest = &job["report"]["cleanse"];
        assert!(manifest["checks"].as_array().unwrap().iter().all(|c| c["passed"] == true), "{manifest}");
        assert_eq!(change(manifest, "nulls", "reading"), (1, 1));
        assert_eq!(change(manifest, "nulls", "note"), (1, 1));
        let handler = job["report"]["agents"].as_array().unwrap().iter().find(|a| a["agentId"] == "null-handler").unwrap();
        let mut left: Vec<(String, String)> = handler["issues"].as_array().unwrap().iter()
            .map(|i| (i["code"].as_str().unwrap().to_string(), i["column"].as_str().unwrap().to_string())).collect();
        left.sort();
        assert_eq!(left, [("NULLS_LEFT".to_string(), "note".to_string()), ("NULLS_LEFT".to_string(), "reading".to_string())]);
        let csv = get_text(&app, job["output"]["csv"]["url"].as_str().unwrap()).await;
        assert_eq!(csv, "t,reading,note\n1,,a\n2,5,b\n3,5,b\n4,7,\n");
        // The previewer shows its own time, the writeback the whole run's, the others none.
        let time = |agent: &str| {
            let found = job["report"]["agents"].as_array().unwrap().iter().find(|a| a["agentId"] == agent).unwrap();
            found["executionTimeMs"].as_f64().unwrap()
        };
        assert!(time("cleanse-previewer") > 0.0 && time("cleanse-writeback") > time("cleanse-previewer"));
        assert_eq!(time("null-handler"), 0.0);
    }

    async fn without_the_writeback_agent_a_run_reports_and_publishes_nothing(app) {
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "people.csv", MESSY.as_bytes()).await;
        let input = json!({ "toolId": "clean-my-data", "datasetId": dataset["id"], "agents": ["cleanse-previewer", "duplicate-resolver"],
            "parameters": { "duplicate-resolver": { "mode": "email_case" } } });
        let body = run_to_the_end(&app, &token, &input).await;
        let job = &body["data"]["job"];
        assert_eq!(job["output"], Value::Null, "{body}");
        assert_eq!(job["report"]["cleanse"]["rowsRemoved"], 1.0);
        let versions = app.graphql(Some(&token), "query($id: ID!) { dataset(id: $id) { versions { id } } }", json!({ "id": dataset["id"] })).await;
        assert_eq!(versions["data"]["dataset"]["versions"].as_array().unwrap().len(), 1);
    }
}

/// A preview too heavy to answer in `PREVIEW_TIMEOUT` is stopped and refused, and DuckDB is
/// interrupted: the engine's slot is free again for uploads at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_past_its_time_limit_is_stopped_and_frees_the_engine() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Store::Sqlite, &[("PREVIEW_TIMEOUT", "300ms")])
        .await
        .unwrap();
    let token = app.token_for("ada@example.com").await;
    // One fuzzy block of 40,000 names: 800 million comparisons, about a minute's work here.
    let mut csv = String::from("id,name\n");
    for i in 0..40_000 {
        csv.push_str(&format!("{i},Anna Example {i}\n"));
    }
    let dataset = app.upload_ok(&token, "names.csv", csv.as_bytes()).await;
    let input = json!({ "toolId": "clean-my-data", "datasetId": dataset["id"], "agents": ["cleanse-previewer", "duplicate-resolver"],
        "parameters": { "cleanse-previewer": { "sample_size": 40000 },
                        "duplicate-resolver": { "mode": "fuzzy", "key_columns": ["name"] } } });
    let started = std::time::Instant::now();
    let body = app.graphql(Some(&token), PREVIEW, json!({ "input": input })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "cleanse-previewer.sample_size", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("PREVIEW_TIMEOUT"), "{body}");
    // An upload right after gets the engine's slot: the preview's query was interrupted
    // rather than left running (it held the slot for a minute before).
    let upload = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        app.upload_ok(&token, "small.csv", b"a,b\n1,2\n"),
    )
    .await
    .expect("the upload waited for a preview that should have been stopped");
    assert_eq!(upload["rowCount"], 1.0);
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
}

/// A preview whose time runs out while the plan's evidence is still being sampled says so, on
/// `datasetId`: a smaller preview sample would not help.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_stopped_while_sampling_its_evidence_does_not_blame_the_sample_size() {
    // Reading the evidence takes DuckDB queries over the file: far more than a millisecond.
    let app = crate::helpers::spawn_app_with(crate::helpers::Store::Sqlite, &[("PREVIEW_TIMEOUT", "1ms")])
        .await
        .unwrap();
    let token = app.token_for("ada@example.com").await;
    let dataset = app.upload_ok(&token, "people.csv", b"id,name,age\n1,Ann,30\n2,Bob,\n").await;
    let input = json!({ "toolId": "clean-my-data", "datasetId": dataset["id"] });
    let body = app.graphql(Some(&token), PREVIEW, json!({ "input": input })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "datasetId", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("PREVIEW_TIMEOUT") && message.contains("3 columns"), "{body}");
}

/// A preview that needs more memory than the shared engine's `DUCKDB_MEMORY_LIMIT` is refused
/// with PAYLOAD_TOO_LARGE saying what to do, not an internal error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_out_of_memory_is_payload_too_large_not_internal() {
    // 100 columns of 2,000 rows: the upload fits in 30 MB, the evidence sample does not.
    let app =
        crate::helpers::spawn_app_with(crate::helpers::Store::Sqlite, &[("DUCKDB_MEMORY_LIMIT", "30MB")])
            .await
            .unwrap();
    let token = app.token_for("ada@example.com").await;
    let mut csv = (0..100).map(|c| format!("c{c}")).collect::<Vec<_>>().join(",") + "\n";
    for r in 0..2000 {
        let row =
            (0..100).map(|c| if c % 2 == 0 { format!("{}", r * c % 97) } else { format!(" name {r} ") });
        csv.push_str(&(row.collect::<Vec<_>>().join(",") + "\n"));
    }
    let dataset = app.upload_ok(&token, "wide.csv", csv.as_bytes()).await;
    let input = json!({ "toolId": "clean-my-data", "datasetId": dataset["id"] });
    let body = app.graphql(Some(&token), PREVIEW, json!({ "input": input })).await;
    assert_eq!(error_code(&body), "PAYLOAD_TOO_LARGE", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("DUCKDB_MEMORY_LIMIT"), "{body}");
}
