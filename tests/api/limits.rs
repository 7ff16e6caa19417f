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
