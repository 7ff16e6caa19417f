//! Sign-up, sign-in, sessions, roles and rate limits, as a client sees them.

use serde_json::json;

use crate::both_stores;
use crate::helpers::error_code;

const ME: &str = "{ me { id email role createdAt } }";

both_stores! {
    async fn sign_up_returns_a_working_session(app) {
        let session = app.sign_up("  Ada@Example.COM ", "correct horse battery").await;
        assert_eq!(session["expiresIn"], 900);
        assert_eq!(session["user"]["email"], "ada@example.com");
        assert_eq!(session["user"]["role"], "USER");
        let token = session["accessToken"].as_str().unwrap();
        let me = app.graphql(Some(token), ME, json!({})).await;
        assert_eq!(me["data"]["me"]["email"], "ada@example.com", "{me}");
        assert_eq!(me["data"]["me"]["id"], session["user"]["id"]);
        assert!(me["data"]["me"]["createdAt"].as_str().unwrap().contains('T'));
    }

    async fn me_is_null_without_a_token(app) {
        let me = app.graphql(None, ME, json!({})).await;
        assert_eq!(me, json!({ "data": { "me": null } }));
    }

    async fn emails_are_unique_whatever_their_case(app) {
        app.sign_up("ada@example.com", "correct horse battery").await;
        let body = app
            .graphql(None, "mutation { signUp(email: \" ADA@example.COM\", password: \"another good one\") { accessToken } }", json!({}))
            .await;
        assert_eq!(error_code(&body), "CONFLICT", "{body}");
        // (A mutation's failed field is null; its siblings would keep their results.)
        assert_eq!(body["data"], json!({ "signUp": null }), "{body}");
    }

    async fn password_rules_name_the_rule_that_failed(app) {
        let short = app.graphql(None, "mutation { signUp(email: \"a@example.com\", password: \"1234567\") { accessToken } }", json!({})).await;
        assert_eq!(error_code(&short), "BAD_USER_INPUT");
        assert!(short["errors"][0]["message"].as_str().unwrap().contains("at least 8 characters"), "{short}");
        assert_eq!(short["errors"][0]["extensions"]["field"], "password");
        let long = "é".repeat(65); // 65 characters, 130 bytes
        let body = app
            .graphql(None, "mutation($p: String!) { signUp(email: \"a@example.com\", password: $p) { accessToken } }", json!({ "p": long }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("at most 128 bytes"), "{body}");
        let bad_email = app.graphql(None, "mutation { signUp(email: \"not-an-email\", password: \"long enough\") { accessToken } }", json!({})).await;
        assert_eq!(error_code(&bad_email), "BAD_USER_INPUT");
        assert_eq!(bad_email["errors"][0]["extensions"]["field"], "email");
    }

    async fn sign_in_works_and_wrong_password_looks_like_unknown_email(app) {
        app.sign_up("ada@example.com", "correct horse battery").await;
        let ok = app.sign_in("ADA@example.com", "correct horse battery").await;
        assert!(ok["data"]["signIn"]["accessToken"].is_string(), "{ok}");

        // The first unknown email also builds the dummy hash: warm up, then compare.
        app.sign_in("warmup@example.com", "wrong horse battery").await;
        let started = std::time::Instant::now();
        let wrong = app.sign_in("ada@example.com", "wrong horse battery").await;
        let wrong_time = started.elapsed();
        let started = std::time::Instant::now();
        let unknown = app.sign_in("nobody@example.com", "wrong horse battery").await;
        let unknown_time = started.elapsed();
        assert_eq!(error_code(&wrong), "UNAUTHENTICATED");
        assert_eq!(wrong["errors"], unknown["errors"], "the two failures must be indistinguishable");
        // Both verify an argon2 hash: neither is answered much faster than the other.
        assert!(unknown_time * 4 > wrong_time && wrong_time * 4 > unknown_time, "unknown {unknown_time:?} vs wrong {wrong_time:?}");
    }

    async fn refresh_rotates_and_a_replay_revokes_the_session(app) {
        let first = app.sign_up("ada@example.com", "correct horse battery").await;
        let r1 = first["refreshToken"].as_str().unwrap().to_string();
        let second = app.refresh(&r1).await;
        let r2 = second["data"]["refreshSession"]["refreshToken"].as_str().expect("rotated").to_string();
        assert_ne!(r1, r2);
        let access = second["data"]["refreshSession"]["accessToken"].as_str().unwrap();
        let me = app.graphql(Some(access), ME, json!({})).await;
        assert_eq!(me["data"]["me"]["email"], "ada@example.com");

        // r1 again: a replay. It fails, and r2 (same session) stops working too.
        let replay = app.refresh(&r1).await;
        assert_eq!(error_code(&replay), "UNAUTHENTICATED");
        assert!(replay["errors"][0]["message"].as_str().unwrap().contains("already used"), "{replay}");
        let after = app.refresh(&r2).await;
        assert_eq!(error_code(&after), "UNAUTHENTICATED", "{after}");

        // Another sign-in is a separate session and still works.
        let other = app.sign_in("ada@example.com", "correct horse battery").await;
        let r3 = other["data"]["signIn"]["refreshToken"].as_str().unwrap();
        assert!(app.refresh(r3).await["data"]["refreshSession"].is_object());
        assert_eq!(error_code(&app.refresh("made-up-token").await), "UNAUTHENTICATED");
    }

    async fn sign_out_revokes_the_refresh_token(app) {
        let session = app.sign_up("ada@example.com", "correct horse battery").await;
        let refresh = session["refreshToken"].as_str().unwrap();
        let out = app.graphql(None, "mutation($t: String!) { signOut(refreshToken: $t) }", json!({ "t": refresh })).await;
        assert_eq!(out["data"]["signOut"], true, "{out}");
        let again = app.refresh(refresh).await;
        assert_eq!(error_code(&again), "UNAUTHENTICATED");
        assert!(again["errors"][0]["message"].as_str().unwrap().contains("signed out"), "{again}");
        let unknown = app.graphql(None, "mutation { signOut(refreshToken: \"nope\") }", json!({})).await;
        assert_eq!(unknown["data"]["signOut"], false);
        let again = app.graphql(None, "mutation($t: String!) { signOut(refreshToken: $t) }", json!({ "t": refresh })).await;
        assert_eq!(again["data"]["signOut"], false, "the session ended already: {again}");
    }

    async fn sign_in_is_rate_limited_per_account(app, &[("SIGNIN_MAX_ATTEMPTS_PER_ACCOUNT", "3")]) {
        app.sign_up("ada@example.com", "correct horse battery").await;
        // Attempts in parallel are counted as they arrive, not after their hash.
        let attempts = (0..3).map(|_| app.sign_in("ada@example.com", "wrong password!"));
        for body in futures_util::future::join_all(attempts).await {
            assert_eq!(error_code(&body), "UNAUTHENTICATED");
        }
        // Now even the right password is refused until the window ends.
        let limited = app.sign_in("ada@example.com", "correct horse battery").await;
        assert_eq!(error_code(&limited), "RATE_LIMITED", "{limited}");
        let retry_after = limited["errors"][0]["extensions"]["retryAfter"].as_u64().unwrap();
        assert!(retry_after > 0 && retry_after <= 900, "{limited}");
        // Other accounts are not affected.
        app.sign_up("bob@example.com", "correct horse battery").await;
        assert!(app.sign_in("bob@example.com", "correct horse battery").await["data"]["signIn"].is_object());
    }

    async fn sign_in_is_rate_limited_per_address(app, &[("SIGNIN_MAX_ATTEMPTS_PER_ADDRESS", "4")]) {
        for i in 0..4 {
            let body = app.sign_in(&format!("user{i}@example.com"), "whatever123").await;
            assert_eq!(error_code(&body), "UNAUTHENTICATED");
        }
        let limited = app.sign_in("user9@example.com", "whatever123").await;
        assert_eq!(error_code(&limited), "RATE_LIMITED", "{limited}");
    }

    async fn only_admins_list_users(app) {
        let user = app.sign_up("ada@example.com", "correct horse battery").await;
        let token = user["accessToken"].as_str().unwrap();
        let query = "{ users(first: 1) { totalCount nodes { email role } pageInfo { hasNextPage endCursor } } }";
        assert_eq!(error_code(&app.graphql(Some(token), query, json!({})).await), "FORBIDDEN");
        assert_eq!(error_code(&app.graphql(None, query, json!({})).await), "UNAUTHENTICATED");

        // An administrator, made with the command line, as an operator would.
        crate::binary::run_cli(&app, &["user", "create", "--email", "root@example.com", "--admin"], "admin password 1\n");
        let admin = app.sign_in("root@example.com", "admin password 1").await;
        assert_eq!(admin["data"]["signIn"]["user"]["role"], "ADMIN", "{admin}");
        let admin_token = admin["data"]["signIn"]["accessToken"].as_str().unwrap();
        let page1 = app.graphql(Some(admin_token), query, json!({})).await;
        assert_eq!(page1["data"]["users"]["totalCount"], 2, "{page1}");
        assert_eq!(page1["data"]["users"]["nodes"][0]["email"], "root@example.com");
        assert_eq!(page1["data"]["users"]["pageInfo"]["hasNextPage"], true);
        let cursor = page1["data"]["users"]["pageInfo"]["endCursor"].as_str().unwrap();
        let page2 = app
            .graphql(Some(admin_token), "query($a: String) { users(first: 5, after: $a) { nodes { email } pageInfo { hasNextPage } } }", json!({ "a": cursor }))
            .await;
        assert_eq!(page2["data"]["users"]["nodes"], json!([{ "email": "ada@example.com" }]), "{page2}");
        assert_eq!(page2["data"]["users"]["pageInfo"]["hasNextPage"], false);
        let bad = app.graphql(Some(admin_token), "{ users(first: 1000) { totalCount } }", json!({})).await;
        assert_eq!(error_code(&bad), "BAD_USER_INPUT");
        let bad = app.graphql(Some(admin_token), "{ users(after: \"garbage\") { totalCount } }", json!({})).await;
        assert_eq!(error_code(&bad), "BAD_USER_INPUT");
    }

    async fn concurrent_sign_ups_all_succeed(app) {
        let app = std::sync::Arc::new(app);
        let mut tasks = Vec::new();
        for i in 0..16 {
            let app = app.clone();
            tasks.push(tokio::spawn(async move { app.sign_up(&format!("user{i}@example.com"), "correct horse battery").await }));
        }
        for task in tasks {
            let session = task.await.unwrap();
            assert!(session["accessToken"].is_string());
        }
    }

    async fn internal_errors_hide_their_cause(app) {
        let session = app.sign_up("ada@example.com", "correct horse battery").await;
        app.execute_sql("DROP TABLE refresh_tokens").await;
        let body = app.refresh(session["refreshToken"].as_str().unwrap()).await;
        assert_eq!(error_code(&body), "INTERNAL", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        let request_id = body["errors"][0]["extensions"]["requestId"].as_str().unwrap();
        assert!(!request_id.is_empty() && message.contains(request_id), "{body}");
        let text = body.to_string().to_lowercase();
        assert!(!text.contains("refresh_tokens") && !text.contains("table"), "cause leaked: {body}");
    }
}
