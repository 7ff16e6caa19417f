//! Health, readiness, metrics, the playground, CORS and graceful shutdown.

use serde_json::{Value, json};

use crate::both_stores;

both_stores! {
    async fn health_and_readiness(app) {
        let health = app.client.get(format!("{}/healthz", app.address)).send().await.unwrap();
        assert_eq!(health.status().as_u16(), 200);
        let ready = app.client.get(format!("{}/readyz", app.address)).send().await.unwrap();
        assert_eq!(ready.status().as_u16(), 200);
        assert_eq!(
            ready.json::<Value>().await.unwrap(),
            json!({ "status": "ready", "checks": { "metadataStore": "ok", "engine": "ok" } })
        );
    }

    async fn metrics_count_requests_latency_and_error_codes(app) {
        app.graphql(None, "{ users { totalCount } }", json!({})).await;
        app.graphql(None, "{ nope }", json!({})).await;
        let text = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
        let line = |prefix: &str| {
            text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in\n{text}")).to_string()
        };
        assert!(line("agensium_http_requests_total{method=\"POST\",route=\"/graphql\",status=\"200\"}").ends_with(" 2"));
        assert!(line("agensium_graphql_errors_total{code=\"UNAUTHENTICATED\"}").ends_with(" 1"));
        assert!(line("agensium_graphql_errors_total{code=\"GRAPHQL_VALIDATION_FAILED\"}").ends_with(" 1"));
        assert!(line("agensium_graphql_errors_total{code=\"INTERNAL\"}").ends_with(" 0"));
        line("agensium_http_request_duration_seconds_bucket{method=\"POST\",route=\"/graphql\",le=\"0.1\"}");
        // Unknown paths share one label instead of growing the series.
        app.client.get(format!("{}/no/such/{}", app.address, uuid::Uuid::new_v4())).send().await.unwrap();
        let text = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
        assert!(text.contains("route=\"other\",status=\"404\""), "{text}");
    }

    async fn the_playground_is_served_from_the_binary(app) {
        for path in ["/", "/playground"] {
            let page = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
            assert_eq!(page.status().as_u16(), 200);
            let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
            assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"), "{csp}");
            let html = page.text().await.unwrap();
            assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"), "external URL in the page");
            let assets: Vec<&str> = html
                .split(['"', '\''])
                .filter(|s| s.starts_with("/playground/assets/"))
                .collect();
            assert!(assets.len() >= 6, "{assets:?}");
            for asset in assets {
                let response = app.client.get(format!("{}{asset}", app.address)).send().await.unwrap();
                assert_eq!(response.status().as_u16(), 200, "{asset}");
                let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
                assert!(content_type.starts_with("text/javascript") || content_type.starts_with("text/css"), "{asset}: {content_type}");
                let body = response.text().await.unwrap();
                assert!(body.len() > 100, "{asset}");
            }
        }
        let script = app.client.get(format!("{}/playground/assets/playground.js", app.address)).send().await.unwrap().text().await.unwrap();
        for operation in ["signUp", "signIn", "refreshSession", "signOut", "me"] {
            assert!(script.contains(operation), "the playground has no example for {operation}");
        }
        let missing = app.client.get(format!("{}/playground/assets/Cargo.toml", app.address)).send().await.unwrap();
        assert_eq!(missing.status().as_u16(), 404);
        let body: Value = missing.json().await.expect("a refusal in the errors shape");
        assert_eq!(crate::helpers::error_code(&body), "NOT_FOUND", "{body}");
        // Refusals poem makes itself have the shape and codes of every other refusal.
        let unknown = app.client.get(format!("{}/no/such/route", app.address)).send().await.unwrap();
        assert_eq!(unknown.status().as_u16(), 404);
        let body: Value = unknown.json().await.expect("a refusal in the errors shape");
        assert_eq!(crate::helpers::error_code(&body), "NOT_FOUND", "{body}");
        let put = app.client.put(format!("{}/graphql", app.address)).body("{}").send().await.unwrap();
        assert_eq!(put.status().as_u16(), 405);
        let body: Value = put.json().await.expect("a refusal in the errors shape");
        assert_eq!(crate::helpers::error_code(&body), "METHOD_NOT_ALLOWED", "{body}");
    }

    async fn cors_allows_the_frontend_origin_only(app) {
        let preflight = |origin: &'static str| {
            app.client
                .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.address))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "authorization, content-type")
                .send()
        };
        for origin in ["http://app.example", "https://admin.example"] {
            let allowed = preflight(origin).await.unwrap();
            assert!(allowed.status().is_success());
            assert_eq!(allowed.headers()["access-control-allow-origin"], origin);
        }
        // Apollo's upload and operation headers pass the preflight.
        let apollo = app.client
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.address))
            .header("origin", "http://app.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "apollo-require-preflight, x-apollo-operation-name, apollographql-client-name, apollographql-client-version, content-type, traceparent, sentry-trace")
            .send()
            .await
            .unwrap();
        assert!(apollo.status().is_success(), "{}", apollo.status());
        let allowed = apollo.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
        for header in ["apollo-require-preflight", "x-apollo-operation-name", "apollographql-client-name", "apollographql-client-version", "traceparent", "sentry-trace"] {
            assert!(allowed.contains(header), "{header}: {allowed}");
        }
        let refused = preflight("http://evil.example").await.unwrap();
        assert!(refused.headers().get("access-control-allow-origin").is_none());
        let cross = app.client.post(format!("{}/graphql", app.address)).header("origin", "http://evil.example").json(&json!({ "query": "{ __typename }" })).send().await.unwrap();
        assert_eq!(cross.status().as_u16(), 403);
        let body: Value = cross.json().await.expect("a refusal in the errors shape");
        assert_eq!(crate::helpers::error_code(&body), "FORBIDDEN", "{body}");
        // The frontend's own requests get refusals in the errors shape too, with CORS headers.
        let unknown = app.client.get(format!("{}/no/such/route", app.address)).header("origin", "http://app.example").send().await.unwrap();
        assert_eq!(unknown.status().as_u16(), 404);
        assert_eq!(unknown.headers()["access-control-allow-origin"], "http://app.example");
        let body: Value = unknown.json().await.expect("a refusal in the errors shape");
        assert_eq!(crate::helpers::error_code(&body), "NOT_FOUND", "{body}");

        // Browsers send Origin on same-origin requests too (the playground does): they are not
        // cross-origin requests and must not be refused.
        let own_origin = format!("http://127.0.0.1:{}", app.port);
        let same = app.client.post(format!("{}/graphql", app.address)).header("origin", &own_origin).json(&json!({ "query": "{ __typename }" })).send().await.unwrap();
        assert_eq!(same.status().as_u16(), 200);
        assert_eq!(same.json::<Value>().await.unwrap()["data"]["__typename"], "Query");
    }

    async fn graceful_shutdown_stops_the_server(app) {
        let address = app.address.clone();
        let client = app.client.clone();
        assert!(client.get(format!("{address}/healthz")).send().await.is_ok());
        tokio::time::timeout(std::time::Duration::from_secs(10), app.stop()).await.expect("stops in time").expect("stops cleanly");
        assert!(client.get(format!("{address}/healthz")).send().await.is_err(), "still answering after shutdown");
    }
}

/// `/readyz` answers 503 when the metadata store stops answering, and `agensium healthcheck`
/// fails with it. (MySQL makes this easy to provoke: drop the database and cut its
/// connections, so the pool's next connection is refused.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_when_the_metadata_store_is_gone() {
    use mysql_async::prelude::Queryable;
    let Some(app) = crate::helpers::spawn_app_with(crate::helpers::Store::Mysql, &[]).await else { return };
    let ready = app.client.get(format!("{}/readyz", app.address)).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);

    let database = app.database_url.rsplit('/').next().unwrap().to_string();
    let admin = crate::helpers::mysql_admin_url().unwrap();
    let mut conn = mysql_async::Conn::from_url(&admin).await.unwrap();
    conn.query_drop(format!("DROP DATABASE `{database}`")).await.unwrap();
    let ids: Vec<u64> = conn
        .exec("SELECT id FROM information_schema.processlist WHERE db = ?", (database.as_str(),))
        .await
        .unwrap();
    for id in ids {
        let _ = conn.query_drop(format!("KILL CONNECTION {id}")).await;
    }
    conn.disconnect().await.ok();

    let mut status = 0;
    for _ in 0..20 {
        let response = app.client.get(format!("{}/readyz", app.address)).send().await.unwrap();
        status = response.status().as_u16();
        if status == 503 {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["checks"], json!({ "metadataStore": "error", "engine": "ok" }), "{body}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(status, 503, "readyz kept answering 200 without a metadata store");
    let health = app.client.get(format!("{}/healthz", app.address)).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200, "alive, though not ready");
    let url = format!("{}/readyz", app.address);
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_agensium"))
        .args(["healthcheck", "--url", &url])
        .env_clear()
        .output()
        .unwrap();
    assert!(!check.status.success(), "healthcheck must fail when not ready");
}
