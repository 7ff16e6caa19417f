//! Runs a tool's selected agents over one dataset (and its baseline) in one DuckDB session,
//! and assembles the report. Shared by the job worker and the command-line profiler, so both
//! compute exactly the same numbers.
//!
//! Blocking: call it inside `spawn_blocking`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use super::registry::{
    self, DRIFT_DETECTOR, READINESS_RATER, SCORE_RISK, TEST_COVERAGE, TestSpec, UNIFIED_PROFILER,
};
use super::tools::{self, ReadinessParams};
use crate::domain::{ColumnInfo, DriftParams, PersonalColumn, Profile, ProfileParams, Report, RiskParams};
use crate::engine::session::{Session, SessionError};
use crate::error::AppError;

/// One dataset version as the engine reads it.
#[derive(Debug, Clone)]
pub struct Version {
    /// The canonical Parquet copy.
    pub data: PathBuf,
    pub columns: Vec<ColumnInfo>,
    /// Rows set aside at ingest.
    pub rejected_row_count: u64,
}

/// What a run works on.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub current: Version,
    pub baseline: Option<Version>,
}

/// Checks the run's regex tests with DuckDB itself, which runs them: a pattern the registry's
/// syntax check let through but RE2 refuses is `BAD_USER_INPUT` now, not a failed job later.
pub async fn check_patterns(
    engine: &crate::engine::Engine,
    run: &registry::CheckedRun,
) -> Result<(), AppError> {
    let Some(tests) = run.parameters.get(TEST_COVERAGE).and_then(|p| p.get("tests")) else { return Ok(()) };
    let tests: Vec<TestSpec> = serde_json::from_value(tests.clone()).unwrap_or_default();
    for (i, test) in tests.iter().enumerate() {
        let Some(pattern) = &test.pattern else { continue };
        if test.kind != registry::TestKind::Regex {
            continue;
        }
        if let Err(why) = engine.check_pattern(pattern.clone()).await.map_err(AppError::internal)? {
            let path = format!("{TEST_COVERAGE}.tests[{i}]");
            return Err(AppError::bad_input(&path, format!("{path}: invalid pattern: {why}")));
        }
    }
    Ok(())
}

/// The profile parameters a run uses: the profiler's own when it runs, else the defaults
/// (agents that read the profile still need one).
pub fn profile_params(parameters: &Value) -> Result<ProfileParams, SessionError> {
    match parameters.get(UNIFIED_PROFILER) {
        Some(p) => serde_json::from_value(p.clone()).map_err(|e| SessionError::Internal(e.into())),
        None => Ok(ProfileParams::default()),
    }
}

/// The cache key of a profile: the version and the parameters.
pub fn profile_key(version_id: &str, params: &ProfileParams) -> String {
    format!("{version_id}:{}", serde_json::to_string(params).unwrap_or_default())
}

/// Whether the selected agents need the dataset's profile: the profiler and the readiness
/// rater do, the test-coverage agent only to suggest tests.
pub fn needs_profile(agents: &[String], parameters: &Value) -> bool {
    agents.iter().any(|a| match a.as_str() {
        UNIFIED_PROFILER | READINESS_RATER => true,
        TEST_COVERAGE => parameters
            .get(TEST_COVERAGE)
            .and_then(|p| p.get("suggest_tests"))
            .and_then(Value::as_bool)
            .unwrap_or(true),
        _ => false,
    })
}

fn params<T: serde::de::DeserializeOwned>(parameters: &Value, agent: &str) -> Result<T, SessionError> {
    serde_json::from_value(parameters.get(agent).cloned().unwrap_or(Value::Null))
        .map_err(|e| SessionError::Internal(anyhow::anyhow!("parameters of {agent}: {e}")))
}

/// How much of the run each agent's engine work takes, for progress.
fn weight(agent: &str) -> f64 {
    match agent {
        UNIFIED_PROFILER => 6.0,
        DRIFT_DETECTOR => 4.0,
        SCORE_RISK | TEST_COVERAGE => 2.0,
        _ => 0.2,
    }
}

/// Runs `agents` (checked against the registry, in the tool's order) with their checked
/// `parameters`. `profile` is a cached profile of the current version with the run's profile
/// parameters, when there is one. Returns the report and the profile it used (to cache).
/// `progress` gets 0–100 with the stage.
pub fn run(
    session: &Session,
    agents: &[String],
    parameters: &Value,
    inputs: &Inputs,
    mut profile: Option<Arc<Profile>>,
    progress: &mut dyn FnMut(f64, &str),
) -> Result<(Report, Option<Arc<Profile>>), SessionError> {
    let profile_needed = needs_profile(agents, parameters);
    let mut plan: Vec<&str> = Vec::new();
    if profile_needed && profile.is_none() {
        plan.push(UNIFIED_PROFILER);
    }
    plan.extend(agents.iter().map(String::as_str).filter(|a| *a != UNIFIED_PROFILER));
    let total: f64 = plan.iter().map(|a| weight(a)).sum::<f64>().max(1.0);
    let mut done = 0.0;
    let step = |done: f64, agent: &str, percent: f64, stage: &str, progress: &mut dyn FnMut(f64, &str)| {
        progress((done + weight(agent) * percent / 100.0) / total * 100.0, stage);
    };

    let mut report = Report::default();
    let profile_started = Instant::now();
    // (A profile taken from the cache took this run no time: 0, as documented.)
    let mut profile_ms = 0.0;
    if profile_needed && profile.is_none() {
        let p = profile_params(parameters)?;
        let computed =
            session.profile(&inputs.current.data, &inputs.current.columns, &p, &mut |percent, stage| {
                step(done, UNIFIED_PROFILER, percent, stage, progress)
            })?;
        profile = Some(Arc::new(computed));
        done += weight(UNIFIED_PROFILER);
        profile_ms = profile_started.elapsed().as_secs_f64() * 1000.0;
    }

    for agent in agents {
        let started = Instant::now();
        let elapsed = || started.elapsed().as_secs_f64() * 1000.0;
        let used = parameters.get(agent.as_str()).cloned().unwrap_or(Value::Null);
        match agent.as_str() {
            UNIFIED_PROFILER => {
                let Some(profile) = &profile else { continue };
                report.profile = Some((**profile).clone());
                report.agents.push(tools::profiler_result(
                    profile,
                    inputs.current.rejected_row_count,
                    used,
                    profile_ms,
                ));
            }
            DRIFT_DETECTOR => {
                let Some(baseline) = &inputs.baseline else {
                    return Err(SessionError::Internal(anyhow::anyhow!(
                        "drift-detector ran without a baseline"
                    )));
                };
                let p: DriftParams = params(parameters, DRIFT_DETECTOR)?;
                progress(done / total * 100.0, "comparing with the baseline");
                let drift = session.drift(
                    &inputs.current.data,
                    &inputs.current.columns,
                    &baseline.data,
                    &baseline.columns,
                    &p,
                    &mut |percent, stage| step(done, DRIFT_DETECTOR, percent, stage, progress),
                )?;
                let mut drift = drift;
                // The report shows both versions' categories, which must be masked where they
                // are personal data: the baseline's are looked for here, always (no other agent
                // of this run reads the baseline, and the baseline may be deleted later); the
                // current version's too when neither the profiler nor the risk scorer runs.
                let mut sides = vec![(&baseline.data, &baseline.columns)];
                if !agents.iter().any(|a| a == SCORE_RISK || a == UNIFIED_PROFILER) {
                    sides.insert(0, (&inputs.current.data, &inputs.current.columns));
                }
                progress(done / total * 100.0, "looking for personal data");
                for (data, columns) in sides {
                    let found = session.pii_scan(data, columns, &RiskParams::default(), &mut |_, _| {})?;
                    for c in found {
                        if !drift.personal_columns.iter().any(|p| p.column == c.column) {
                            drift.personal_columns.push(PersonalColumn { column: c.column, kind: c.kind });
                        }
                    }
                }
                report.agents.push(tools::drift_result(&drift, used, elapsed()));
                report.drift = Some(drift);
            }
            SCORE_RISK => {
                let p: RiskParams = params(parameters, SCORE_RISK)?;
                progress(done / total * 100.0, "looking for personal data");
                let columns = session.pii_scan(
                    &inputs.current.data,
                    &inputs.current.columns,
                    &p,
                    &mut |percent, stage| step(done, SCORE_RISK, percent, stage, progress),
                )?;
                let risk = crate::engine::pii::assess(columns, &inputs.current.columns);
                report.agents.push(tools::risk_result(&risk, used, elapsed()));
                report.risk = Some(risk);
            }
            TEST_COVERAGE => {
                let given: Vec<TestSpec> =
                    serde_json::from_value(used.get("tests").cloned().unwrap_or(Value::Array(Vec::new())))
                        .map_err(|e| SessionError::Internal(e.into()))?;
                let suggest = used.get("suggest_tests").and_then(Value::as_bool).unwrap_or(true);
                let cap = used.get("max_failing_rows").and_then(Value::as_u64).unwrap_or(100);
                progress(done / total * 100.0, "running data tests");
                let planned = tools::plan_tests(&given, suggest, profile.as_deref(), &inputs.current.columns);
                let tests: Vec<_> = planned.iter().map(tools::PlannedTest::engine_test).collect();
                let outcomes =
                    session.run_tests(&inputs.current.data, &tests, cap, &mut |percent, stage| {
                        step(done, TEST_COVERAGE, percent, stage, progress)
                    })?;
                report.agents.push(tools::coverage_result(
                    &planned,
                    &outcomes,
                    &inputs.current.columns,
                    used,
                    elapsed(),
                ));
            }
            READINESS_RATER => {
                let Some(profile) = &profile else { continue };
                let p: ReadinessParams = params(parameters, READINESS_RATER)?;
                progress(done / total * 100.0, "rating readiness");
                report.agents.push(tools::readiness_result(
                    profile,
                    inputs.current.rejected_row_count,
                    &p,
                    used,
                    elapsed(),
                ));
            }
            other => {
                return Err(SessionError::Internal(anyhow::anyhow!(
                    "{other} is not an agent of {}",
                    registry::PROFILE_TOOL
                )));
            }
        }
        if *agent != UNIFIED_PROFILER {
            done += weight(agent);
        }
    }
    Ok((report, profile))
}
