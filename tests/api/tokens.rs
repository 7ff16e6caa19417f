//! Access tokens a client may present: expired, forged, `alg: none`, another algorithm.

use base64::Engine as _;
use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::both_stores;
use crate::helpers::{SECRET_KEY, error_code, forge_token as forge};

const ME: &str = "{ me { email } }";

fn unsigned(user_id: &str) -> String {
    let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let now = chrono::Utc::now().timestamp();
    format!(
        "{}.{}.",
        b64(json!({ "alg": "none", "typ": "JWT" })),
        b64(json!({ "sub": user_id, "role": "ADMIN", "iat": now, "exp": now + 600, "jti": "x" }))
    )
}

both_stores! {
    async fn a_token_signed_by_the_server_works(app) {
        let session = app.sign_up("ada@example.com", "correct horse battery").await;
        let id = session["user"]["id"].as_str().unwrap();
        let token = forge(id, Algorithm::HS256, SECRET_KEY, 600);
        assert_eq!(app.graphql(Some(&token), ME, json!({})).await["data"]["me"]["email"], "ada@example.com");
    }

    async fn bad_tokens_are_refused_with_unauthenticated(app) {
        let session = app.sign_up("ada@example.com", "correct horse battery").await;
        let id = session["user"]["id"].as_str().unwrap();
        let cases = [
            ("expired", forge(id, Algorithm::HS256, SECRET_KEY, -3600)),
            ("another key", forge(id, Algorithm::HS256, "another-secret-key-0123456789abcdef", 600)),
            ("alg none", unsigned(id)),
            ("another algorithm", forge(id, Algorithm::HS512, SECRET_KEY, 600)),
            ("garbage", "not-a-jwt".to_string()),
        ];
        for (what, token) in cases {
            let (status, body) = app.post_graphql(Some(&token), ME, json!({})).await;
            assert_eq!(status, 200, "{what}");
            assert_eq!(error_code(&body), "UNAUTHENTICATED", "{what}: {body}");
            assert!(body["data"]["me"].is_null(), "{what}: {body}");
        }
        let expired = app.graphql(Some(&forge(id, Algorithm::HS256, SECRET_KEY, -3600)), ME, json!({})).await;
        assert!(expired["errors"][0]["message"].as_str().unwrap().contains("expired"), "{expired}");

        // A header that is not `Bearer <token>`.
        let response = app
            .client
            .post(format!("{}/graphql", app.address))
            .header("authorization", "Basic YTpi")
            .json(&json!({ "query": ME }))
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "UNAUTHENTICATED");
    }

    async fn an_expired_token_does_not_block_signing_in_or_refreshing(app) {
        let session = app.sign_up("ada@example.com", "correct horse battery").await;
        let stale = forge(session["user"]["id"].as_str().unwrap(), Algorithm::HS256, SECRET_KEY, -3600);
        let body = app
            .graphql(Some(&stale), "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }", json!({ "t": session["refreshToken"] }))
            .await;
        assert!(body["data"]["refreshSession"]["accessToken"].is_string(), "{body}");
    }

    async fn hs512_is_accepted_when_configured(app, &[("ALGORITHM", "HS512")]) {
        let session = app.sign_up("ada@example.com", "correct horse battery").await;
        let token = session["accessToken"].as_str().unwrap();
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.alg, Algorithm::HS512);
        assert_eq!(app.graphql(Some(token), ME, json!({})).await["data"]["me"]["email"], "ada@example.com");
        let hs256 = forge(session["user"]["id"].as_str().unwrap(), Algorithm::HS256, SECRET_KEY, 600);
        assert_eq!(error_code(&app.graphql(Some(&hs256), ME, json!({})).await), "UNAUTHENTICATED");
    }
}
