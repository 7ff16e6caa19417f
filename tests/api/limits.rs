//! Depth, complexity and alias limits refuse an operation before it runs.

use serde_json::json;

use crate::both_stores;
use crate::helpers::error_code;

const DEEP: &str = "{ __schema { types { fields { type { ofType { ofType { name } } } } } } }";

both_stores! {
    async fn queries_over_the_depth_limit_are_refused(app, &[("GRAPHQL_MAX_DEPTH", "4")]) {
        let (status, body) = app.post_graphql(None, DEEP, json!({})).await;
        assert_eq!(status, 200);
        assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
        assert!(body.get("data").is_none());
        assert!(app.graphql(None, "{ me { id } }", json!({})).await["errors"].is_null());
    }

    async fn queries_over_the_complexity_limit_are_refused(app, &[("GRAPHQL_MAX_COMPLEXITY", "3")]) {
        let body = app.graphql(None, "{ me { id email role createdAt } }", json!({})).await;
        assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
        assert!(app.graphql(None, "{ me { id } }", json!({})).await["errors"].is_null());
    }

    async fn queries_with_too_many_aliases_are_refused(app, &[("GRAPHQL_MAX_ALIASES", "2")]) {
        let ok = app.graphql(None, "{ a: __typename b: __typename }", json!({})).await;
        assert!(ok["errors"].is_null(), "{ok}");
        let body = app.graphql(None, "{ a: __typename b: __typename c: __typename }", json!({})).await;
        assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("aliases"));
        let in_fragment = app.graphql(None, "query { ...F } fragment F on Query { a: __typename b: __typename c: __typename }", json!({})).await;
        assert_eq!(error_code(&in_fragment), "QUERY_TOO_COMPLEX", "{in_fragment}");
    }

    async fn deeply_nested_values_and_fragment_bombs_are_refused_without_harm(app) {
        // Nested values overflowed the parser's stack and aborted the process (no token needed).
        for (open, close) in [("[", "]"), ("{a:", "}")] {
            let query = format!("{{ tool(id: \"x\") {{ description(x: {}1{}) }} }}", open.repeat(5000), close.repeat(5000));
            let (status, body) = app.post_graphql(None, &query, json!({})).await;
            assert_eq!((status, error_code(&body)), (200, "GRAPHQL_PARSE_FAILED"), "{body}");
        }
        // Brackets inside strings and comments are text.
        let quoted = format!("{{ tool(id: \"{}\") {{ id }} }} # {}", "[".repeat(500), "{".repeat(500));
        let body = app.graphql(None, &quoted, json!({})).await;
        assert!(body.get("data").is_some() && body["errors"][0]["extensions"]["code"] != "GRAPHQL_PARSE_FAILED", "{body}");
        // Fragments that each spread the next twice: 2^30 fields, refused at once.
        let mut query = String::from("query { ...F0 }");
        for i in 0..30 {
            query.push_str(&format!(" fragment F{i} on Query {{ ...F{} ...F{} }}", i + 1, i + 1));
        }
        query.push_str(" fragment F30 on Query { __typename }");
        let started = std::time::Instant::now();
        let body = app.graphql(None, &query, json!({})).await;
        assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
        assert!(app.graphql(None, "{ me { id } }", json!({})).await["errors"].is_null(), "still serving");
    }

    async fn the_default_limits_refuse_a_hostile_query(app) {
        let mut query = String::from("{ __schema { types { ");
        for _ in 0..20 {
            query.push_str("fields { type { ");
        }
        query.push_str("name");
        query.push_str(&" } }".repeat(20));
        query.push_str(" } } }");
        let body = app.graphql(None, &query, json!({})).await;
        assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
    }
}
