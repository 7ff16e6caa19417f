//! What the drift detector reports: how a dataset version differs from a baseline version.
//! Definitions of every statistic are in docs/statistics.md ("Drift").

use serde::{Deserialize, Serialize};

use super::ColumnInfo;

/// The drift detector's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftParams {
    /// `ks` (two-sample Kolmogorov–Smirnov, with p-value) or `wasserstein` (earth mover's
    /// distance, no p-value: the verdict then uses PSI) for numeric columns.
    pub statistical_test: String,
    /// A column has drifted when its test's p-value is below this.
    pub significance_level: f64,
    /// Columns with fewer non-null values than this on either side get no verdict.
    pub min_sample_size: u64,
    /// Shared equal-width bins for PSI and Jensen–Shannon on numeric columns.
    pub bins: u64,
    /// PSI at or above which a column has drifted when there is no p-value.
    pub psi_threshold: f64,
    /// Categorical columns compare at most this many most frequent categories (the rest are
    /// pooled as one "other" category).
    pub max_categories: u64,
}

impl Default for DriftParams {
    fn default() -> Self {
        DriftParams {
            statistical_test: "ks".into(),
            significance_level: 0.05,
            min_sample_size: 30,
            bins: 10,
            psi_threshold: 0.2,
            max_categories: 50,
        }
    }
}

/// The difference between a dataset (current) and its baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub baseline_row_count: u64,
    pub current_row_count: u64,
    /// current − baseline.
    pub row_count_change: i64,
    /// Change as a percent of the baseline; `None` when the baseline is empty.
    pub row_count_change_percent: Option<f64>,
    pub schema: SchemaDrift,
    /// One entry per column present in both versions, in the current version's order.
    pub columns: Vec<ColumnDrift>,
    /// Columns whose verdict is `drift`.
    pub drifted_count: u64,
    /// The baseline dataset's name when the comparison ran (a report outlives its baseline:
    /// deleting that dataset clears the job's link to it). `None` in reports stored before it
    /// was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_name: Option<String>,
    /// Columns that hold personal data in either version, found by the risk scorer's
    /// detection — on the baseline always, on the current version when the run had neither the
    /// risk scorer nor the profiler to tell: the reports mask their categories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub personal_columns: Vec<PersonalColumn>,
}

/// A column holding personal data, and its kind (one of [`crate::domain::PII_KINDS`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonalColumn {
    pub column: String,
    pub kind: String,
}

/// Columns added, removed or retyped between the versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SchemaDrift {
    pub added: Vec<ColumnInfo>,
    pub removed: Vec<ColumnInfo>,
    pub retyped: Vec<Retyped>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retyped {
    pub name: String,
    pub baseline_type: String,
    pub current_type: String,
}

/// One column's drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDrift {
    pub column: String,
    /// `numeric` or `categorical`.
    pub kind: String,
    /// `ks`, `wasserstein` (numeric) or `chi_square` (categorical).
    pub test: String,
    /// Values compared on each side: non-null values (numbers: finite ones; NaN, ±Infinity and
    /// infinite dates are left out).
    pub baseline_count: u64,
    pub current_count: u64,
    /// The test's statistic: KS D, Wasserstein distance, or the chi-square statistic.
    pub statistic: Option<f64>,
    pub p_value: Option<f64>,
    /// Chi-square degrees of freedom.
    pub degrees_of_freedom: Option<u64>,
    /// Population stability index on the shared bins or categories.
    pub psi: Option<f64>,
    /// Jensen–Shannon divergence (base 2, 0–1) on the shared bins or categories.
    pub js_divergence: Option<f64>,
    /// `drift`, `no_drift` or `insufficient_data`.
    pub verdict: String,
    /// The shared bins (numeric: `bins` of them, or one when every value is the same) or
    /// categories (at most `max_categories`, most frequent first, then `(other)`), with each
    /// side's share (0–1), for charts. Empty when a side has no values.
    pub bins: Vec<DriftBin>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftBin {
    /// `[lower, upper)` for numbers, the category for categories (`(other)` pools the rest).
    pub label: String,
    pub baseline: f64,
    pub current: f64,
}
