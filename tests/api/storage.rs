//! Dataset files in an object store (`STORAGE_URL`): published when complete, fetched back
//! when the local cache is gone, removed on delete, never half-written.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::helpers::{Store, error_code, spawn_app_with};

fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() { walk(&path, out) } else { out.push(path) }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

fn names(paths: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> =
        paths.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn datasets_live_in_the_object_store_and_survive_a_lost_cache() {
    let bucket = tempfile::tempdir().unwrap();
    let url = format!("file://{}/datasets", bucket.path().display());
    let app = spawn_app_with(Store::Sqlite, &[("STORAGE_URL", &url)]).await.unwrap();
    let token = app.token_for("ada@example.com").await;
    let csv = b"id,name\n1,Ada\n2,Bob,extra\n3,Cy\n";
    let dataset = app.upload_ok(&token, "people.csv", csv).await;
    let id = dataset["id"].as_str().unwrap().to_string();
    assert_eq!(dataset["rejectedRowCount"], 1.0, "{dataset}");

    // The durable copy is in the bucket, laid out per owner and dataset version.
    let stored = files(&bucket.path().join("datasets"));
    assert_eq!(names(&stored), ["data.parquet", "original", "rejects.parquet"], "{stored:?}");
    assert!(stored.iter().all(|p| p.parent().unwrap().ends_with(&id)));
    assert_eq!(std::fs::read(stored.iter().find(|p| p.ends_with("original")).unwrap()).unwrap(), csv);

    // A new instance (or a wiped disk) has no local copy: it is fetched back on first use.
    let cached = app.data_dir.path().join("datasets");
    let cache_dir = files(&cached).into_iter().find(|p| p.ends_with("data.parquet")).unwrap();
    std::fs::remove_dir_all(cache_dir.parent().unwrap()).unwrap();
    let query =
        "query($id: ID!) { dataset(id: $id) { preview(limit: 5) rejects { line } download { url } } }";
    let body = app.graphql(Some(&token), query, json!({ "id": id })).await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(
        body["data"]["dataset"]["preview"],
        json!([{ "id": 1, "name": "Ada" }, { "id": 3, "name": "Cy" }])
    );
    assert_eq!(body["data"]["dataset"]["rejects"], json!([{ "line": 3.0 }]));
    let url = body["data"]["dataset"]["download"]["url"].as_str().unwrap();
    let text = app.client.get(format!("{}{url}", app.address)).send().await.unwrap().text().await.unwrap();
    assert_eq!(text, "id,name\n1,Ada\n3,Cy\n");
    // The original stays in the bucket only: nothing reads it again.
    assert!(!files(&cached).iter().any(|p| p.ends_with("original")));
    assert!(app.files_under("datasets/.fetch").is_empty());

    // Deleting removes the durable copy and the cache.
    let deleted =
        app.graphql(Some(&token), "mutation($id: ID!) { deleteDataset(id: $id) }", json!({ "id": id })).await;
    assert_eq!(deleted["data"]["deleteDataset"], true, "{deleted}");
    assert!(files(&bucket.path().join("datasets")).is_empty());
    assert!(!files(&cached).iter().any(|p| p.to_string_lossy().contains(&id)));
    app.stop().await.unwrap();
}

/// An S3-compatible server for the S3 test: `AGENSIUM_TEST_S3_ENDPOINT` (`.ci/run` starts
/// one); without it the test skips, unless `AGENSIUM_REQUIRE_S3=1`.
fn s3_endpoint() -> Option<String> {
    match std::env::var("AGENSIUM_TEST_S3_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => Some(endpoint),
        _ => {
            assert!(
                std::env::var("AGENSIUM_REQUIRE_S3").as_deref() != Ok("1"),
                "AGENSIUM_REQUIRE_S3=1 but AGENSIUM_TEST_S3_ENDPOINT is not set"
            );
            eprintln!("skipping: AGENSIUM_TEST_S3_ENDPOINT is not set");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_round_trip_through_an_s3_compatible_server() {
    use futures_util::TryStreamExt;
    use object_store::ObjectStore;
    let Some(endpoint) = s3_endpoint() else { return };
    let bucket = format!("agensium-test-{}", uuid::Uuid::new_v4().simple());
    // The test server accepts any credentials; create the bucket first.
    let created = reqwest::Client::new().put(format!("{endpoint}/{bucket}")).send().await.unwrap();
    assert!(created.status().is_success(), "creating the bucket: {}", created.status());
    let url = format!("s3://{bucket}/tenant-a");
    let vars = [
        ("STORAGE_URL", url.as_str()),
        ("STORAGE_ENDPOINT", endpoint.as_str()),
        ("STORAGE_REGION", "us-east-1"),
        ("STORAGE_ACCESS_KEY_ID", "test"),
        ("STORAGE_SECRET_ACCESS_KEY", "test-secret"),
    ];
    let app = spawn_app_with(Store::Sqlite, &vars).await.unwrap();
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(&bucket)
        .with_endpoint(&endpoint)
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test-secret")
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .build()
        .unwrap();
    let listed = || async {
        let mut names: Vec<String> =
            s3.list(None).map_ok(|m| m.location.to_string()).try_collect().await.unwrap();
        names.sort();
        names
    };

    let token = app.token_for("ada@example.com").await;
    // Bigger than one multipart part (8 MiB), so the multipart path is exercised.
    let csv =
        format!("id,label\n{}", (0..600_000).map(|i| format!("{i},row number {i}\n")).collect::<String>());
    let dataset = app.upload_ok(&token, "big.csv", csv.as_bytes()).await;
    let id = dataset["id"].as_str().unwrap().to_string();
    let objects = listed().await;
    assert_eq!(objects.len(), 3, "{objects:?}");
    assert!(objects.iter().all(|o| o.starts_with("tenant-a/") && o.contains(&id)), "{objects:?}");
    let original = objects.iter().find(|o| o.ends_with("/original")).unwrap();
    let bytes =
        s3.get(&object_store::path::Path::from(original.as_str())).await.unwrap().bytes().await.unwrap();
    assert_eq!(bytes.len(), csv.len());

    let cached = app.data_dir.path().join("datasets");
    let cache_dir = files(&cached).into_iter().find(|p| p.ends_with("data.parquet")).unwrap();
    std::fs::remove_dir_all(cache_dir.parent().unwrap()).unwrap();
    let body = app
        .graphql(
            Some(&token),
            "query($id: ID!) { dataset(id: $id) { preview(limit: 1, offset: 599999) } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        body["data"]["dataset"]["preview"],
        json!([{ "id": 599999, "label": "row number 599999" }]),
        "{body}"
    );

    let deleted =
        app.graphql(Some(&token), "mutation($id: ID!) { deleteDataset(id: $id) }", json!({ "id": id })).await;
    assert_eq!(deleted["data"]["deleteDataset"], true, "{deleted}");
    assert!(listed().await.is_empty());
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_upload_the_object_store_refuses_leaves_nothing_behind() {
    // The bucket's prefix is a file, so every write under it fails.
    let bucket = tempfile::tempdir().unwrap();
    std::fs::write(bucket.path().join("datasets"), b"not a directory").unwrap();
    let url = format!("file://{}/datasets", bucket.path().display());
    let app = spawn_app_with(Store::Sqlite, &[("STORAGE_URL", &url)]).await.unwrap();
    let token = app.token_for("ada@example.com").await;
    let (status, body) = app.upload(&token, "a.csv", b"a,b\n1,2\n".to_vec(), None).await;
    assert_eq!((status, error_code(&body)), (200, "INTERNAL"), "{body}");
    let list = app.graphql(Some(&token), "{ datasets { totalCount } }", json!({})).await;
    assert_eq!(list["data"]["datasets"]["totalCount"], 0);
    // Nothing staged, cached or uploaded is left.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let left: Vec<_> = app.files_under("datasets");
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(files(bucket.path()).len(), 1);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_bad_storage_url_stops_start_up_with_its_name() {
    let mut vars = std::collections::HashMap::new();
    vars.insert("STORAGE_URL".to_string(), "ftp://example.com/x".to_string());
    let error = agensium::config::Config::from_map(&vars).unwrap_err();
    assert_eq!(error.variable, "STORAGE_URL");
    vars.insert("STORAGE_URL".to_string(), "s3://".to_string());
    assert_eq!(agensium::config::Config::from_map(&vars).unwrap_err().variable, "STORAGE_URL");
    vars.remove("STORAGE_URL");
    vars.insert("STORAGE_SECRET_ACCESS_KEY".to_string(), "x".to_string());
    assert_eq!(agensium::config::Config::from_map(&vars).unwrap_err().variable, "STORAGE_SECRET_ACCESS_KEY");
}
