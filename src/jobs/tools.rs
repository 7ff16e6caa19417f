//! What each agent's result says, built from what the engine computed. Pure functions: the
//! numbers come from the engine, this only arranges them in the shape every agent shares.

use serde_json::{Value, json};

use super::registry::{self, TestKind, TestSpec};
use crate::domain::{AgentResult, ColumnInfo, DriftReport, Finding, Profile, RiskReport, RowIssue};
use crate::engine::checks::{DataTest, Rule, TestOutcome};

fn finding(code: &str, severity: &str, column: Option<&str>, message: String) -> Finding {
    Finding { code: code.into(), severity: severity.into(), column: column.map(String::from), message }
}

/// A successful agent's result with its findings (alerts, issues, recommendations) and no
/// row-level issues.
fn success(
    agent_id: &str,
    execution_time_ms: f64,
    summary_metrics: Value,
    [alerts, issues, recommendations]: [Vec<Finding>; 3],
    parameters: Value,
) -> AgentResult {
    AgentResult {
        agent_id: agent_id.to_string(),
        status: "success".into(),
        execution_time_ms,
        summary_metrics,
        alerts,
        issues,
        recommendations,
        row_level_issues: Vec::new(),
        row_level_issue_count: 0,
        parameters,
    }
}

/// The unified profiler's result, from its profile.
pub fn profiler_result(
    profile: &Profile,
    rejected_row_count: u64,
    parameters: serde_json::Value,
    execution_time_ms: f64,
) -> AgentResult {
    let q = &profile.quality;
    let summary_metrics = json!({
        "rowCount": profile.row_count,
        "columnCount": profile.column_count,
        "duplicateRowCount": profile.duplicate_row_count,
        "rejectedRowCount": rejected_row_count,
        "qualityScore": q.score,
        "grade": q.grade,
        "completeness": q.completeness,
        "validity": q.validity,
        "uniqueness": q.uniqueness,
        "consistency": q.consistency,
    });

    let mut issues = Vec::new();
    if rejected_row_count > 0 {
        issues.push(Finding {
            code: "REJECTED_ROWS".into(),
            severity: "warning".into(),
            column: None,
            message: format!(
                "{} input rows could not be read as the detected schema; they are kept as rejects",
                rejected_row_count
            ),
        });
    }
    for column in &profile.columns {
        if column.invalid_count > 0 {
            issues.push(Finding {
                code: "INVALID_VALUES".into(),
                severity: "warning".into(),
                column: Some(column.name.clone()),
                message: format!(
                    "{} values of {} do not look like {}",
                    column.invalid_count, column.name, column.semantic_type
                ),
            });
        }
        if column.untrimmed_count > 0 {
            issues.push(Finding {
                code: "UNTRIMMED_VALUES".into(),
                severity: "info".into(),
                column: Some(column.name.clone()),
                message: format!(
                    "{} values of {} have leading or trailing spaces",
                    column.untrimmed_count, column.name
                ),
            });
        }
    }

    let recommendations = profile.alerts.iter().filter_map(recommendation).collect();
    success(
        super::registry::UNIFIED_PROFILER,
        execution_time_ms,
        summary_metrics,
        [profile.alerts.clone(), issues, recommendations],
        parameters,
    )
}

/// What to do about an alert.
fn recommendation(alert: &Finding) -> Option<Finding> {
    let column = alert.column.clone();
    let name = column.as_deref().unwrap_or("the dataset");
    let (code, message) = match alert.code.as_str() {
        "HIGH_NULLS" => ("IMPUTE_OR_DROP", format!("Impute the missing values of {name} or drop the column")),
        "ALL_NULL" | "CONSTANT_COLUMN" => {
            ("DROP_COLUMN", format!("{name} carries no information; consider dropping it"))
        }
        "OUTLIERS" => (
            "REVIEW_OUTLIERS",
            format!("Review the outliers of {name}; cap or remove them if they are errors"),
        ),
        "SKEWED" => {
            ("TRANSFORM", format!("{name} is skewed; a log or rank transform may suit models better"))
        }
        "LIKELY_PII" => ("PROTECT_PII", format!("{name} likely holds personal data; mask or restrict it")),
        "DUPLICATE_ROWS" => ("REMOVE_DUPLICATES", "Remove the duplicate rows (Clean My Data)".to_string()),
        "HIGH_CARDINALITY" => (
            "CHECK_IDENTIFIER",
            format!("{name} is almost unique; treat it as an identifier, not a category"),
        ),
        _ => return None,
    };
    Some(Finding { code: code.into(), severity: "info".into(), column, message })
}

/// The drift detector's result, from the drift report.
pub fn drift_result(drift: &DriftReport, parameters: Value, execution_time_ms: f64) -> AgentResult {
    let compared = drift.columns.iter().filter(|c| c.verdict != "insufficient_data").count();
    let summary_metrics = json!({
        "baselineRowCount": drift.baseline_row_count,
        "currentRowCount": drift.current_row_count,
        "rowCountChange": drift.row_count_change,
        "rowCountChangePercent": drift.row_count_change_percent,
        "columnsCompared": compared,
        "driftedColumns": drift.drifted_count,
        "addedColumns": drift.schema.added.len(),
        "removedColumns": drift.schema.removed.len(),
        "retypedColumns": drift.schema.retyped.len(),
        "columns": drift.columns.iter().map(|c| json!({
            "column": c.column,
            "kind": c.kind,
            "test": c.test,
            "statistic": c.statistic,
            "pValue": c.p_value,
            "psi": c.psi,
            "jsDivergence": c.js_divergence,
            "verdict": c.verdict,
        })).collect::<Vec<_>>(),
    });
    let mut alerts = Vec::new();
    let mut issues = Vec::new();
    let mut recommendations = Vec::new();
    for c in drift.columns.iter().filter(|c| c.verdict == "drift") {
        let evidence = match (c.p_value, c.statistic) {
            (Some(p), Some(stat)) => format!("{} = {stat:.4}, p = {p:.3e}", c.test),
            (None, Some(stat)) => format!("{} = {stat:.4}, PSI = {:.3}", c.test, c.psi.unwrap_or(0.0)),
            _ => c.test.clone(),
        };
        alerts.push(finding(
            "DRIFT",
            "warning",
            Some(&c.column),
            format!("{} has drifted from the baseline ({evidence})", c.column),
        ));
    }
    for c in drift.columns.iter().filter(|c| c.verdict == "insufficient_data") {
        issues.push(finding(
            "INSUFFICIENT_DATA",
            "info",
            Some(&c.column),
            format!(
                "{} has too few values to test ({} in the baseline, {} now)",
                c.column, c.baseline_count, c.current_count
            ),
        ));
    }
    for added in &drift.schema.added {
        alerts.push(finding("COLUMN_ADDED", "warning", Some(&added.name), format!("{} is new", added.name)));
    }
    for removed in &drift.schema.removed {
        alerts.push(finding(
            "COLUMN_REMOVED",
            "critical",
            Some(&removed.name),
            format!("{} is no longer in the dataset", removed.name),
        ));
    }
    for retyped in &drift.schema.retyped {
        alerts.push(finding(
            "COLUMN_RETYPED",
            "warning",
            Some(&retyped.name),
            format!(
                "{} changed type from {} to {}",
                retyped.name, retyped.baseline_type, retyped.current_type
            ),
        ));
    }
    let moved = match drift.row_count_change_percent {
        Some(percent) => (percent.abs() >= 10.0).then(|| {
            format!(
                "the row count changed by {percent:+.1}% ({} to {})",
                drift.baseline_row_count, drift.current_row_count
            )
        }),
        // No percent of an empty baseline: any row is a change.
        None => (drift.current_row_count > 0)
            .then(|| format!("the row count went from 0 (an empty baseline) to {}", drift.current_row_count)),
    };
    if let Some(message) = moved {
        alerts.push(finding("ROW_COUNT_CHANGE", "warning", None, message));
    }
    if drift.drifted_count > 0 {
        recommendations.push(finding(
            "REVIEW_DRIFT",
            "info",
            None,
            format!(
                "Review the {} drifted column(s) before using this version; models trained on the baseline may \
                 need retraining",
                drift.drifted_count
            ),
        ));
    }
    if !drift.schema.removed.is_empty() || !drift.schema.retyped.is_empty() {
        recommendations.push(finding(
            "UPDATE_CONSUMERS",
            "info",
            None,
            "Update downstream consumers for the removed or retyped columns".into(),
        ));
    }
    success(
        registry::DRIFT_DETECTOR,
        execution_time_ms,
        summary_metrics,
        [alerts, issues, recommendations],
        parameters,
    )
}

/// The risk scorer's result, from the risk report (whose examples are already masked).
pub fn risk_result(risk: &RiskReport, parameters: Value, execution_time_ms: f64) -> AgentResult {
    let applying: Vec<&str> =
        risk.regulations.iter().filter(|r| r.applies).map(|r| r.name.as_str()).collect();
    let mut kinds: Vec<&str> = risk.columns.iter().map(|c| c.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let summary_metrics = json!({
        "riskScore": risk.risk_score,
        "riskLevel": risk.risk_level,
        "piiColumnCount": risk.columns.len(),
        "piiKinds": kinds,
        "regulations": applying,
        "columns": risk.columns.iter().map(|c| json!({
            "column": c.column,
            "kind": c.kind,
            "share": c.share,
            "matchCount": c.match_count,
            "sensitivity": c.sensitivity,
            "examples": c.examples,
        })).collect::<Vec<_>>(),
    });
    let alerts = risk
        .columns
        .iter()
        .map(|c| {
            let severity = if c.sensitivity == "high" { "critical" } else { "warning" };
            finding(
                "PII_DETECTED",
                severity,
                Some(&c.column),
                format!(
                    "{} holds {} ({:.1}% of its values, {} sensitivity)",
                    c.column,
                    c.kind.replace('_', " "),
                    c.share * 100.0,
                    c.sensitivity
                ),
            )
        })
        .collect();
    let issues = risk
        .regulations
        .iter()
        .filter(|r| r.applies)
        .map(|r| {
            finding("REGULATION", "warning", None, format!("{} applies: {}", r.name, r.reasons.join("; ")))
        })
        .collect();
    let mut recommendations = Vec::new();
    for c in &risk.columns {
        let (code, advice) = match c.sensitivity.as_str() {
            "high" => ("ENCRYPT_OR_DROP", "encrypt or tokenise it, or drop it if it is not needed"),
            "medium" => ("MASK_OR_RESTRICT", "mask it in shared copies and restrict access"),
            _ => ("GENERALISE", "generalise it (truncate, bucket) where full precision is not needed"),
        };
        recommendations.push(finding(code, "info", Some(&c.column), format!("{}: {advice}", c.column)));
    }
    success(
        registry::SCORE_RISK,
        execution_time_ms,
        summary_metrics,
        [alerts, issues, recommendations],
        parameters,
    )
}

/// A test the test-coverage agent runs, given or suggested.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTest {
    pub spec: TestSpec,
    /// `given` or `suggested`.
    pub source: &'static str,
}

impl PlannedTest {
    pub fn engine_test(&self) -> DataTest {
        let rule = match self.spec.kind {
            TestKind::Unique => Rule::Unique,
            TestKind::Range => Rule::Range { min: self.spec.min_bound(), max: self.spec.max_bound() },
            TestKind::Regex => Rule::Regex(self.spec.pattern.clone().unwrap_or_default()),
        };
        DataTest { column: self.spec.column.clone(), rule }
    }
}

/// The tests to run: the given ones, then (when asked) suggestions from the profile for
/// columns no given test covers — uniqueness for identifiers, a format for typed text, and a
/// range of `[q25 − 3·IQR, q75 + 3·IQR]` (the "extreme outlier" fences) for numbers.
pub fn plan_tests(
    given: &[TestSpec],
    suggest: bool,
    profile: Option<&Profile>,
    columns: &[ColumnInfo],
) -> Vec<PlannedTest> {
    let mut planned: Vec<PlannedTest> =
        given.iter().map(|spec| PlannedTest { spec: spec.clone(), source: "given" }).collect();
    let (true, Some(profile)) = (suggest, profile) else { return planned };
    for column in &profile.columns {
        if given.iter().any(|t| t.column == column.name) || column.distinct_count == 0 {
            continue;
        }
        let test = |kind, min, max, pattern: Option<&str>| PlannedTest {
            spec: TestSpec {
                kind,
                column: column.name.clone(),
                min,
                max,
                pattern: pattern.map(String::from),
                weight: 1.0,
            },
            source: "suggested",
        };
        let id_header = is_id_header(&column.name);
        // A foreign key (`customer_id` in an orders table) repeats by design: only a column
        // that is (nearly) unique already is expected to be unique.
        let non_null = profile.row_count.saturating_sub(column.null_count);
        let nearly_unique = non_null > 0 && column.distinct_count * 100 >= non_null * 99;
        if (id_header && nearly_unique) || matches!(column.semantic_type.as_str(), "identifier" | "uuid") {
            planned.push(test(TestKind::Unique, None, None, None));
        }
        if matches!(column.semantic_type.as_str(), "email" | "url" | "uuid" | "ip" | "phone" | "postcode")
            && let Some(pattern) = crate::engine::profile::semantic_pattern(&column.semantic_type)
        {
            planned.push(test(TestKind::Regex, None, None, Some(&pattern)));
        }
        let numeric =
            columns.iter().any(|c| c.name == column.name && registry::is_numeric_type(&c.data_type));
        // No range for personal data: its bounds (q25 − 3·IQR, q75 + 3·IQR) give away the
        // quartiles, two real values, which reports otherwise mask.
        let personal = column.pii.is_some() || crate::engine::pii::header_kind(&column.name).is_some();
        if numeric
            && !id_header
            && !personal
            && column.semantic_type != "identifier"
            && let (Some(q25), Some(q75)) = (column.q25, column.q75)
            && q75 > q25
        {
            let iqr = q75 - q25;
            let (low, high) = (q25 - 3.0 * iqr, q75 + 3.0 * iqr);
            let (min, max) = (serde_json::Number::from_f64(low), serde_json::Number::from_f64(high));
            if min.is_some() || max.is_some() {
                planned.push(test(TestKind::Range, min, max, None));
            }
        }
    }
    planned
}

/// Whether a header names an identifier: its last word is `id`, `uuid`, `guid` or `key`
/// (`customer_id`, `orderId`, `Account UUID`).
fn is_id_header(name: &str) -> bool {
    let words = crate::engine::header_tokens(name);
    matches!(words.last().map(String::as_str), Some("id" | "uuid" | "guid" | "key"))
}

/// Most row-level issues one agent lists (each test is also capped by `max_failing_rows`).
const MAX_ROW_ISSUES: usize = 1000;

/// The test-coverage agent's result: each test's pass rate, the weighted score, failing rows.
pub fn coverage_result(
    planned: &[PlannedTest],
    outcomes: &[TestOutcome],
    columns: &[ColumnInfo],
    parameters: Value,
    execution_time_ms: f64,
) -> AgentResult {
    let mut tests = Vec::new();
    let mut alerts = Vec::new();
    let mut issues = Vec::new();
    let mut recommendations = Vec::new();
    let mut row_level_issues = Vec::new();
    let mut row_level_issue_count = 0;
    let (mut weighted, mut weights, mut passed) = (0.0, 0.0, 0);
    // The listed rows are shared fairly: one badly failing test does not hide the others'.
    let failing_tests = outcomes.iter().filter(|o| o.failing > 0).count().max(1);
    let quota = (MAX_ROW_ISSUES / failing_tests).max(1);
    for (test, outcome) in planned.iter().zip(outcomes) {
        let spec = &test.spec;
        let pass_rate = if outcome.checked == 0 {
            100.0
        } else {
            100.0 * (outcome.checked - outcome.failing.min(outcome.checked)) as f64 / outcome.checked as f64
        };
        weighted += spec.weight * pass_rate;
        weights += spec.weight;
        let ok = outcome.failing == 0;
        passed += usize::from(ok);
        let describe = match spec.kind {
            TestKind::Unique => "unique".to_string(),
            TestKind::Range => format!(
                "in [{}, {}]",
                super::registry::bound_text(&spec.min, "-∞"),
                super::registry::bound_text(&spec.max, "∞")
            ),
            TestKind::Regex => format!("matching {}", spec.pattern.as_deref().unwrap_or_default()),
        };
        tests.push(json!({
            "type": spec.kind.as_str(),
            "column": spec.column,
            "source": test.source,
            "min": spec.min,
            "max": spec.max,
            "pattern": spec.pattern,
            "weight": spec.weight,
            "checked": outcome.checked,
            "failing": outcome.failing,
            "passRate": pass_rate,
            "passed": ok,
        }));
        if ok {
            continue;
        }
        let code = match spec.kind {
            TestKind::Unique => "DUPLICATE_VALUE",
            TestKind::Range => "OUT_OF_RANGE",
            TestKind::Regex => "FORMAT_MISMATCH",
        };
        let severity = if pass_rate < 90.0 { "critical" } else { "warning" };
        issues.push(finding(
            "TEST_FAILED",
            severity,
            Some(&spec.column),
            format!(
                "{} {describe}: {} of {} values fail ({pass_rate:.2}% pass, {} test)",
                spec.column, outcome.failing, outcome.checked, test.source
            ),
        ));
        row_level_issue_count += outcome.failing;
        for row in outcome.rows.iter().take(quota) {
            row_level_issues.push(RowIssue {
                row: *row,
                column: Some(spec.column.clone()),
                code: code.into(),
                message: format!("{} is not {describe}", spec.column),
            });
        }
        let advice = match spec.kind {
            TestKind::Unique => "remove or merge the duplicates (Clean My Data, duplicate resolver)",
            TestKind::Range => "review the out-of-range values; cap or quarantine them if they are errors",
            TestKind::Regex => "standardise or quarantine the values in the wrong format",
        };
        recommendations.push(finding(
            "FIX_FAILING_TEST",
            "info",
            Some(&spec.column),
            format!("{}: {advice}", spec.column),
        ));
    }
    row_level_issues.sort_by_key(|r| r.row);
    let score = if weights > 0.0 { Some(weighted / weights) } else { None };
    let covered: std::collections::BTreeSet<&str> = planned.iter().map(|t| t.spec.column.as_str()).collect();
    let column_coverage =
        if columns.is_empty() { 0.0 } else { 100.0 * covered.len() as f64 / columns.len() as f64 };
    match score {
        None => alerts.push(finding(
            "NO_TESTS",
            "info",
            None,
            "no tests were given and none could be suggested from the profile".into(),
        )),
        Some(score) if score < 95.0 => alerts.push(finding(
            "LOW_TEST_SCORE",
            if score < 80.0 { "critical" } else { "warning" },
            None,
            format!("the weighted test score is {score:.1} of 100"),
        )),
        Some(_) => {}
    }
    if column_coverage < 50.0 && !columns.is_empty() {
        recommendations.push(finding(
            "ADD_TESTS",
            "info",
            None,
            format!(
                "only {} of {} columns are tested; add tests for the columns that matter",
                covered.len(),
                columns.len()
            ),
        ));
    }
    let summary_metrics = json!({
        "testScore": score,
        "testCount": planned.len(),
        "passedTests": passed,
        "failedTests": planned.len() - passed,
        "columnCoverage": column_coverage,
        "tests": tests,
    });
    AgentResult {
        row_level_issues,
        row_level_issue_count,
        ..success(
            registry::TEST_COVERAGE,
            execution_time_ms,
            summary_metrics,
            [alerts, issues, recommendations],
            parameters,
        )
    }
}

/// The readiness rater's parameters.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ReadinessParams {
    pub completeness_weight: f64,
    pub consistency_weight: f64,
    pub schema_weight: f64,
    pub ready_threshold: f64,
    pub review_threshold: f64,
}

/// Headers a file gets when it had none, or an empty one.
/// DuckDB names them `column0`, `column12`; pandas `Unnamed: 3`. A real header that merely
/// starts so (`column`, `unnamed_roads`) is not one.
fn generated_header(name: &str) -> bool {
    let lower = name.trim().to_ascii_lowercase();
    let digits = |rest: &str| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit());
    lower.is_empty()
        || lower.strip_prefix("unnamed").is_some_and(|rest| {
            let rest = rest.trim_start_matches([':', '_', ' ', '-']);
            rest.is_empty() || digits(rest)
        })
        || lower.strip_prefix("column").is_some_and(digits)
}

/// The readiness rater's result: completeness (the profile's), consistency (mean of validity,
/// uniqueness and clean text), schema health (share of healthy columns, less the share of
/// rejected rows), weighted into a score with a verdict and the reasons.
pub fn readiness_result(
    profile: &Profile,
    rejected_row_count: u64,
    params: &ReadinessParams,
    parameters: Value,
    execution_time_ms: f64,
) -> AgentResult {
    let q = &profile.quality;
    let completeness = q.completeness;
    let consistency = (q.validity + q.uniqueness + q.consistency) / 3.0;

    let mut reasons = Vec::new();
    let mut unhealthy = std::collections::BTreeSet::new();
    for c in &profile.columns {
        let problem = if c.null_count == profile.row_count && profile.row_count > 0 {
            Some(("EMPTY_COLUMN", format!("{} is entirely empty", c.name)))
        } else if c.distinct_count == 1 && profile.row_count > 1 {
            Some(("CONSTANT_COLUMN", format!("{} holds a single value", c.name)))
        } else if generated_header(&c.name) {
            Some(("UNNAMED_COLUMN", format!("{} has no real header", c.name)))
        } else if c.invalid_count * 10 > (profile.row_count - c.null_count.min(profile.row_count)).max(1) {
            Some(("MIXED_TYPES", format!("over 10% of {} do not fit its type ({})", c.name, c.semantic_type)))
        } else {
            profile
                .alerts
                .iter()
                .find(|a| a.code == "MIXED_TYPES" && a.column.as_deref() == Some(&c.name))
                .map(|mixed| ("MIXED_TYPES", format!("{}: {}", c.name, mixed.message)))
        };
        if let Some((code, message)) = problem {
            unhealthy.insert(c.name.clone());
            reasons.push(finding(code, "warning", Some(&c.name), message));
        }
    }
    let total_rows = profile.row_count + rejected_row_count;
    let rejected_share = if total_rows == 0 { 0.0 } else { rejected_row_count as f64 / total_rows as f64 };
    let healthy_share = if profile.columns.is_empty() {
        0.0
    } else {
        (profile.columns.len() - unhealthy.len()) as f64 / profile.columns.len() as f64
    };
    let schema_health = 100.0 * healthy_share * (1.0 - rejected_share);
    if rejected_row_count > 0 {
        reasons.push(finding(
            "REJECTED_ROWS",
            "warning",
            None,
            format!("{rejected_row_count} rows could not be read and were set aside"),
        ));
    }
    if profile.row_count == 0 {
        reasons.push(finding("NO_ROWS", "critical", None, "the dataset has no rows".into()));
    }

    let weights = params.completeness_weight + params.consistency_weight + params.schema_weight;
    let score = if weights > 0.0 && profile.row_count > 0 {
        (params.completeness_weight * completeness
            + params.consistency_weight * consistency
            + params.schema_weight * schema_health)
            / weights
    } else {
        0.0
    };
    let verdict = if score >= params.ready_threshold {
        "READY"
    } else if score >= params.review_threshold {
        "NEEDS_REVIEW"
    } else {
        "NOT_READY"
    };
    let mut alerts = Vec::new();
    for (name, value) in
        [("completeness", completeness), ("consistency", consistency), ("schema health", schema_health)]
    {
        if value < params.ready_threshold {
            alerts.push(finding(
                "LOW_COMPONENT",
                if value < params.review_threshold { "critical" } else { "warning" },
                None,
                format!("{name} is {value:.1} of 100, below the READY threshold {}", params.ready_threshold),
            ));
        }
    }
    let mut recommendations = Vec::new();
    if completeness < params.ready_threshold {
        recommendations.push(finding(
            "IMPUTE_MISSING",
            "info",
            None,
            "Impute or drop the missing values (Clean My Data, null handler)".into(),
        ));
    }
    if consistency < params.ready_threshold {
        recommendations.push(finding(
            "STANDARDISE",
            "info",
            None,
            "Standardise formats, trim text and resolve duplicates (Clean My Data)".into(),
        ));
    }
    if !unhealthy.is_empty() {
        recommendations.push(finding(
            "FIX_SCHEMA",
            "info",
            None,
            format!("Name, fill or drop the {} unhealthy column(s)", unhealthy.len()),
        ));
    }
    let verdict_reason = format!("readiness score {score:.1}: {verdict}");
    success(
        registry::READINESS_RATER,
        execution_time_ms,
        json!({
            "readinessScore": score,
            "verdict": verdict,
            "completeness": completeness,
            "consistency": consistency,
            "schemaHealth": schema_health,
            "unhealthyColumns": unhealthy.into_iter().collect::<Vec<_>>(),
            "reasons": reasons.iter().map(|r| r.message.clone()).chain(std::iter::once(verdict_reason)).collect::<Vec<_>>(),
        }),
        [alerts, reasons, recommendations],
        parameters,
    )
}

#[cfg(test)]
mod tests {
    use super::{ReadinessParams, drift_result, generated_header, is_id_header, readiness_result};

    #[test]
    fn a_column_the_profile_finds_mixed_is_unhealthy_for_readiness() {
        let mut profile = crate::reports::fixture::rich_report(0).profile.unwrap();
        let params = ReadinessParams {
            completeness_weight: 0.4,
            consistency_weight: 0.3,
            schema_weight: 0.3,
            ready_threshold: 80.0,
            review_threshold: 50.0,
        };
        let mixed = |profile: &crate::domain::Profile| {
            let result = readiness_result(profile, 0, &params, serde_json::Value::Null, 0.0);
            let reasons: Vec<String> = result
                .issues
                .iter()
                .filter(|f| f.code == "MIXED_TYPES")
                .map(|f| format!("{}: {}", f.column.clone().unwrap_or_default(), f.message))
                .collect();
            (reasons, result.summary_metrics["schemaHealth"].as_f64().unwrap())
        };
        let (before, health) = mixed(&profile);
        let name = profile.columns.iter().find(|c| c.invalid_count == 0).unwrap().name.clone();
        assert!(!before.iter().any(|r| r.starts_with(&format!("{name}:"))), "{before:?}");
        profile.alerts.push(crate::domain::Finding {
            code: "MIXED_TYPES".into(),
            severity: "warning".into(),
            column: Some(name.clone()),
            message: "80.0% of the sampled values are numbers and the others are not: the column mixes types"
                .into(),
        });
        let (after, lower) = mixed(&profile);
        assert!(after.contains(&format!("{name}: {name}: 80.0% of the sampled values are numbers and the others are not: the column mixes types")), "{after:?}");
        assert!(lower < health, "{lower} < {health}");
    }

    #[test]
    fn rows_arriving_in_an_empty_baselines_place_are_a_row_count_change() {
        let mut drift = crate::reports::fixture::rich_report(0).drift.unwrap();
        (drift.baseline_row_count, drift.current_row_count) = (0, 250);
        (drift.row_count_change, drift.row_count_change_percent) = (250, None);
        let result = drift_result(&drift, serde_json::Value::Null, 0.0);
        let alert = result.alerts.iter().find(|a| a.code == "ROW_COUNT_CHANGE").expect("an alert");
        assert!(alert.message.contains("0 (an empty baseline) to 250"), "{}", alert.message);
        // Both empty: nothing moved.
        drift.current_row_count = 0;
        drift.row_count_change = 0;
        let result = drift_result(&drift, serde_json::Value::Null, 0.0);
        assert!(result.alerts.iter().all(|a| a.code != "ROW_COUNT_CHANGE"));
    }

    #[test]
    fn generated_headers_are_told_from_real_ones() {
        for name in ["column0", "column12", "Unnamed: 3", "unnamed_4", "Unnamed", "", "  "] {
            assert!(generated_header(name), "{name:?}");
        }
        for name in ["column", "columns", "column_a", "unnamed_roads", "Unnamed road", "col1"] {
            assert!(!generated_header(name), "{name:?}");
        }
    }

    #[test]
    fn identifier_headers_are_recognised_by_their_last_word() {
        for name in ["id", "customer_id", "orderId", "Account UUID", "row-key", "ID"] {
            assert!(is_id_header(name), "{name}");
        }
        for name in ["idea", "paid", "identity", "valid", "guide", "keyboard", ""] {
            assert!(!is_id_header(name), "{name}");
        }
    }
}
