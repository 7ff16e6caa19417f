//! The HTML report in a real headless browser: it renders, loads nothing, and its charts are
//! drawn (tests/browser/check_report.py, Python Playwright driving Debian's Chromium).
//!
//! Without Playwright or Chromium the test says why and passes, unless
//! `AGENSIUM_REQUIRE_BROWSER` is set (as in CI), when their absence fails it. With
//! `AGENSIUM_REPORT_ARTIFACTS=DIR` the page and its screenshot are also copied to DIR.

use std::path::{Path, PathBuf};
use std::process::Command;

use agensium::reports::{ReportFormat, ReportMeta, render};

#[allow(dead_code)]
mod fixture {
    use agensium::domain::*;
    use agensium::reports::ReportMeta;
    use serde_json::json;

    include!("../src/reports/fixture.rs");
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Why the browser check cannot run here, if it cannot.
fn missing_tools() -> Option<String> {
    let playwright = Command::new("python3").args(["-c", "import playwright.sync_api"]).output();
    match playwright {
        Err(e) => return Some(format!("python3 is not runnable: {e}")),
        Ok(out) if !out.status.success() => {
            return Some(format!(
                "python playwright is missing (pip install playwright): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(_) => {}
    }
    let chromium = chromium();
    if !chromium.exists() {
        return Some(format!("chromium is missing at {} (apt-get install chromium)", chromium.display()));
    }
    None
}

fn check(html: &Path, screenshot: &Path, extra: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/check_report.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(html)
        .arg("--screenshot")
        .arg(screenshot)
        .args(extra)
        .env("CHROMIUM", chromium())
        .output()
        .expect("running the browser check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser check failed ({}):\n{stdout}\n{stderr}", out.status);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("unreadable summary ({e}):\n{stdout}\n{stderr}"))
}

#[test]
fn html_report_renders_in_a_headless_browser() {
    if let Some(why) = missing_tools() {
        if std::env::var_os("AGENSIUM_REQUIRE_BROWSER").is_some() {
            panic!("AGENSIUM_REQUIRE_BROWSER is set but {why}");
        }
        eprintln!("skipping the browser check: {why}");
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let meta: ReportMeta = fixture::rich_meta();
    let report = fixture::rich_report(12);
    let html = dir.path().join(ReportFormat::Html.file_name(&meta.dataset_name));
    std::fs::write(&html, render(ReportFormat::Html, &meta, &report).unwrap()).unwrap();
    let screenshot = dir.path().join("report.png");

    let summary = check(&html, &screenshot, &[]);
    assert_eq!(summary["ok"], true, "{summary:#}");
    assert!(summary["title"].as_str().unwrap().starts_with("Data quality report"));
    assert_eq!(summary["quality_score_visible"], true);
    let columns = report.profile.as_ref().unwrap().columns.len() as u64;
    let with_histogram =
        report.profile.as_ref().unwrap().columns.iter().filter(|c| !c.histogram.is_empty()).count();
    assert_eq!(summary["histogram_charts_drawn"].as_u64(), Some(with_histogram as u64), "{summary:#}");
    assert!(summary["top_values_charts_drawn"].as_u64().unwrap() >= columns - 2, "{summary:#}");
    assert_eq!(summary["drift_bins_charts_drawn"].as_u64(), Some(3), "{summary:#}");
    assert_eq!(summary["blocked_requests"], serde_json::json!([]));
    assert_eq!(summary["console_errors"], serde_json::json!([]));
    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot");

    // On a phone-sized window too: nothing wider than the window.
    let narrow = dir.path().join("report-narrow.png");
    let summary = check(&html, &narrow, &["--width", "400"]);
    assert_eq!(summary["ok"], true, "{summary:#}");

    if let Some(artifacts) = std::env::var_os("AGENSIUM_REPORT_ARTIFACTS") {
        let artifacts = PathBuf::from(artifacts);
        std::fs::create_dir_all(&artifacts).unwrap();
        std::fs::copy(&html, artifacts.join("report.html")).unwrap();
        std::fs::copy(&screenshot, artifacts.join("report.png")).unwrap();
        std::fs::copy(&narrow, artifacts.join("report-narrow.png")).unwrap();
    }
}

/// The report the command-line profiler writes for the README's example files, in the browser.
#[test]
fn the_readme_example_report_renders_in_a_headless_browser() {
    if let Some(why) = missing_tools() {
        if std::env::var_os("AGENSIUM_REQUIRE_BROWSER").is_some() {
            panic!("AGENSIUM_REQUIRE_BROWSER is set but {why}");
        }
        eprintln!("skipping the browser check: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let html = dir.path().join("customers-report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_agensium"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TMPDIR", dir.path())
        .arg("profile")
        .arg(examples.join("customers.csv"))
        .arg("--baseline")
        .arg(examples.join("customers-baseline.csv"))
        .arg("--out")
        .arg(&html)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(!page.contains("@example.com"), "personal data is masked");

    let summary = check(&html, &dir.path().join("customers.png"), &[]);
    assert_eq!(summary["ok"], true, "{summary:#}");
    assert!(summary["histogram_charts_drawn"].as_u64().unwrap() >= 3, "{summary:#}");
    assert!(summary["top_values_charts_drawn"].as_u64().unwrap() >= 9, "{summary:#}");
    assert!(summary["drift_bins_charts_drawn"].as_u64().unwrap() >= 1, "{summary:#}");
    assert_eq!(summary["blocked_requests"], serde_json::json!([]));
    if let Some(artifacts) = std::env::var_os("AGENSIUM_REPORT_ARTIFACTS") {
        let artifacts = PathBuf::from(artifacts);
        std::fs::create_dir_all(&artifacts).unwrap();
        std::fs::copy(&html, artifacts.join("customers-report.html")).unwrap();
        std::fs::copy(dir.path().join("customers.png"), artifacts.join("customers.png")).unwrap();
    }
}
