//! `agensium profile FILE`: the server's profiler for a local file, with a progress bar on
//! the terminal, for users without a server. Same ingest, same agents, same report renderers
//! as a job; nothing is stored but the report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::datasets::{ReadOptions, ingest_file};
use crate::engine::Engine;
use crate::engine::session::{Session, SessionError};
use crate::error::{AppError, ErrorCode};
use crate::jobs::pipeline::{self, Inputs, Version};
use crate::jobs::registry::{self, PROFILE_TOOL};
use crate::reports::{self, ReportFormat, ReportMeta};

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub file: PathBuf,
    pub baseline: Option<PathBuf>,
    pub format: ReportFormat,
    pub out: Option<PathBuf>,
    pub sheet: Option<String>,
    /// Whether the first row holds the column names (both files).
    pub header: Option<bool>,
    pub agents: Option<Vec<String>>,
    pub parameters: Option<String>,
    pub quiet: bool,
}

/// Runs the profiler; exit code 0 on success, 2 for bad input, 1 otherwise.
pub async fn run(config: &Config, options: Options) -> ExitCode {
    // Scratch space (the ingested copies, spill files) under DUCKDB_TEMP_DIR, or the system's
    // temporary directory: the command leaves nothing behind but the report, even when it is
    // interrupted (Ctrl-C, SIGTERM).
    let root = config.engine.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let scratch = Scratch(root.join(format!("agensium-profile-{}", uuid::Uuid::new_v4())));
    let outcome = tokio::select! {
        outcome = profile(config, options, &scratch.0) => outcome,
        code = interrupted() => {
            // The engine's threads may still be writing into the scratch folder: remove it
            // and leave without waiting for them (the runtime would).
            scratch.remove();
            eprintln!("\nagensium profile: interrupted");
            std::process::exit(code);
        }
    };
    drop(scratch);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agensium profile: {}", e.message());
            if e.code() == ErrorCode::Internal {
                eprintln!("  cause: {}", e.report());
                ExitCode::FAILURE
            } else {
                ExitCode::from(2)
            }
        }
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM with the exit code a shell gives a process the
/// signal ended: 128 and the signal's number (130, 143). Never, if neither can be watched.
async fn interrupted() -> i32 {
    let interrupt = async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => 130,
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
                143
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<i32>();
    tokio::select! {
        code = interrupt => code,
        code = terminate => code,
    }
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    /// Removes the folder, again while something still writing into it brings it back.
    fn remove(&self) {
        for _ in 0..20 {
            let _ = std::fs::remove_dir_all(&self.0);
            if !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.remove();
    }
}

fn bar(quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40.cyan/blue} {pos:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

async fn profile(config: &Config, options: Options, scratch: &Path) -> Result<(), AppError> {
    let parameters = match &options.parameters {
        Some(text) => Some(
            serde_json::from_str::<serde_json::Value>(text)
                .map_err(|e| AppError::bad_input("parameters", format!("--parameters is not JSON: {e}")))?,
        ),
        None => None,
    };
    let run = registry::check_run(
        PROFILE_TOOL,
        options.agents.as_deref(),
        parameters.as_ref(),
        options.baseline.is_some(),
    )
    .map_err(|e| {
        // The command line names its options, not the API's fields.
        let field = e
            .extensions()
            .iter()
            .find(|(k, _)| *k == "field")
            .and_then(|(_, v)| v.as_str().map(String::from));
        match field.as_deref() {
            Some("baselineDatasetId") => AppError::bad_input(
                "baseline",
                "the drift detector compares with a baseline: give --baseline FILE",
            ),
            _ => e,
        }
    })?;

    let engine = {
        let (engine_config, spill) = (config.engine.clone(), scratch.join("spill"));
        tokio::task::spawn_blocking(move || Engine::open(&engine_config, &spill))
            .await
            .map_err(AppError::internal)?
            .map_err(AppError::internal)?
    };
    let bar = bar(options.quiet);

    bar.set_message(format!("reading {}", options.file.display()));
    let file = ReadOptions { sheet: options.sheet.clone(), header: options.header };
    let current = read(&engine, &options.file, &file, &scratch.join("current")).await?;
    let baseline = match &options.baseline {
        Some(path) => {
            bar.set_message(format!("reading {}", path.display()));
            let baseline = ReadOptions { sheet: None, header: options.header };
            Some(read(&engine, path, &baseline, &scratch.join("baseline")).await?)
        }
        None => None,
    };
    registry::check_test_columns(&run, &current.columns)?;
    pipeline::check_patterns(&engine, &run).await?;
    bar.set_position(5);

    let inputs = Inputs { current, baseline };
    let (agents, checked) = (run.agents.clone(), run.parameters.clone());
    let (engine_config, temp) = (config.engine.clone(), scratch.join("session"));
    let progress_bar = bar.clone();
    let mut report = tokio::task::spawn_blocking(move || -> Result<_, SessionError> {
        let session = Session::open(&engine_config, &temp)?;
        let mut progress = |percent: f64, stage: &str| {
            progress_bar.set_position((5.0 + percent * 0.9).clamp(5.0, 95.0) as u64);
            progress_bar.set_message(stage.to_string());
        };
        Ok(pipeline::run(&session, &agents, &checked, &inputs, None, &mut progress)?.0)
    })
    .await
    .map_err(AppError::internal)?
    .map_err(|e| match e {
        SessionError::OutOfMemory(message) => AppError::new(ErrorCode::PayloadTooLarge, message),
        other => AppError::internal(anyhow::anyhow!("{other:#}")),
    })?;

    bar.set_message("writing the report");
    let name = |p: &Path| {
        p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned())
    };
    let now = chrono::Utc::now();
    let meta = ReportMeta {
        job_id: "command-line".into(),
        tool_id: PROFILE_TOOL.into(),
        dataset_name: name(&options.file),
        baseline_name: options.baseline.as_deref().map(name),
        created_at: now,
        finished_at: Some(now),
        personal: Default::default(),
    };
    if let Some(drift) = report.drift.as_mut() {
        drift.baseline_name = meta.baseline_name.clone();
    }
    let out =
        options.out.clone().unwrap_or_else(|| PathBuf::from(options.format.file_name(&meta.dataset_name)));
    let format = options.format;
    let (bytes, report) =
        tokio::task::spawn_blocking(move || reports::render(format, &meta, &report).map(|b| (b, report)))
            .await
            .map_err(AppError::internal)?
            .map_err(AppError::internal)?;
    write_atomically(&out, &bytes)?;
    bar.finish_and_clear();

    println!("{}", summary_line(&report));
    println!("wrote {} ({} bytes)", out.display(), bytes.len());
    Ok(())
}

/// Ingests one local file into `dir` and describes it for the engine.
async fn read(engine: &Engine, path: &Path, read: &ReadOptions, dir: &Path) -> Result<Version, AppError> {
    let size = match tokio::fs::metadata(path).await {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => return Err(AppError::bad_input("file", format!("{} is not a file", path.display()))),
        Err(e) => return Err(AppError::bad_input("file", format!("cannot read {}: {e}", path.display()))),
    };
    tokio::fs::create_dir_all(dir).await.map_err(AppError::internal)?;
    let (_, ingested) = ingest_file(engine, path, size, read, dir).await.map_err(|e| {
        if e.code() == ErrorCode::BadUserInput {
            AppError::bad_input("file", format!("{}: {}", path.display(), e.message()))
        } else {
            e
        }
    })?;
    Ok(Version {
        data: dir.join(crate::datasets::DATA_FILE),
        columns: ingested.columns,
        rejected_row_count: ingested.rejected_row_count,
    })
}

/// Writes next to the target, then renames: a reader never sees half a report.
fn write_atomically(out: &Path, bytes: &[u8]) -> Result<(), AppError> {
    let cannot =
        |e: std::io::Error| AppError::bad_input("out", format!("cannot write {}: {e}", out.display()));
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&temp, bytes).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        cannot(e)
    })?;
    std::fs::rename(&temp, out).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        cannot(e)
    })
}

/// One line a person reads first: rows, quality, readiness, risk, drift.
fn summary_line(report: &crate::domain::Report) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &report.profile {
        parts.push(format!(
            "{} rows × {} columns; quality {:.1} ({})",
            p.row_count, p.column_count, p.quality.score, p.quality.grade
        ));
    }
    for agent in &report.agents {
        let m = &agent.summary_metrics;
        match agent.agent_id.as_str() {
            registry::READINESS_RATER => {
                if let Some(v) = m.get("verdict").and_then(|v| v.as_str()) {
                    parts.push(format!("readiness {v}"));
                }
            }
            registry::SCORE_RISK => {
                if let Some(level) = m.get("riskLevel").and_then(|v| v.as_str()) {
                    parts.push(format!("risk {level}"));
                }
            }
            registry::DRIFT_DETECTOR => {
                if let Some(n) = m.get("driftedColumns").and_then(|v| v.as_u64()) {
                    parts.push(format!("{n} drifted column(s)"));
                }
            }
            registry::TEST_COVERAGE => {
                if let Some(score) = m.get("testScore").and_then(|v| v.as_f64()) {
                    parts.push(format!("tests {score:.1}"));
                }
            }
            _ => {}
        }
    }
    parts.join("; ")
}
