//! GraphQL over HTTP: content types, status codes and errors for malformed requests.

use serde_json::{Value, json};

use crate::both_stores;
use crate::helpers::{TestApp, error_code};

const GQL_RESPONSE: &str = "application/graphql-response+json";

async fn raw(
    app: &TestApp,
    content_type: &str,
    accept: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (u16, String, Value) {
    let mut request =
        app.client.post(format!("{}/graphql", app.address)).header("content-type", content_type).body(body);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, content_type, body)
}

/// Posts a GraphQL multipart request: `operations`, `map`, and one small CSV file per entry
/// of `map` (named "0", "1", …). The status and the body.
async fn multipart(app: &TestApp, token: &str, operations: Value, map: Value) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", map.to_string());
    for (i, key) in map.as_object().unwrap().keys().enumerate() {
        let bytes = format!("a,b\n{i},2\n").into_bytes();
        form = form.part(key.clone(), reqwest::multipart::Part::bytes(bytes).file_name(format!("{key}.csv")));
    }
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

both_stores! {
    async fn post_answers_in_the_format_asked_for(app) {
        let query = json!({ "query": "{ __typename }" }).to_string();
        let (status, content_type, body) = raw(&app, "application/json", None, query.clone()).await;
        assert_eq!((status, body.clone()), (200, json!({ "data": { "__typename": "Query" } })));
        assert!(content_type.starts_with("application/json"), "{content_type}");
        let (status, content_type, _) = raw(&app, "application/json; charset=utf-8", Some(GQL_RESPONSE), query.clone()).await;
        assert_eq!(status, 200);
        assert!(content_type.starts_with(GQL_RESPONSE), "{content_type}");
        let (status, _, body) = raw(&app, "application/json", Some("text/html"), query).await;
        assert_eq!(status, 406);
        assert_eq!(error_code(&body), "NOT_ACCEPTABLE");
    }

    async fn request_errors_are_400_with_graphql_response_json(app) {
        let bad_syntax = json!({ "query": "{ me { " }).to_string();
        let (status, _, body) = raw(&app, "application/json", Some(GQL_RESPONSE), bad_syntax.clone()).await;
        assert_eq!(status, 400);
        assert_eq!(error_code(&body), "GRAPHQL_PARSE_FAILED");
        assert!(body.get("data").is_none(), "a request error has no data entry: {body}");
        // The legacy media type keeps 200 for GraphQL errors.
        let (status, _, body) = raw(&app, "application/json", Some("application/json"), bad_syntax).await;
        assert_eq!(status, 200);
        assert_eq!(error_code(&body), "GRAPHQL_PARSE_FAILED");

        let unknown_field = json!({ "query": "{ nope }" }).to_string();
        let (status, _, body) = raw(&app, "application/json", Some(GQL_RESPONSE), unknown_field).await;
        assert_eq!((status, error_code(&body)), (400, "GRAPHQL_VALIDATION_FAILED"));

        let unknown_operation = json!({ "query": "query A { __typename } query B { __typename }", "operationName": "C" }).to_string();
        let (status, _, body) = raw(&app, "application/json", Some(GQL_RESPONSE), unknown_operation).await;
        assert_eq!((status, error_code(&body)), (400, "BAD_REQUEST"), "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("C"));
        // A subscription sent over HTTP is a request error too (it runs over a WebSocket).
        let subscription = json!({ "query": "subscription { jobProgress(jobId: \"x\") { status } }" }).to_string();
        let (status, content_type, body) = raw(&app, "application/json", Some(GQL_RESPONSE), subscription).await;
        assert_eq!((status, error_code(&body)), (400, "BAD_REQUEST"), "{body}");
        assert!(content_type.starts_with(GQL_RESPONSE), "in the media type asked for: {content_type}");
        let no_name = json!({ "query": "query A { __typename } query B { __typename }" }).to_string();
        let (status, _, body) = raw(&app, "application/json", Some(GQL_RESPONSE), no_name).await;
        assert_eq!((status, error_code(&body)), (400, "BAD_REQUEST"), "{body}");

        // A field error during execution is not a request error: 200, with data.
        let (status, _, body) = raw(&app, "application/json", Some(GQL_RESPONSE), json!({ "query": "{ users { totalCount } }" }).to_string()).await;
        assert_eq!(status, 200);
        assert_eq!(error_code(&body), "UNAUTHENTICATED");
        assert!(body.get("data").is_some());
    }

    async fn values_that_cannot_be_used_are_bad_user_input(app) {
        // A variable forging the multipart upload marker made async-graphql panic: a 500 for
        // anyone, signed in or not.
        let token = app.token_for("ada@example.com").await;
        for (text, token) in [("#__graphql_file__:abc", None), ("#__graphql_file__:7", None), ("#__graphql_file__:", Some(token.clone()))] {
            let (status, body) = app.post_graphql(token.as_deref(), "mutation($f: Upload!) { uploadDataset(file: $f) { id } }", json!({ "f": text })).await;
            assert_eq!((status, error_code(&body)), (200, "BAD_USER_INPUT"), "{text}: {body}");
        }
        // ... or written in the document: an argument, a default, an escaped one, a fragment.
        for query in [
            "mutation { uploadDataset(file: \"#__graphql_file__:abc\") { id } }",
            "mutation($f: Upload! = \"#__graphql_file__:x\") { uploadDataset(file: $f) { id } }",
            "mutation { uploadDataset(file: \"\\u0023__graphql_file__:0\") { id } }",
            "mutation { ...F } fragment F on Mutation { uploadDataset(file: \"#__graphql_file__:1\") { id } }",
        ] {
            let (status, body) = app.post_graphql(None, query, json!({})).await;
            assert_eq!((status, error_code(&body)), (200, "BAD_USER_INPUT"), "{query}: {body}");
        }
        // An argument out of its type's range, at the top or further down, is refused before
        // anything runs (the complexity limit reads the page sizes), as the specification's
        // validation has it.
        for query in ["{ datasets(first: 2147483648) { totalCount } }", "{ jobs { nodes { report { agents { rowLevelIssues(first: 2147483648) { row } } } } } }"] {
            let (status, _, body) = raw(&app, "application/json", Some(GQL_RESPONSE), json!({ "query": query }).to_string()).await;
            assert_eq!((status, error_code(&body)), (400, "GRAPHQL_VALIDATION_FAILED"), "{body}");
            assert!(body.get("data").is_none(), "{body}");
        }
        // One upload used by two fields: the second is refused, not an internal error.
        let operations = json!({
            "query": "mutation($f: Upload!) { a: uploadDataset(file: $f) { id } b: uploadDataset(file: $f) { id } }",
            "variables": { "f": null },
        });
        let (status, body) = multipart(&app, &token, operations, json!({ "0": ["variables.f"] })).await;
        assert_eq!(status, 200);
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["path"], json!(["b"]), "{body}");
        let datasets = app.graphql(Some(&token), "{ datasets { totalCount } }", json!({})).await;
        assert_eq!(datasets["data"]["datasets"]["totalCount"], 1.0, "{datasets}");
    }

    async fn a_failed_non_null_field_nulls_its_nearest_nullable_parent(app) {
        // As the specification says: async-graphql left the failed field out of its object,
        // or put null in a list of non-null items, which a typed client cannot read.
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "t.csv", b"a,b\n1,2\n").await;
        let body = app.graphql(Some(&token), "query($id: ID!) { me { email } dataset(id: $id) { id preview(limit: 0) } }", json!({ "id": dataset["id"] })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["path"], json!(["dataset", "preview"]), "{body}");
        assert_eq!(body["data"], json!({ "me": { "email": "ada@example.com" }, "dataset": null }), "{body}");
        // Through a list of non-null items and non-null fields, up to the root: data is null.
        let body = app.graphql(Some(&token), "{ datasets { nodes { id rejects(first: 0) { line } } } }", json!({})).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["data"], Value::Null, "{body}");
        // An alias is followed as the response names it.
        let body = app.graphql(Some(&token), "query($id: ID!) { d: dataset(id: $id) { rows: preview(limit: 0) } ok: dataset(id: $id) { id } }", json!({ "id": dataset["id"] })).await;
        assert_eq!(body["data"], json!({ "d": null, "ok": { "id": dataset["id"] } }), "{body}");
        // In a mutation, the fields that did not fail keep their results (their side effects
        // happened): the failed root field is null.
        let body = app.graphql(Some(&token), "mutation { a: signOut(refreshToken: \"unknown\") b: cancelJob(id: \"nope\") { id } }", json!({})).await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
        assert_eq!(body["data"], json!({ "a": false, "b": null }), "{body}");
        // A field that may be null is only null.
        let body = app.graphql(Some(&token), "{ me { email } dataset(id: \"nope\") { id } }", json!({})).await;
        assert_eq!(body["data"], json!({ "me": { "email": "ada@example.com" }, "dataset": null }), "{body}");
        // Also when it is the only field (async-graphql made data null).
        let body = app.graphql(Some(&token), "{ dataset(id: \"nope\") { id } }", json!({})).await;
        assert_eq!(body["data"], json!({ "dataset": null }), "{body}");
        let body = app.graphql(Some(&token), "mutation { cancelJob(id: \"nope\") { id } }", json!({})).await;
        assert_eq!(body["data"], json!({ "cancelJob": null }), "{body}");
    }

    async fn a_required_variable_left_out_is_a_request_error(app) {
        // JSON.stringify drops a variable that is undefined: the same error as one given null.
        let token = app.token_for("ada@example.com").await;
        for variables in [json!({}), json!({ "j": null })] {
            let request = json!({ "query": "query($j: ID!) { me { id } job(id: $j) { id } }", "variables": variables });
            let response = app.client.post(format!("{}/graphql", app.address)).bearer_auth(&token)
                .header("accept", GQL_RESPONSE).json(&request).send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            assert_eq!((status, error_code(&body)), (400, "GRAPHQL_VALIDATION_FAILED"), "{variables}: {body}");
            assert!(body.get("data").is_none(), "{body}");
        }
        // In a named operation too (as clients name theirs), among several.
        let request = json!({ "query": "query A { me { id } } query Q($j: ID!) { me { id } job(id: $j) { id } }", "operationName": "Q", "variables": {} });
        let response = app.client.post(format!("{}/graphql", app.address)).bearer_auth(&token)
            .header("accept", GQL_RESPONSE).json(&request).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
        let body = app.graphql(Some(&token), "query A { me { id } } query B($j: ID!) { job(id: $j) { id } }", json!({})).await;
        assert_eq!(error_code(&body), "BAD_REQUEST", "several operations and no name: {body}");
        // A nullable one, or one with a default, may be left out.
        let body = app.graphql(Some(&token), "query($n: String, $f: Int! = 5) { datasets(first: $f, after: $n) { totalCount } me { id } }", json!({})).await;
        assert!(body["errors"].is_null(), "{body}");
    }

    async fn a_variable_must_fit_where_it_is_used(app) {
        let token = app.token_for("ada@example.com").await;
        // Its value would fit (any text is an ID); its type does not.
        for query in ["query($d: String!) { job(id: $d) { id } }", "query($d: ID) { job(id: $d) { id } }",
            "query($d: ID!) { me { id } ...F } fragment F on Query { job(id: $d) { id } datasets(after: $d) { totalCount } }"] {
            let body = app.graphql(Some(&token), query, json!({ "d": "x" })).await;
            assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{query}: {body}");
            assert!(body.get("data").is_none(), "{body}");
        }
        // A nullable variable fits a required argument with a default (introspection's).
        let body = app.graphql(Some(&token), "query($d: Boolean) { __type(name: \"Column\") { fields(includeDeprecated: $d) { name } } }", json!({ "d": true })).await;
        assert!(body["errors"].is_null(), "{body}");
        // Inside an input object or a list literal too: where it is written, not only the
        // argument as a whole.
        for query in [
            "mutation($d: String!) { runTool(input: { toolId: \"profile-my-data\", datasetId: $d }) { id } }",
            "mutation($d: ID) { runTool(input: { toolId: \"profile-my-data\", datasetId: $d }) { id } }",
            "mutation($d: ID!, $a: String!) { runTool(input: { toolId: \"profile-my-data\", datasetId: $d, agents: [$a] }) { id } }",
            "mutation($d: ID!, $a: [ID!]!) { runTool(input: { toolId: \"profile-my-data\", datasetId: $d, agents: [$a] }) { id } }",
        ] {
            let body = app.graphql(Some(&token), query, json!({ "d": "x", "a": "unified-profiler" })).await;
            assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{query}: {body}");
            assert!(body["errors"][0]["message"].as_str().unwrap_or_default().contains("runTool.input"), "{body}");
        }
        // Written where they fit, they pass (and the unknown dataset is the resolver's to refuse).
        let body = app.graphql(
            Some(&token),
            "mutation($d: ID!, $a: ID!) { runTool(input: { toolId: \"profile-my-data\", datasetId: $d, agents: [$a] }) { id } }",
            json!({ "d": "x", "a": "unified-profiler" }),
        ).await;
        assert_ne!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
        // A nullable variable with a default fits a required argument.
        let body = app.graphql(Some(&token), "query($d: ID = \"x\") { job(id: $d) { id } }", json!({})).await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
        // An upload given as a dataset's name: the multipart request's placeholder was stored.
        let operations = json!({
            "query": "mutation($f: Upload!) { uploadDataset(file: $f, name: $f) { name } }",
            "variables": { "f": null },
        });
        let (_, body) = multipart(&app, &token, operations, json!({ "0": ["variables.f"] })).await;
        assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
        // A file the multipart map puts into a String variable, or into an input object.
        for (query, path) in [
            ("mutation($f: Upload!, $n: String) { uploadDataset(file: $f, name: $n) { name } }", "variables.n"),
            ("mutation($f: Upload!, $i: AskCopilotInput!) { uploadDataset(file: $f) { name } askCopilot(input: $i) { answer } }", "variables.i.question"),
        ] {
            let operations = json!({ "query": query, "variables": { "f": null, "n": null, "i": { "question": null } } });
            let (_, body) = multipart(&app, &token, operations, json!({ "0": ["variables.f"], "1": [path] })).await;
            assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{path}: {body}");
        }
        let datasets = app.graphql(Some(&token), "{ datasets { totalCount } }", json!({})).await;
        assert_eq!(datasets["data"]["datasets"]["totalCount"], 0.0, "{datasets}");
    }

    async fn the_committed_sdl_says_what_introspection_says_of_scalars(app) {
        // Codegen from introspection and from schema/schema.graphql must agree.
        let body = app.graphql(None, "{ __schema { types { name specifiedByURL } } }", json!({})).await;
        let sdl = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/schema.graphql")).unwrap();
        let mut specified = 0;
        for ty in body["data"]["__schema"]["types"].as_array().unwrap_or_else(|| panic!("{body}")) {
            if let Some(url) = ty["specifiedByURL"].as_str() {
                let name = ty["name"].as_str().unwrap();
                assert!(sdl.contains(&format!("scalar {name} @specifiedBy(url: \"{url}\")")), "{name}: {url}");
                specified += 1;
            }
        }
        assert!(specified >= 2, "{body}");
    }

    async fn fields_come_in_the_order_the_query_asks_for(app) {
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "t.csv", b"a,b\n1,x\n2,y\n").await;
        let job = crate::jobs::run_profile(&app, &token, &dataset, json!({})).await;
        let done = crate::jobs::wait_for(&app, &token, &job["id"], crate::jobs::finished).await;
        assert_eq!(done["status"], "COMPLETED", "{done}");
        // async-graphql answered an object's plain fields before its computed ones.
        let query = "query($id: ID!) { job(id: $id) { report { summary ...P } error { code } dataset { id } id toolId } }
            fragment P on Report { profile { columns { topValues { value } name } rowCount } }";
        let body = app.graphql(Some(&token), query, json!({ "id": job["id"] })).await;
        let keys = |v: &Value| v.as_object().unwrap_or_else(|| panic!("{body}")).keys().cloned().collect::<Vec<_>>();
        let job = &body["data"]["job"];
        assert_eq!(keys(job), ["report", "error", "dataset", "id", "toolId"], "{body}");
        assert_eq!(keys(&job["report"]), ["summary", "profile"], "{body}");
        assert_eq!(keys(&job["report"]["profile"]), ["columns", "rowCount"], "{body}");
        assert_eq!(keys(&job["report"]["profile"]["columns"][1]), ["topValues", "name"], "{body}");
        // Nothing selected (every root field skipped): an empty object, not null.
        let body = app.graphql(Some(&token), "query($s: Boolean!) { me @skip(if: $s) { id } }", json!({ "s": true })).await;
        assert_eq!(body, json!({ "data": {} }));
    }

    async fn a_batch_is_refused_saying_so(app) {
        let batch = json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }]).to_string();
        let (status, _, body) = raw(&app, "application/json", None, batch).await;
        assert_eq!((status, error_code(&body)), (400, "BAD_REQUEST"));
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("batched requests"), "{body}");
    }

    async fn malformed_requests_get_clear_codes(app) {
        let cases: [(&str, &str, u16, &str); 6] = [
            ("application/json", "{ not json", 400, "BAD_REQUEST"),
            ("application/json", "{\"variables\": {}}", 400, "BAD_REQUEST"),
            ("application/json", "{\"query\": \"\"}", 400, "BAD_REQUEST"),
            ("application/json", "{\"query\": \"{ __typename }\", \"variables\": [1]}", 400, "BAD_REQUEST"),
            ("text/plain", "{ __typename }", 415, "UNSUPPORTED_MEDIA_TYPE"),
            ("application/x-www-form-urlencoded", "query=%7B__typename%7D", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ];
        for (content_type, body, status, code) in cases {
            let (got_status, _, got) = raw(&app, content_type, None, body).await;
            assert_eq!((got_status, error_code(&got)), (status, code), "{content_type} {body}: {got}");
            assert!(got["errors"][0]["message"].as_str().is_some_and(|m| !m.is_empty()));
            // In the media type the client accepted.
            let (got_status, media, _) = raw(&app, content_type, Some(GQL_RESPONSE), body).await;
            assert_eq!(got_status, status);
            assert!(media.starts_with(GQL_RESPONSE), "{content_type} {body}: {media}");
        }
        let no_content_type = app.client.post(format!("{}/graphql", app.address)).body("{}").send().await.unwrap();
        assert_eq!(no_content_type.status().as_u16(), 415);
    }

    async fn oversized_bodies_are_refused(app, &[("MAX_BODY_SIZE", "2KiB")]) {
        let big = json!({ "query": format!("{{ __typename }} # {}", "x".repeat(4096)) }).to_string();
        let (status, _, body) = raw(&app, "application/json", None, big.clone()).await;
        assert_eq!((status, error_code(&body)), (413, "PAYLOAD_TOO_LARGE"));
        // Without a Content-Length (chunked), the limit still holds while reading.
        let stream = futures_util::stream::iter(big.into_bytes().chunks(512).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>());
        let (status, _, body) = raw(&app, "application/json", None, reqwest::Body::wrap_stream(stream)).await;
        assert_eq!((status, error_code(&body)), (413, "PAYLOAD_TOO_LARGE"));
        // The server is still up.
        let (status, _, _) = raw(&app, "application/json", None, json!({ "query": "{ __typename }" }).to_string()).await;
        assert_eq!(status, 200);
    }

    async fn idle_connections_are_closed(app, &[("IDLE_TIMEOUT", "1s")]) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A client that connects and says nothing, and one that keeps its connection after an
        // answer.
        let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), silent.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "a silent connection is still open after 10 s");
        let mut kept = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), kept.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "an idle kept-alive connection is still open after 10 s");
        assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
        // A body that stops arriving is refused once nothing has come for the timeout, for a
        // GraphQL request (signed in or not) and an upload (signed in: an anonymous one is
        // refused before its body is read) alike.
        let token = app.token_for("ada@example.com").await;
        let upload = format!("Authorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000");
        for (headers, part) in [
            ("Content-Type: application/json\r\nContent-Length: 1000", "{\"query\": \""),
            (upload.as_str(), "--b\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{"),
        ] {
            let mut stalled = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
            stalled.write_all(format!("POST /graphql HTTP/1.1\r\nHost: x\r\n{headers}\r\n\r\n{part}").as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            let read = tokio::time::timeout(std::time::Duration::from_secs(10), stalled.read_to_end(&mut answer)).await;
            assert!(read.is_ok(), "a stalled body is still waited for after 10 s ({part})");
            let answer = String::from_utf8_lossy(&answer);
            assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("BAD_REQUEST"), "{answer}");
        }
        // The server still answers new connections.
        let (status, _, body) = raw(&app, "application/json", None, json!({ "query": "{ __typename }" }).to_string()).await;
        assert_eq!((status, &body["data"]["__typename"]), (200, &json!("Query")));
    }

    async fn get_runs_queries_but_not_mutations(app) {
        let url = format!("{}/graphql", app.address);
        let ok = app.client.get(&url).query(&[("query", "query Q($t: String!) { __type(name: $t) { name } }"), ("variables", "{\"t\": \"User\"}"), ("operationName", "Q")]).send().await.unwrap();
        assert_eq!(ok.status().as_u16(), 200);
        assert_eq!(ok.json::<Value>().await.unwrap()["data"]["__type"]["name"], "User");

        let mutation = app.client.get(&url).query(&[("query", "mutation { signOut(refreshToken: \"x\") }")]).send().await.unwrap();
        assert_eq!(mutation.status().as_u16(), 405);
        assert_eq!(mutation.headers()["allow"], "POST");
        assert_eq!(error_code(&mutation.json::<Value>().await.unwrap()), "METHOD_NOT_ALLOWED");

        let missing = app.client.get(&url).send().await.unwrap();
        assert_eq!(missing.status().as_u16(), 400);
        let bad_variables = app.client.get(&url).query(&[("query", "{ __typename }"), ("variables", "{oops")]).send().await.unwrap();
        assert_eq!(bad_variables.status().as_u16(), 400);
        assert_eq!(error_code(&bad_variables.json::<Value>().await.unwrap()), "BAD_REQUEST");
    }

    async fn every_response_carries_a_request_id(app) {
        let response = app.client.get(format!("{}/healthz", app.address)).send().await.unwrap();
        assert!(!response.headers()["x-request-id"].is_empty());
        let response = app.client.get(format!("{}/healthz", app.address)).header("x-request-id", "from-proxy-42").send().await.unwrap();
        assert_eq!(response.headers()["x-request-id"], "from-proxy-42");
        let response = app.client.get(format!("{}/healthz", app.address)).header("x-request-id", "bad id with spaces").send().await.unwrap();
        assert_ne!(response.headers()["x-request-id"], "bad id with spaces");
    }
}
