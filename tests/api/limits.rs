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

    async fn lists_weigh_what_they_return(app) {
        // Each of these passed the limits when a list counted once: one request could ask for
        // 26 jobs' datasets' thousand-row previews (300 MB), or 29 histograms of every column.
        let token = app.token_for("ada@example.com").await;
        let heavy = [
            "{ jobs(first: 26) { nodes { dataset { preview(limit: 1000) } } } }",
            "{ a: datasets(first: 10) { nodes { preview(limit: 1000) } } b: datasets(first: 10) { nodes { preview(limit: 1000) } } }",
            "query($j: ID!) { job(id: $j) { report { profile { columns { h0: histogram(bins: 2) { count } h1: histogram(bins: 3) { count } h2: histogram(bins: 4) { count } h3: histogram(bins: 5) { count } h4: histogram(bins: 6) { count } h5: histogram(bins: 7) { count } h6: histogram(bins: 8) { count } h7: histogram(bins: 9) { count } h8: histogram(bins: 10) { count } h9: histogram(bins: 11) { count } h10: histogram(bins: 12) { count } h11: histogram(bins: 13) { count } h12: histogram(bins: 14) { count } h13: histogram(bins: 15) { count } h14: histogram(bins: 16) { count } h15: histogram(bins: 17) { count } h16: histogram(bins: 18) { count } h17: histogram(bins: 19) { count } h18: histogram(bins: 21) { count } h19: histogram(bins: 22) { count } h20: histogram(bins: 23) { count } h21: histogram(bins: 24) { count } h22: histogram(bins: 25) { count } h23: histogram(bins: 26) { count } } } } } }",
        ];
        // A dataset's columns (up to 10,000 each) and a conversation's messages (up to 4,000
        // characters each) selected under 30 aliases: 1.7 GB of JSON for 50 wide datasets.
        let aliased = |field: &str| (0..30).map(|i| format!("a{i}: {field}")).collect::<Vec<_>>().join(" ");
        let columns = format!("{{ datasets(first: 50) {{ nodes {{ {} }} }} }}", aliased("columns { name }"));
        let messages = format!("{{ conversations(first: 20) {{ nodes {{ {} }} }} }}", aliased("messages(last: 200) { content }"));
        for query in heavy.iter().copied().chain([columns.as_str(), messages.as_str()]) {
            let body = app.graphql(Some(&token), query, json!({ "j": "x" })).await;
            assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{query}: {body}");
        }
        // What a client asks for day to day still runs.
        let light = [
            "{ jobs(first: 100) { totalCount nodes { id status toolId progress createdAt dataset { id name } } } }",
            "{ datasets(first: 50) { nodes { id name rowCount columns { name type } } } }",
            "query($j: ID!) { dataset(id: $j) { preview(limit: 1000) rejects(first: 100) { line reason } } }",
            "query($j: ID!) { conversation(id: $j) { id messages(last: 200) { seq role content createdAt } } }",
            "{ conversations { nodes { id messages { seq role content sources model createdAt } } } }",
            "query($j: ID!) { job(id: $j) { report { profile { columns { name nullCount distinctCount mean topValues(limit: 10) { value count } histogram(bins: 30) { lower upper count } } } } } }",
        ];
        for query in light {
            let body = app.graphql(Some(&token), query, json!({ "j": "x" })).await;
            let code = &body["errors"][0]["extensions"]["code"];
            assert!(code.is_null() || code == "NOT_FOUND", "{query}: {body}");
        }
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
