//! What a job produces: a report with the dataset profile and one result per agent.
//!
//! These are plain values, stored as JSON with the job (`serde`), read by the GraphQL layer.
//! Statistics definitions are in docs/statistics.md.

use serde::{Deserialize, Serialize};

/// The unified profiler's parameters, with the first version's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileParams {
    /// Percent of nulls above which a column gets a `HIGH_NULLS` alert.
    pub null_alert_threshold: f64,
    /// A column with at most this many distinct values is categorical.
    pub categorical_threshold: u64,
    /// A column whose distinct/non-null ratio is at most this is categorical.
    pub categorical_ratio_threshold: f64,
    /// How many most frequent values each column reports.
    pub top_n_values: u64,
    /// `k` in the IQR fences `q25 - k*IQR` and `q75 + k*IQR`.
    pub outlier_iqr_multiplier: f64,
    /// Percent of outliers above which a column gets an `OUTLIERS` alert.
    pub outlier_alert_threshold: f64,
    /// |skewness| above which a numeric column gets a `SKEWED` alert.
    pub skewness_alert_threshold: f64,
    /// Equal-width bins in each numeric or date histogram.
    pub histogram_bins: u64,
}

impl Default for ProfileParams {
    fn default() -> Self {
        ProfileParams {
            null_alert_threshold: 20.0,
            categorical_threshold: 50,
            categorical_ratio_threshold: 0.05,
            top_n_values: 10,
            outlier_iqr_multiplier: 1.5,
            outlier_alert_threshold: 5.0,
            skewness_alert_threshold: 1.0,
            histogram_bins: 20,
        }
    }
}

/// The profile of a whole dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub row_count: u64,
    pub column_count: u64,
    /// Rows that are exact copies of an earlier row (a row seen 3 times counts 2).
    pub duplicate_row_count: u64,
    pub quality: Quality,
    pub columns: Vec<ColumnProfile>,
    /// Pearson correlations between numeric columns (each pair once).
    pub correlations: Vec<Correlation>,
    pub alerts: Vec<Finding>,
}

/// The quality score (0–100) and its components, each 0–100.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    pub score: f64,
    /// A (≥ 90), B (≥ 80), C (≥ 70), D (≥ 60), F.
    pub grade: String,
    /// Share of cells that are not null.
    pub completeness: f64,
    /// Share of non-null cells that are valid for their column's semantic type. (Rows
    /// rejected at ingest are reported separately, as a `REJECTED_ROWS` issue.)
    pub validity: f64,
    /// Share of rows that are not duplicates of an earlier row.
    pub uniqueness: f64,
    /// Share of non-null text cells without stray whitespace.
    pub consistency: f64,
}

/// One column's statistics. Numeric fields are `None` where they do not apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub name: String,
    /// DuckDB type of the canonical copy (BIGINT, DOUBLE, VARCHAR, DATE…).
    pub data_type: String,
    /// integer, float, boolean, date, datetime, email, phone, url, uuid, ip, postcode,
    /// currency, category, identifier, text, empty.
    pub semantic_type: String,
    pub null_count: u64,
    pub null_percent: f64,
    /// Exact count of distinct non-null values.
    pub distinct_count: u64,
    /// distinct / non-null × 100.
    pub unique_percent: f64,
    pub min: Option<String>,
    pub max: Option<String>,
    pub mean: Option<f64>,
    /// Sample standard deviation (n − 1).
    pub stddev: Option<f64>,
    pub median: Option<f64>,
    pub q25: Option<f64>,
    pub q75: Option<f64>,
    pub skewness: Option<f64>,
    pub kurtosis: Option<f64>,
    pub zeros: Option<u64>,
    pub negatives: Option<u64>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub mean_length: Option<f64>,
    /// Values outside the IQR fences.
    pub outlier_count: Option<u64>,
    /// Non-null values that do not fit the semantic type (for validity).
    pub invalid_count: u64,
    /// Values with leading or trailing whitespace (for consistency).
    pub untrimmed_count: u64,
    /// Most frequent values, most frequent first (ties by value).
    pub top_values: Vec<ValueCount>,
    /// Equal-width bins over [min, max]; dates and times in Unix epoch seconds.
    pub histogram: Vec<HistogramBin>,
    /// The kind of personal data the column likely holds (email, phone, ip, name…).
    pub pii: Option<String>,
}

impl ColumnProfile {
    /// The values a report shows of the column: its top values, min and max, trimmed (some may
    /// repeat).
    pub fn shown_values(&self) -> impl Iterator<Item = &str> {
        self.top_values
            .iter()
            .filter_map(|v| v.value.as_deref())
            .chain(self.min.as_deref())
            .chain(self.max.as_deref())
            .map(str::trim)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueCount {
    /// `None` is the null value.
    pub value: Option<String>,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramBin {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correlation {
    pub a: String,
    pub b: String,
    pub method: String,
    pub value: f64,
}

/// An alert, issue or recommendation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable code, e.g. `HIGH_NULLS`.
    pub code: String,
    /// info, warning or critical.
    pub severity: String,
    pub column: Option<String>,
    pub message: String,
}

/// A problem found in one row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowIssue {
    /// 1-based row number in the dataset.
    pub row: u64,
    pub column: Option<String>,
    pub code: String,
    pub message: String,
}

/// One agent's result, in the shape every agent shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentResult {
    pub agent_id: String,
    /// success or failed.
    pub status: String,
    pub execution_time_ms: f64,
    pub summary_metrics: serde_json::Value,
    pub alerts: Vec<Finding>,
    pub issues: Vec<Finding>,
    pub recommendations: Vec<Finding>,
    /// Capped; `row_level_issue_count` is the total.
    pub row_level_issues: Vec<RowIssue>,
    pub row_level_issue_count: u64,
    /// The parameters the agent actually ran with (defaults filled in).
    pub parameters: serde_json::Value,
}

/// What a completed job produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Report {
    /// Present when the unified profiler ran.
    pub profile: Option<Profile>,
    pub agents: Vec<AgentResult>,
    /// Present when the drift detector ran.
    #[serde(default)]
    pub drift: Option<super::DriftReport>,
    /// Present when the risk scorer ran.
    #[serde(default)]
    pub risk: Option<super::RiskReport>,
    /// Present when a cleanse ran: what it changed, step by step.
    #[serde(default)]
    pub cleanse: Option<CleanseManifest>,
}

/// The manifest of a cleanse: every step with the rows it removed or quarantined, every
/// change per step and column, and the integrity checks. Row accounting:
/// `rows_in = rows_out + rows_removed + rows_quarantined`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CleanseManifest {
    pub rows_in: u64,
    pub rows_out: u64,
    /// Removed by the steps (duplicates, dropped nulls, removed outliers).
    pub rows_removed: u64,
    pub rows_quarantined: u64,
    pub steps: Vec<ManifestStep>,
    pub changes: Vec<ManifestChange>,
    pub checks: Vec<IntegrityCheck>,
    /// The cleaned version (absent when nothing was published).
    pub output_dataset_id: Option<String>,
    /// The quarantined rows, with `_reason` and `_row` (absent when none were quarantined).
    pub quarantine_dataset_id: Option<String>,
}

/// One step of the plan, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestStep {
    /// The agent the step belongs to.
    pub agent_id: String,
    /// quarantine, null_tokens, fix_types, standardize, convert_units, deduplicate, nulls or
    /// outliers.
    pub step: String,
    /// What it does, in words (`price → float`, `outliers in age by IQR (k = 1.5): cap`).
    pub description: String,
    pub rows_removed: u64,
    pub rows_quarantined: u64,
}

/// Values one step changed (or could not handle) in one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestChange {
    pub agent_id: String,
    /// The step's name, as in [`ManifestStep::step`] (empty in reports stored before steps
    /// were named here: their changes were summed per agent).
    #[serde(default)]
    pub step: String,
    pub column: String,
    pub changed: u64,
    /// Conversions that failed, dates no format read, invalid emails or phone numbers.
    pub failed: u64,
}

/// One integrity check of the written output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegrityCheck {
    /// row_accounting, no_new_nulls, types, filled_columns.
    pub name: String,
    pub passed: bool,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_change_stored_before_steps_were_named_still_reads() {
        let old =
            serde_json::json!({ "agent_id": "null-handler", "column": "amount", "changed": 2, "failed": 0 });
        let change: ManifestChange = serde_json::from_value(old).unwrap();
        assert_eq!((change.step.as_str(), change.changed), ("", 2));
    }

    #[test]
    fn stored_numbers_read_back_to_the_same_doubles() {
        // Reports are stored as JSON and read back: serde_json's fast float parsing (without
        // `float_roundtrip`) read 123456789.12345679 back as 123456789.1234568, so a profile's
        // mean of one value differed from its min through the API.
        for x in [123456789.12345679, 95.03564710531755, 18.051854611616722, -1.8958630909153014e18, 5e-324] {
            let text = serde_json::to_string(&Correlation {
                a: "a".into(),
                b: "b".into(),
                method: "pearson".into(),
                value: x,
            })
            .unwrap();
            let back: Correlation = serde_json::from_str(&text).unwrap();
            assert_eq!(back.value.to_bits(), x.to_bits(), "{text}");
        }
    }
}
