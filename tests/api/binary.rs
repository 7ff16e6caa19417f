//! The `agensium` binary as an operator runs it: serve, SIGTERM, restart, migrate,
//! export-schema, healthcheck, user create, and refusing bad configuration.

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::TestApp;

fn agensium() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agensium"));
    // Debug logging, so that "no secret reaches the log" is checked against a chatty log.
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("RUST_LOG", "debug");
    command
}

/// Runs the binary against a test server's store; panics unless it succeeds.
pub fn run_cli(app: &TestApp, args: &[&str], stdin: &str) -> Output {
    let output = run_with_stdin(
        agensium().args(args).env("DATABASE_URL", &app.database_url).env("DATA_DIR", app.data_dir.path()),
        stdin,
    );
    assert!(output.status.success(), "agensium {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    output
}

fn run_with_stdin(command: &mut Command, stdin: &str) -> Output {
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(data_dir: &std::path::Path) -> Server {
        let port = free_port();
        let child = agensium()
            .arg("serve")
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("DATA_DIR", data_dir)
            .env("DUCKDB_MEMORY_LIMIT", "256MB")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Server { child, port }
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{}/readyz", self.port)).await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("server did not become ready");
    }

    /// Sends SIGTERM; returns the exit status and what it logged.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let killed = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut log = String::new();
                std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut log).unwrap();
                return (status, log);
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

async fn post(
    port: u16,
    token: Option<&str>,
    query: &str,
    variables: serde_json::Value,
) -> serde_json::Value {
    let mut request = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_with_embedded_defaults_stops_on_sigterm_and_keeps_its_key() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.wait_ready().await;
    let health = agensium().args(["healthcheck"]).env("PORT", server.port.to_string()).status().unwrap();
    assert!(health.success(), "healthcheck against a running server");
    let signed_up = post(
        server.port,
        None,
        "mutation { signUp(email: \"ada@example.com\", password: \"correct horse battery\") { accessToken } }",
        json!({}),
    )
    .await;
    let token = signed_up["data"]["signUp"]["accessToken"].as_str().expect("signed up").to_string();
    let (status, log) = server.terminate();
    assert!(status.success(), "exit after SIGTERM: {status:?}\n{log}");
    assert!(log.contains("generated a signing key"), "{log}");
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(!log.contains("correct horse battery"), "a password reached the log");
    assert!(data.path().join("secret_key").exists());
    assert!(data.path().join("agensium.sqlite3").exists());

    // After a restart the same key is used: the old access token is still valid, and
    // the account is still there.
    let server = Server::start(data.path());
    server.wait_ready().await;
    let me = post(server.port, Some(&token), "{ me { email } }", json!({})).await;
    assert_eq!(me["data"]["me"]["email"], "ada@example.com", "{me}");
    let (status, log) = server.terminate();
    assert!(status.success());
    assert!(!log.contains("generated a signing key"), "{log}");

    let nothing = agensium().args(["healthcheck"]).env("PORT", free_port().to_string()).status().unwrap();
    assert!(!nothing.success(), "healthcheck with no server must fail");
}

#[test]
fn bad_configuration_stops_start_up_naming_the_variable() {
    let data = tempfile::tempdir().unwrap();
    for (name, value) in [
        ("ALGORITHM", "none"),
        ("PORT", "http"),
        ("DATABASE_URL", "postgres://db/x"),
        ("SECRET_KEY", "short"),
    ] {
        let output = agensium().arg("serve").env("DATA_DIR", data.path()).env(name, value).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{name}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(name), "{name}: {stderr}");
    }
}

#[test]
fn a_data_directory_it_cannot_write_stops_start_up_naming_the_folder() {
    // Where exports are written is taken by a file (as a folder the process may not write
    // would be): the server refuses to start instead of failing the first download.
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("datasets")).unwrap();
    std::fs::write(data.path().join("datasets/.exports"), "not a folder").unwrap();
    let output = agensium().arg("serve").env("DATA_DIR", data.path()).env("PORT", "0").output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(".exports"), "{stderr}");
    assert!(stderr.contains("DATA_DIR"), "{stderr}");
}

#[test]
fn export_schema_prints_the_committed_sdl() {
    let output = agensium().arg("export-schema").output().unwrap();
    assert!(output.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/schema.graphql")).unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), committed);
}

#[test]
fn migrate_gives_up_on_a_database_that_never_answers() {
    // A port that accepts connections and never answers (a firewall dropping packets behaves
    // alike): the command fails naming it, instead of waiting for good.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let data = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let output = agensium()
        .arg("migrate")
        .env("DATA_DIR", data.path())
        .env("DATABASE_URL", format!("mysql://u:secret@127.0.0.1:{port}/db?prefer_socket=false"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(started.elapsed() < std::time::Duration::from_secs(40), "{:?}", started.elapsed());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MySQL did not answer"), "{stderr}");
    assert!(!stderr.contains("secret"), "{stderr}");
    drop(silent);
}

#[test]
fn migrate_is_safe_to_run_twice_and_user_create_refuses_duplicates() {
    let data = tempfile::tempdir().unwrap();
    let migrate = || agensium().arg("migrate").env("DATA_DIR", data.path()).output().unwrap();
    let first = migrate();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(String::from_utf8_lossy(&first.stdout).contains("applied: [1, 2, 3, 4, 5, 6]"));
    let second = migrate();
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stdout).contains("applied: []"));

    let create = |password: &str| {
        run_with_stdin(
            agensium()
                .args(["user", "create", "--email", "Root@Example.com", "--admin"])
                .env("DATA_DIR", data.path()),
            password,
        )
    };
    let created = create("admin password 1\n");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    assert!(String::from_utf8_lossy(&created.stdout).contains("root@example.com (ADMIN)"));
    let again = create("admin password 1\n");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("CONFLICT"));
    let weak = run_with_stdin(
        agensium().args(["user", "create", "--email", "x@example.com"]).env("DATA_DIR", data.path()),
        "short\n",
    );
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 8 characters"));
}

#[test]
fn the_command_line_profiler_interrupted_leaves_no_scratch_files() {
    let dir = tempfile::tempdir().unwrap();
    let scratch_root = dir.path().join("tmp");
    std::fs::create_dir_all(&scratch_root).unwrap();
    // Big enough that reading it is still under way when the interrupt comes.
    let file = dir.path().join("big.csv");
    let mut text = String::from("id,amount,city,when\n");
    for i in 0..1_500_000u32 {
        text.push_str(&format!("{i},{}.{},city {},2024-01-{:02}\n", i % 977, i % 100, i % 311, 1 + i % 28));
    }
    std::fs::write(&file, text).unwrap();
    // Ctrl-C, or SIGTERM: the exit code a shell gives a process that signal ended.
    for (signal, code) in [("-INT", 130), ("-TERM", 143)] {
        let mut child = agensium()
            .env("TMPDIR", &scratch_root)
            .args(["profile", file.to_str().unwrap(), "--quiet", "--out"])
            .arg(dir.path().join("report.html"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Interrupted once its scratch copy is being written.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let started = std::fs::read_dir(&scratch_root)
                .unwrap()
                .flatten()
                .any(|e| e.path().join("current").exists());
            if started {
                break;
            }
            assert!(Instant::now() < deadline, "the profiler never started reading");
            assert!(child.try_wait().unwrap().is_none(), "the profiler ended before it was interrupted");
            std::thread::sleep(Duration::from_millis(5));
        }
        let killed = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
        assert!(killed.success());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{signal}: {stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        let left: Vec<_> = std::fs::read_dir(&scratch_root).unwrap().flatten().map(|e| e.path()).collect();
        assert!(left.is_empty(), "{left:?}");
        assert!(!dir.path().join("report.html").exists());
    }
}

#[test]
fn the_command_line_profiler_writes_every_report_format_for_the_readme_example() {
    let dir = tempfile::tempdir().unwrap();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let (current, baseline) = (examples.join("customers.csv"), examples.join("customers-baseline.csv"));
    // The README's command, as written there.
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(
        readme.contains("agensium profile examples/customers.csv --baseline examples/customers-baseline.csv"),
        "README shows the command-line profiler on its example file"
    );
    for format in ["html", "json", "xlsx"] {
        let out = dir.path().join(format!("report.{format}"));
        let output = agensium()
            .env("TMPDIR", dir.path())
            .args([
                "profile",
                current.to_str().unwrap(),
                "--baseline",
                baseline.to_str().unwrap(),
                "--format",
                format,
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap();
        assert!(output.status.success(), "{format}: {}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("605 rows × 9 columns"), "{stdout}");
        assert!(stdout.contains("wrote"), "{stdout}");
        let bytes = std::fs::read(&out).unwrap();
        match format {
            "json" => {
                let report: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                let agents: Vec<&str> = report["report"]["agents"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["agent_id"].as_str().unwrap())
                    .collect();
                assert_eq!(
                    agents,
                    [
                        "unified-profiler",
                        "drift-detector",
                        "score-risk",
                        "test-coverage-agent",
                        "readiness-rater"
                    ]
                );
                assert_eq!(report["report"]["profile"]["row_count"], 605, "600 rows and 5 duplicates");
            }
            "xlsx" => assert!(bytes.starts_with(b"PK"), "a zip (xlsx) file"),
            _ => {
                let html = String::from_utf8(bytes).unwrap();
                assert!(html.contains("<svg") && html.contains("customers.csv"), "an HTML report");
            }
        }
    }
    // Only the reports are left behind: the scratch space is gone.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 3, "{left:?}");

    // Bad input: a clear message and exit code 2, no report.
    let missing = agensium()
        .args(["profile", "/no/such/file.csv", "--out"])
        .arg(dir.path().join("x.html"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read /no/such/file.csv"));
    // --header true: a first row of years names the columns.
    let years = dir.path().join("years.csv");
    std::fs::write(&years, "2022,2023\n10,11\n20,21\n").unwrap();
    let out = dir.path().join("years.json");
    let read = agensium()
        .args([
            "profile",
            years.to_str().unwrap(),
            "--header",
            "true",
            "--format",
            "json",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(report["report"]["profile"]["row_count"], 2, "{}", report["report"]["profile"]["row_count"]);
    let names: Vec<&str> = report["report"]["profile"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["2022", "2023"]);
    let drift_alone = agensium()
        .args(["profile", current.to_str().unwrap(), "--agents", "drift-detector"])
        .output()
        .unwrap();
    assert_eq!(drift_alone.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&drift_alone.stderr).contains("baseline"),
        "{}",
        String::from_utf8_lossy(&drift_alone.stderr)
    );
}
