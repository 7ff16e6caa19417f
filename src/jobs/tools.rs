//! What each agent's result says, built from what the engine computed. Pure functions: the
//! numbers come from the engine, this only arranges them in the shape every agent shares.

use serde_json::json;

use crate::domain::{AgentResult, Dataset, Finding, Profile};

/// The unified profiler's result, from its profile.
pub fn profiler_result(
    profile: &Profile,
    dataset: &Dataset,
    parameters: serde_json::Value,
    execution_time_ms: f64,
) -> AgentResult {
    let q = &profile.quality;
    let summary_metrics = json!({
        "rowCount": profile.row_count,
        "columnCount": profile.column_count,
        "duplicateRowCount": profile.duplicate_row_count,
        "rejectedRowCount": dataset.rejected_row_count,
        "qualityScore": q.score,
        "grade": q.grade,
        "completeness": q.completeness,
        "validity": q.validity,
        "uniqueness": q.uniqueness,
        "consistency": q.consistency,
    });

    let mut issues = Vec::new();
    if dataset.rejected_row_count > 0 {
        issues.push(Finding {
            code: "REJECTED_ROWS".into(),
            severity: "warning".into(),
            column: None,
            message: format!(
                "{} input rows could not be read as the detected schema; they are kept as rejects",
                dataset.rejected_row_count
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
    AgentResult {
        agent_id: super::registry::UNIFIED_PROFILER.to_string(),
        status: "success".into(),
        execution_time_ms,
        summary_metrics,
        alerts: profile.alerts.clone(),
        issues,
        recommendations,
        row_level_issues: Vec::new(),
        row_level_issue_count: 0,
        parameters,
    }
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
