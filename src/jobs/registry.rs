//! The tool registry: every tool, its agents and their typed parameters, and the one
//! function that checks a run request against it.
//!
//! A frontend renders its forms from this registry (`tools`, `tool(id)`), so the registry is
//! also the validation: an unknown tool, agent or parameter, or a value of the wrong type,
//! is refused with `BAD_USER_INPUT` naming the path (`unified-profiler.top_n_values`) and
//! what is allowed, before any job exists.

use serde_json::{Map, Value, json};

use crate::domain::{ColumnInfo, DriftParams, ProfileParams, RiskParams};
use crate::engine::checks::Bound;
use crate::error::AppError;

/// A named bundle of agents.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub agents: Vec<AgentSpec>,
    /// What the tool needs: formats, whether a baseline is used.
    pub file_requirements: Value,
}

/// One agent of a tool.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub parameters: Vec<ParameterSpec>,
    /// Runs only with a baseline dataset (`baselineDatasetId`).
    pub needs_baseline: bool,
}

/// A typed parameter with its default.
#[derive(Debug, Clone)]
pub struct ParameterSpec {
    pub name: &'static str,
    pub kind: ParameterKind,
    pub default: Value,
    pub description: &'static str,
}

/// What values a parameter accepts.
#[derive(Debug, Clone)]
pub enum ParameterKind {
    Integer {
        min: i64,
        max: i64,
    },
    Number {
        min: f64,
        max: f64,
    },
    Boolean,
    Choice(&'static [&'static str]),
    /// A list of data tests (see [`TestSpec`]).
    Tests,
    /// A list of the dataset's column names (checked against its schema when the run is
    /// queued); null where the agent chooses the columns itself.
    Columns,
    /// `{ column: value }`, each value one of a fixed set.
    ColumnChoices(&'static [&'static str]),
    /// A text of at most `max` characters; null where the parameter is optional.
    Text {
        max: usize,
    },
    /// A dataset's name: 1 to 255 characters once trimmed, no control characters (as
    /// `renameDataset` and uploads take); null where the parameter is optional.
    Name,
    /// A list of at most `max_items` texts of at most `max_len` characters each.
    Texts {
        max_items: usize,
        max_len: usize,
    },
    /// A structured value with its own shape, named for forms (`ranges`, `value_maps`…);
    /// `check` returns the normalised value or what is wrong.
    Structured {
        type_name: &'static str,
        check: fn(&Value) -> Result<Value, String>,
    },
}

/// Most columns a column list or map may name.
const MAX_COLUMNS: usize = 10_000;
/// Longest column name accepted.
const MAX_NAME: usize = 1_000;
/// Most data tests one run may ask for: each is a pass over the data, and a job holds a
/// worker (thousands of tests on a small file held it for half a minute).
const MAX_TESTS: usize = 200;

impl ParameterSpec {
    /// The type name a form uses: integer, number, boolean or enum.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            ParameterKind::Integer { .. } => "integer",
            ParameterKind::Number { .. } => "number",
            ParameterKind::Boolean => "boolean",
            ParameterKind::Choice(_) => "enum",
            ParameterKind::Tests => "tests",
            ParameterKind::Columns => "columns",
            ParameterKind::ColumnChoices(_) => "column_map",
            ParameterKind::Text { .. } | ParameterKind::Name => "string",
            ParameterKind::Texts { .. } => "strings",
            ParameterKind::Structured { type_name, .. } => type_name,
        }
    }

    /// The allowed values, for parameters with a fixed set.
    pub fn allowed(&self) -> Option<Vec<Value>> {
        match self.kind {
            ParameterKind::Boolean => Some(vec![json!(true), json!(false)]),
            ParameterKind::Choice(values) | ParameterKind::ColumnChoices(values) => {
                Some(values.iter().map(|v| json!(v)).collect())
            }
            _ => None,
        }
    }

    pub fn minimum(&self) -> Option<f64> {
        match self.kind {
            ParameterKind::Integer { min, .. } => Some(min as f64),
            ParameterKind::Number { min, .. } => Some(min),
            _ => None,
        }
    }

    pub fn maximum(&self) -> Option<f64> {
        match self.kind {
            ParameterKind::Integer { max, .. } => Some(max as f64),
            ParameterKind::Number { max, .. } => Some(max),
            _ => None,
        }
    }

    /// Checks one value; the error names `path` and says what is allowed.
    fn check(&self, path: &str, value: &Value) -> Result<Value, AppError> {
        let refuse = |what: String| {
            let mut error = AppError::bad_input(path, format!("{path} {what}"));
            if let Some(allowed) = self.allowed() {
                error = error.with("allowed", Value::Array(allowed));
            }
            if let (Some(min), Some(max)) = (self.minimum(), self.maximum()) {
                error = error.with("minimum", min).with("maximum", max);
            }
            error
        };
        // A whole number written as a float (`5.0`, as JSON encoders write floats) is that
        // whole number.
        let whole = value
            .as_i64()
            .or_else(|| value.as_f64().filter(|x| x.fract() == 0.0 && x.abs() <= 9.0e15).map(|x| x as i64));
        match self.kind {
            ParameterKind::Integer { min, max } => match whole {
                Some(n) if (min..=max).contains(&n) => Ok(json!(n)),
                _ => Err(refuse(format!("must be a whole number from {min} to {max}"))),
            },
            ParameterKind::Number { min, max } => match value.as_f64() {
                Some(n) if n.is_finite() && n >= min && n <= max => Ok(json!(n)),
                _ => Err(refuse(format!("must be a number from {min} to {max}"))),
            },
            ParameterKind::Boolean => match value {
                Value::Bool(_) => Ok(value.clone()),
                _ => Err(refuse("must be true or false".into())),
            },
            ParameterKind::Choice(values) => match value.as_str() {
                Some(s) if values.contains(&s) => Ok(value.clone()),
                _ => Err(refuse(format!("must be one of {}", values.join(", ")))),
            },
            ParameterKind::Tests => {
                let tests: Vec<TestSpec> = serde_json::from_value(value.clone()).map_err(|e| {
                    AppError::bad_input(
                        path,
                        format!(
                            "{path} must be a list of tests {{ type: unique|range|regex, column, min, max, \
                             pattern, weight }}: {e}"
                        ),
                    )
                })?;
                if tests.len() > MAX_TESTS {
                    return Err(AppError::bad_input(
                        path,
                        format!("{path}: at most {MAX_TESTS} tests, not {}", tests.len()),
                    )
                    .with("maximum", json!(MAX_TESTS)));
                }
                for (i, test) in tests.iter().enumerate() {
                    test.check().map_err(|what| {
                        let at = format!("{path}[{i}]");
                        AppError::bad_input(&at, format!("{at}: {what}"))
                    })?;
                }
                Ok(serde_json::to_value(&tests).unwrap_or(Value::Null))
            }
            ParameterKind::Columns => match value.as_array() {
                Some(items) if items.len() <= MAX_COLUMNS => {
                    let mut names: Vec<Value> = Vec::new();
                    let mut seen = std::collections::HashSet::new();
                    for item in items {
                        match item.as_str() {
                            Some(name) if !name.is_empty() && name.chars().count() <= MAX_NAME => {
                                if seen.insert(name) {
                                    names.push(json!(name));
                                }
                            }
                            _ => return Err(refuse("must be a list of column names".into())),
                        }
                    }
                    Ok(Value::Array(names))
                }
                _ => Err(refuse("must be a list of column names".into())),
            },
            ParameterKind::ColumnChoices(values) => match value.as_object() {
                Some(map) if map.len() <= MAX_COLUMNS => {
                    for (column, choice) in map {
                        let ok = column.chars().count() <= MAX_NAME
                            && choice.as_str().is_some_and(|c| values.contains(&c));
                        if !ok {
                            return Err(refuse(format!(
                                "must map column names to one of {} ({column:?} does not)",
                                values.join(", ")
                            )));
                        }
                    }
                    Ok(value.clone())
                }
                _ => Err(refuse(format!("must be an object {{ column: {} }}", values.join(" | ")))),
            },
            ParameterKind::Text { max } => match value.as_str() {
                Some(s) if s.chars().count() <= max => Ok(value.clone()),
                _ => Err(refuse(format!("must be a text of at most {max} characters"))),
            },
            ParameterKind::Name => match value.as_str().map(crate::domain::check_dataset_name) {
                Some(Ok(_)) => Ok(value.clone()),
                Some(Err(why)) => Err(refuse(why.into())),
                None => Err(refuse("must be a text of 1 to 255 characters".into())),
            },
            ParameterKind::Texts { max_items, max_len } => match value.as_array() {
                Some(items)
                    if items.len() <= max_items
                        && items.iter().all(|i| i.as_str().is_some_and(|s| s.chars().count() <= max_len)) =>
                {
                    Ok(value.clone())
                }
                _ => Err(refuse(format!(
                    "must be a list of at most {max_items} texts of at most {max_len} characters"
                ))),
            },
            // An error about one element (`[2]: …`, `[0].column: …`) names the element, as
            // the plan's own checks do (`quarantine-agent.patterns[0]`).
            ParameterKind::Structured { check, .. } => check(value).map_err(|what| {
                match what.split_once(": ").filter(|(at, _)| at.starts_with('[') && !at.contains(' ')) {
                    Some((at, rest)) => {
                        let element = format!("{path}{at}");
                        AppError::bad_input(&element, format!("{element}: {rest}"))
                    }
                    None => refuse(what),
                }
            }),
        }
    }
}

/// One data test of the test-coverage agent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    /// `unique` (no value repeats), `range` (min ≤ value ≤ max) or `regex` (the whole value
    /// matches `pattern`). Nulls pass every test.
    #[serde(rename = "type")]
    pub kind: TestKind,
    pub column: String,
    /// Bounds as given: a whole number keeps every digit (a BIGINT identifier beyond 2⁵³ is
    /// tested exactly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<serde_json::Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<serde_json::Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Weight in the coverage score (default 1).
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestKind {
    Unique,
    Range,
    Regex,
}

impl TestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TestKind::Unique => "unique",
            TestKind::Range => "range",
            TestKind::Regex => "regex",
        }
    }
}

impl TestSpec {
    /// The checks that need no dataset: bounds, pattern syntax, weight.
    fn check(&self) -> Result<(), String> {
        if !(self.weight.is_finite() && self.weight > 0.0 && self.weight <= 1000.0) {
            return Err("weight must be a number above 0 and at most 1000".into());
        }
        match self.kind {
            TestKind::Unique => Ok(()),
            TestKind::Range => match (self.min_bound(), self.max_bound()) {
                (None, None) => Err("a range test needs min, max or both".into()),
                (Some(a), Some(b)) if above(a, b) => Err(format!(
                    "min ({}) is above max ({})",
                    bound_text(&self.min, ""),
                    bound_text(&self.max, "")
                )),
                _ => Ok(()),
            },
            TestKind::Regex => match &self.pattern {
                None => Err("a regex test needs a pattern".into()),
                Some(p) if p.len() > 1000 => Err("the pattern is longer than 1000 characters".into()),
                Some(p) => check_pattern(p).map_err(|e| format!("invalid pattern: {e}")),
            },
        }
    }
}

impl TestSpec {
    pub fn min_bound(&self) -> Option<Bound> {
        self.min.as_ref().and_then(Bound::of)
    }

    pub fn max_bound(&self) -> Option<Bound> {
        self.max.as_ref().and_then(Bound::of)
    }
}

/// Whether bound `a` is above bound `b` (whole numbers compared exactly).
fn above(a: Bound, b: Bound) -> bool {
    match (a, b) {
        (Bound::Whole(a), Bound::Whole(b)) => a > b,
        (Bound::Whole(a), Bound::Real(b)) => a as f64 > b,
        (Bound::Real(a), Bound::Whole(b)) => a > b as f64,
        (Bound::Real(a), Bound::Real(b)) => a > b,
    }
}

/// A bound as the client wrote it (JSON's digits), or `open` when there is none.
pub fn bound_text(bound: &Option<serde_json::Number>, open: &str) -> String {
    bound.as_ref().map_or_else(|| open.to_string(), ToString::to_string)
}

/// Checks a run's tests against the dataset's columns: every column exists, and range tests
/// name numeric columns.
pub fn check_test_columns(run: &CheckedRun, columns: &[ColumnInfo]) -> Result<(), AppError> {
    let Some(tests) = run.parameters.get(TEST_COVERAGE).and_then(|p| p.get("tests")) else { return Ok(()) };
    let tests: Vec<TestSpec> = serde_json::from_value(tests.clone()).unwrap_or_default();
    let names = || Value::Array(columns.iter().map(|c| json!(c.name)).collect());
    for (i, test) in tests.iter().enumerate() {
        let path = format!("{TEST_COVERAGE}.tests[{i}].column");
        let Some(column) = columns.iter().find(|c| c.name == test.column) else {
            return Err(AppError::bad_input(&path, format!("the dataset has no column {:?}", test.column))
                .with("allowed", names()));
        };
        if test.kind == TestKind::Range && !is_numeric_type(&column.data_type) {
            return Err(AppError::bad_input(
                &path,
                format!("a range test needs a numeric column; {} is {}", column.name, column.data_type),
            ));
        }
    }
    Ok(())
}

/// Checks a regular expression for RE2, DuckDB's engine, which runs it (DuckDB checks it
/// again when the run is requested). The regex crate's syntax is close to RE2's: it finds the
/// syntax errors, and this refuses what it reads one way and RE2 another — nested classes and
/// class set operations (`[a[bc]]`, `[a-z&&[^aeiou]]`: a `[` or `&&` in a class is a
/// character to RE2), `\b{start}` and its kin, `\<` and `\>` (literal text to RE2) —
/// so that a pattern never means other than it was written to. (`\d`, `\w`, `\s` and `\b`
/// are ASCII in RE2: the pattern means what RE2 reads.)
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    use regex_syntax::ast::{self, AssertionKind, Ast, ClassSetBinaryOp, ClassSetItem};
    struct Re2<'a>(&'a str);
    impl Re2<'_> {
        fn text(&self, span: &ast::Span) -> &str {
            &self.0[span.start.offset..span.end.offset]
        }
    }
    impl ast::Visitor for Re2<'_> {
        type Output = ();
        type Err = String;
        fn finish(self) -> Result<(), String> {
            Ok(())
        }
        fn visit_pre(&mut self, ast: &Ast) -> Result<(), String> {
            match ast {
                Ast::Assertion(a)
                    if !matches!(
                        a.kind,
                        AssertionKind::StartLine
                            | AssertionKind::EndLine
                            | AssertionKind::StartText
                            | AssertionKind::EndText
                            | AssertionKind::WordBoundary
                            | AssertionKind::NotWordBoundary
                    ) =>
                {
                    Err(format!(
                        "{} is not RE2 syntax (RE2 reads it as literal text); use \\b",
                        self.text(&a.span)
                    ))
                }
                _ => Ok(()),
            }
        }
        fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> Result<(), String> {
            match item {
                ClassSetItem::Bracketed(b) => Err(format!(
                    "a class inside a class ({}) is not RE2 syntax (RE2 reads [ in a class as a character)",
                    self.text(&b.span)
                )),
                _ => Ok(()),
            }
        }
        fn visit_class_set_binary_op_pre(&mut self, op: &ClassSetBinaryOp) -> Result<(), String> {
            Err(format!(
                "class set operations ({}) are not RE2 syntax (RE2 reads &&, -- and ~~ in a class as characters)",
                self.text(&op.span)
            ))
        }
    }
    // Parsed, not compiled: compiling `\w{200}` (Unicode classes, repeated) takes the regex
    // crate 70 ms, and a request may hold hundreds of patterns. DuckDB's own compilation of
    // each (`Engine::check_pattern`) is the check of its size.
    regex_syntax::Parser::new().parse(pattern).map_err(|e| e.to_string())?;
    let ast = ast::parse::Parser::new().parse(pattern).map_err(|e| e.to_string())?;
    ast::visit(&ast, Re2(pattern))
}

/// DuckDB types whose values compare as numbers.
pub fn is_numeric_type(data_type: &str) -> bool {
    let t = data_type.to_ascii_uppercase();
    [
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
        "FLOAT",
        "DOUBLE",
        "REAL",
    ]
    .contains(&t.as_str())
        || (t.starts_with("DECIMAL") && !t.ends_with(']'))
}

/// The id of the profiling tool and of its profiler agent.
pub const PROFILE_TOOL: &str = "profile-my-data";
pub const UNIFIED_PROFILER: &str = "unified-profiler";
pub const DRIFT_DETECTOR: &str = "drift-detector";
pub const SCORE_RISK: &str = "score-risk";
pub const TEST_COVERAGE: &str = "test-coverage-agent";
pub const READINESS_RATER: &str = "readiness-rater";

/// Every tool, in the order a frontend lists them.
pub fn tools() -> Vec<ToolSpec> {
    let defaults = ProfileParams::default();
    let drift = DriftParams::default();
    let risk = RiskParams::default();
    let profile_tool = ToolSpec {
        id: PROFILE_TOOL,
        name: "Profile My Data",
        description: "Profiles every column of a dataset inside the engine: types, nulls, distinct values, \
                      statistics, top values, histograms, outliers, duplicates, correlations, a quality \
                      score with its components, and alerts.",
        file_requirements: json!({
            "formats": ["csv", "tsv", "xlsx", "json", "ndjson", "parquet"],
            "baseline": "optional",
        }),
        agents: vec![
            AgentSpec {
                id: UNIFIED_PROFILER,
                needs_baseline: false,
                name: "Unified Profiler",
                description: "Per-column statistics, semantic types, quality score and alerts, computed in a few \
                          passes over the data.",
                parameters: vec![
                    ParameterSpec {
                        name: "null_alert_threshold",
                        kind: ParameterKind::Number { min: 0.0, max: 100.0 },
                        default: json!(defaults.null_alert_threshold),
                        description: "Percent of nulls above which a column is flagged (HIGH_NULLS).",
                    },
                    ParameterSpec {
                        name: "categorical_threshold",
                        kind: ParameterKind::Integer { min: 1, max: 100_000 },
                        default: json!(defaults.categorical_threshold),
                        description: "A text column with at most this many distinct values is categorical.",
                    },
                    ParameterSpec {
                        name: "categorical_ratio_threshold",
                        kind: ParameterKind::Number { min: 0.0, max: 1.0 },
                        default: json!(defaults.categorical_ratio_threshold),
                        description: "A text column whose distinct/non-null ratio is at most this is categorical.",
                    },
                    ParameterSpec {
                        name: "top_n_values",
                        kind: ParameterKind::Integer { min: 1, max: 100 },
                        default: json!(defaults.top_n_values),
                        description: "How many of the most frequent values each column reports.",
                    },
                    ParameterSpec {
                        name: "outlier_iqr_multiplier",
                        kind: ParameterKind::Number { min: 0.1, max: 10.0 },
                        default: json!(defaults.outlier_iqr_multiplier),
                        description: "k in the outlier fences q25 - k*IQR and q75 + k*IQR.",
                    },
                    ParameterSpec {
                        name: "outlier_alert_threshold",
                        kind: ParameterKind::Number { min: 0.0, max: 100.0 },
                        default: json!(defaults.outlier_alert_threshold),
                        description: "Percent of outliers above which a column is flagged (OUTLIERS).",
                    },
                    ParameterSpec {
                        name: "skewness_alert_threshold",
                        kind: ParameterKind::Number { min: 0.0, max: 100.0 },
                        default: json!(defaults.skewness_alert_threshold),
                        description: "|skewness| above which a numeric column is flagged (SKEWED).",
                    },
                    ParameterSpec {
                        name: "histogram_bins",
                        kind: ParameterKind::Integer { min: 1, max: 200 },
                        default: json!(defaults.histogram_bins),
                        description: "Equal-width bins in each numeric and date histogram.",
                    },
                ],
            },
            AgentSpec {
                id: DRIFT_DETECTOR,
                name: "Drift Detector",
                description: "Compares the dataset with a baseline version: schema changes, row count, and per \
                              column KS or Wasserstein, PSI and Jensen–Shannon (numbers) or PSI and \
                              chi-square (categories), with a verdict at the significance level.",
                needs_baseline: true,
                parameters: vec![
                    ParameterSpec {
                        name: "statistical_test",
                        kind: ParameterKind::Choice(&["ks", "wasserstein"]),
                        default: json!(drift.statistical_test),
                        description: "Test for numeric columns: two-sample Kolmogorov–Smirnov (with p-value) or \
                                      Wasserstein distance (verdict by PSI).",
                    },
                    ParameterSpec {
                        name: "significance_level",
                        kind: ParameterKind::Number { min: 0.0001, max: 0.5 },
                        default: json!(drift.significance_level),
                        description: "A column has drifted when its test's p-value is below this.",
                    },
                    ParameterSpec {
                        name: "min_sample_size",
                        kind: ParameterKind::Integer { min: 1, max: 1_000_000 },
                        default: json!(drift.min_sample_size),
                        description: "Columns with fewer non-null values on either side get no verdict.",
                    },
                    ParameterSpec {
                        name: "bins",
                        kind: ParameterKind::Integer { min: 2, max: 100 },
                        default: json!(drift.bins),
                        description: "Shared equal-width bins for PSI and Jensen–Shannon on numeric columns.",
                    },
                    ParameterSpec {
                        name: "psi_threshold",
                        kind: ParameterKind::Number { min: 0.0, max: 10.0 },
                        default: json!(drift.psi_threshold),
                        description: "PSI at or above which a column has drifted when its test has no p-value.",
                    },
                    ParameterSpec {
                        name: "max_categories",
                        kind: ParameterKind::Integer { min: 2, max: 1000 },
                        default: json!(drift.max_categories),
                        description: "Most frequent categories compared per column; the rest are pooled.",
                    },
                ],
            },
            AgentSpec {
                id: SCORE_RISK,
                name: "Risk Scorer",
                description: "Finds personal data by pattern and validation (email, phone, card with Luhn, SSN, \
                              IBAN, IP, postcode, date of birth, names), scores the risk and maps it to GDPR, \
                              CCPA and HIPAA. Example values are masked.",
                needs_baseline: false,
                parameters: vec![
                    ParameterSpec {
                        name: "min_match_share",
                        kind: ParameterKind::Number { min: 0.01, max: 1.0 },
                        default: json!(risk.min_match_share),
                        description: "Share of a column's values that must match a kind of personal data.",
                    },
                    ParameterSpec {
                        name: "header_match_share",
                        kind: ParameterKind::Number { min: 0.01, max: 1.0 },
                        default: json!(risk.header_match_share),
                        description: "The share that suffices when the header names the kind.",
                    },
                    ParameterSpec {
                        name: "max_examples",
                        kind: ParameterKind::Integer { min: 0, max: 10 },
                        default: json!(risk.max_examples),
                        description: "Masked example values shown per column.",
                    },
                ],
            },
            AgentSpec {
                id: TEST_COVERAGE,
                name: "Test Coverage",
                description: "Runs uniqueness, range and regex-format tests (given, or suggested from the \
                              profile) and scores them by weight, with the failing row numbers.",
                needs_baseline: false,
                parameters: vec![
                    ParameterSpec {
                        name: "tests",
                        kind: ParameterKind::Tests,
                        default: json!([]),
                        description: "Tests to run: [{ type: unique|range|regex, column, min, max, pattern, \
                                      weight }].",
                    },
                    ParameterSpec {
                        name: "suggest_tests",
                        kind: ParameterKind::Boolean,
                        default: json!(true),
                        description: "Also run tests suggested from the profile for columns no given test covers.",
                    },
                    ParameterSpec {
                        name: "max_failing_rows",
                        kind: ParameterKind::Integer { min: 0, max: 10_000 },
                        default: json!(100),
                        description: "Failing row numbers listed per test (the total is always given).",
                    },
                ],
            },
            AgentSpec {
                id: READINESS_RATER,
                name: "Readiness Rater",
                description: "Rates completeness, consistency and schema health, weighted, as READY, \
                              NEEDS_REVIEW or NOT_READY, with the reasons.",
                needs_baseline: false,
                parameters: vec![
                    ParameterSpec {
                        name: "completeness_weight",
                        kind: ParameterKind::Number { min: 0.0, max: 1.0 },
                        default: json!(0.4),
                        description: "Weight of completeness in the readiness score.",
                    },
                    ParameterSpec {
                        name: "consistency_weight",
                        kind: ParameterKind::Number { min: 0.0, max: 1.0 },
                        default: json!(0.3),
                        description: "Weight of consistency (validity, uniqueness, clean text).",
                    },
                    ParameterSpec {
                        name: "schema_weight",
                        kind: ParameterKind::Number { min: 0.0, max: 1.0 },
                        default: json!(0.3),
                        description: "Weight of schema health (names, empty or constant columns, rejects).",
                    },
                    ParameterSpec {
                        name: "ready_threshold",
                        kind: ParameterKind::Number { min: 0.0, max: 100.0 },
                        default: json!(80.0),
                        description: "Score at or above which the dataset is READY.",
                    },
                    ParameterSpec {
                        name: "review_threshold",
                        kind: ParameterKind::Number { min: 0.0, max: 100.0 },
                        default: json!(50.0),
                        description: "Score at or above which it NEEDS_REVIEW; below, NOT_READY.",
                    },
                ],
            },
        ],
    };
    vec![profile_tool, super::cleanse::tool()]
}

/// A tool, by id.
pub fn tool(id: &str) -> Option<ToolSpec> {
    tools().into_iter().find(|t| t.id == id)
}

/// A run request checked against the registry, with every default filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedRun {
    pub tool_id: String,
    /// In the tool's order.
    pub agents: Vec<String>,
    /// `{ agentId: { parameter: value } }` for every selected agent, defaults included.
    pub parameters: Value,
}

/// Checks a tool id, an optional agent selection and `{ agentId: { parameter: value } }`.
/// Without a selection every agent runs, except those that need a baseline when there is
/// none; selecting such an agent without a baseline is refused.
pub fn check_run(
    tool_id: &str,
    agents: Option<&[String]>,
    parameters: Option<&Value>,
    has_baseline: bool,
) -> Result<CheckedRun, AppError> {
    let known = tools();
    let Some(tool) = known.iter().find(|t| t.id == tool_id) else {
        let ids: Vec<Value> = known.iter().map(|t| json!(t.id)).collect();
        return Err(AppError::bad_input("toolId", format!("unknown tool {tool_id:?}"))
            .with("allowed", Value::Array(ids)));
    };
    let allowed_agents = || Value::Array(tool.agents.iter().map(|a| json!(a.id)).collect());
    let selected: Vec<&AgentSpec> = match agents {
        None => tool.agents.iter().filter(|a| has_baseline || !a.needs_baseline).collect(),
        Some([]) => {
            return Err(AppError::bad_input(
                "agents",
                "select at least one agent, or leave agents out for all",
            )
            .with("allowed", allowed_agents()));
        }
        Some(ids) => {
            for id in ids {
                if !tool.agents.iter().any(|a| a.id == id) {
                    return Err(AppError::bad_input("agents", format!("{tool_id} has no agent {id:?}"))
                        .with("allowed", allowed_agents()));
                }
            }
            if !has_baseline
                && let Some(agent) =
                    tool.agents.iter().find(|a| a.needs_baseline && ids.iter().any(|id| id == a.id))
            {
                return Err(AppError::bad_input(
                    "baselineDatasetId",
                    format!("{} compares with a baseline: give baselineDatasetId", agent.id),
                ));
            }
            // The tool's order, each agent once.
            tool.agents.iter().filter(|a| ids.iter().any(|id| id == a.id)).collect()
        }
    };
    // A baseline no selected agent compares with would be shown with the job as if it had.
    if has_baseline && !selected.iter().any(|a| a.needs_baseline) {
        let comparing: Vec<Value> =
            tool.agents.iter().filter(|a| a.needs_baseline).map(|a| json!(a.id)).collect();
        let message = if comparing.is_empty() {
            format!("{tool_id} compares with no baseline: leave baselineDatasetId out")
        } else {
            "no selected agent compares with a baseline: leave baselineDatasetId out, or select one that does"
                .to_string()
        };
        return Err(
            AppError::bad_input("baselineDatasetId", message).with("allowed", Value::Array(comparing))
        );
    }

    let given = match parameters {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => {
            return Err(AppError::bad_input(
                "parameters",
                "parameters must be an object { agentId: { parameter: value } }",
            ));
        }
    };
    for (agent_id, _) in &given {
        if !has_baseline && tool.agents.iter().any(|a| a.id == agent_id && a.needs_baseline) {
            return Err(AppError::bad_input(
                "baselineDatasetId",
                format!("{agent_id} compares with a baseline: give baselineDatasetId"),
            ));
        }
        if !selected.iter().any(|a| a.id == agent_id) {
            let message = if tool.agents.iter().any(|a| a.id == agent_id) {
                format!("{agent_id} is not among the selected agents")
            } else {
                format!("{tool_id} has no agent {agent_id:?}")
            };
            return Err(AppError::bad_input(agent_id, message).with("allowed", allowed_agents()));
        }
    }

    let mut resolved = Map::new();
    for agent in &selected {
        let values = match given.get(agent.id) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(_) => {
                return Err(AppError::bad_input(
                    agent.id,
                    format!("parameters of {} must be an object", agent.id),
                ));
            }
        };
        for name in values.keys() {
            if !agent.parameters.iter().any(|p| p.name == name) {
                let path = format!("{}.{name}", agent.id);
                let names: Vec<Value> = agent.parameters.iter().map(|p| json!(p.name)).collect();
                return Err(AppError::bad_input(&path, format!("{} has no parameter {name:?}", agent.id))
                    .with("allowed", Value::Array(names)));
            }
        }
        let mut checked = Map::new();
        for parameter in &agent.parameters {
            let path = format!("{}.{}", agent.id, parameter.name);
            let value = match values.get(parameter.name) {
                None | Some(Value::Null) => parameter.default.clone(),
                Some(value) => parameter.check(&path, value)?,
            };
            checked.insert(parameter.name.to_string(), value);
        }
        resolved.insert(agent.id.to_string(), Value::Object(checked));
    }
    if let Some(Value::Object(p)) = resolved.get(READINESS_RATER) {
        let number = |name: &str| p.get(name).and_then(Value::as_f64).unwrap_or(0.0);
        let weights = ["completeness_weight", "consistency_weight", "schema_weight"];
        if weights.iter().all(|w| number(w) == 0.0) {
            return Err(AppError::bad_input(
                &format!("{READINESS_RATER}.completeness_weight"),
                "at least one readiness weight must be above 0",
            ));
        }
        if number("review_threshold") > number("ready_threshold") {
            return Err(AppError::bad_input(
                &format!("{READINESS_RATER}.review_threshold"),
                "review_threshold must not be above ready_threshold",
            ));
        }
    }
    Ok(CheckedRun {
        tool_id: tool.id.to_string(),
        agents: selected.iter().map(|a| a.id.to_string()).collect(),
        parameters: Value::Object(resolved),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn ext(error: &AppError, key: &str) -> Value {
        error.extensions().iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()).unwrap_or(Value::Null)
    }

    fn field(error: &AppError) -> String {
        ext(error, "field").as_str().unwrap_or_default().to_string()
    }

    #[test]
    fn patterns_that_re2_reads_otherwise_are_refused() {
        for ok in [
            r"[A-Z]{2}-\d+",
            r"^\w+@\w+\.com$",
            r"[[:alpha:]]+",
            r"a{0,3}",
            r"\bword\b",
            r"[^a-z]",
            r"[\[\]]",
        ] {
            assert_eq!(check_pattern(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            (r"[a-z&&[^aeiou]]", "class set operations (a-z&&[^aeiou])"),
            (r"[a[bc]]", "a class inside a class ([bc])"),
            (r"\b{start}x", r"\b{start} is not RE2 syntax"),
            (r"\<x", r"\< is not RE2 syntax"),
            (r"x\>", r"\> is not RE2 syntax"),
            (r"a{,3}", "repetition quantifier expects a valid decimal"),
            ("(", "unclosed group"),
        ] {
            let why = check_pattern(bad).unwrap_err();
            assert!(why.contains(says), "{bad}: {why}");
        }
    }

    #[test]
    fn defaults_fill_every_parameter_and_parse_as_profile_params() {
        let run = check_run(PROFILE_TOOL, Some(&[UNIFIED_PROFILER.to_string()]), None, false).unwrap();
        assert_eq!(run.agents, [UNIFIED_PROFILER]);
        let params: ProfileParams = serde_json::from_value(run.parameters[UNIFIED_PROFILER].clone()).unwrap();
        assert_eq!(params, ProfileParams::default());
    }

    #[test]
    fn given_values_are_checked_and_kept() {
        let given = json!({ "unified-profiler": { "top_n_values": 3, "outlier_iqr_multiplier": 3 } });
        let run = check_run(PROFILE_TOOL, None, Some(&given), false).unwrap();
        assert_eq!(run.parameters[UNIFIED_PROFILER]["top_n_values"], 3);
        assert_eq!(run.parameters[UNIFIED_PROFILER]["outlier_iqr_multiplier"], 3.0);
        // A whole number sent as a float is that whole number, stored as an integer.
        let given = json!({ "unified-profiler": { "top_n_values": 5.0 } });
        let run = check_run(PROFILE_TOOL, None, Some(&given), false).unwrap();
        assert_eq!(run.parameters[UNIFIED_PROFILER]["top_n_values"].as_u64(), Some(5));
    }

    #[test]
    fn bad_requests_name_the_path_and_what_is_allowed() {
        let cases = [
            (json!({ "unified-profiler": { "top_n_values": "ten" } }), "unified-profiler.top_n_values"),
            (json!({ "unified-profiler": { "top_n_values": 2.5 } }), "unified-profiler.top_n_values"),
            (json!({ "unified-profiler": { "top_n_values": 0 } }), "unified-profiler.top_n_values"),
            (json!({ "unified-profiler": { "no_such": 1 } }), "unified-profiler.no_such"),
            (json!({ "nobody": {} }), "nobody"),
            (json!({ "unified-profiler": 5 }), "unified-profiler"),
            (json!([1]), "parameters"),
        ];
        for (given, path) in cases {
            let error = check_run(PROFILE_TOOL, None, Some(&given), false).unwrap_err();
            assert_eq!(error.code(), ErrorCode::BadUserInput, "{given}");
            assert_eq!(field(&error), path, "{given}");
        }
        let error = check_run("no-such-tool", None, None, false).unwrap_err();
        assert_eq!(ext(&error, "allowed"), json!([PROFILE_TOOL, "clean-my-data"]));
        let error = check_run(PROFILE_TOOL, Some(&["drifter".to_string()]), None, false).unwrap_err();
        assert_eq!(
            ext(&error, "allowed"),
            json!([UNIFIED_PROFILER, DRIFT_DETECTOR, SCORE_RISK, TEST_COVERAGE, READINESS_RATER])
        );
        let error = check_run(
            PROFILE_TOOL,
            None,
            Some(&json!({ "unified-profiler": { "top_n_values": -1 } })),
            false,
        )
        .unwrap_err();
        assert_eq!(
            (ext(&error, "minimum").as_f64(), ext(&error, "maximum").as_f64()),
            (Some(1.0), Some(100.0))
        );
    }

    #[test]
    fn agents_that_need_a_baseline_run_only_with_one() {
        let all = check_run(PROFILE_TOOL, None, None, false).unwrap();
        assert_eq!(all.agents, [UNIFIED_PROFILER, SCORE_RISK, TEST_COVERAGE, READINESS_RATER]);
        let with = check_run(PROFILE_TOOL, None, None, true).unwrap();
        assert_eq!(
            with.agents,
            [UNIFIED_PROFILER, DRIFT_DETECTOR, SCORE_RISK, TEST_COVERAGE, READINESS_RATER]
        );
        let error = check_run(PROFILE_TOOL, Some(&[DRIFT_DETECTOR.to_string()]), None, false).unwrap_err();
        assert_eq!(field(&error), "baselineDatasetId");
        // A baseline no selected agent compares with is refused, not shown with the job.
        let error = check_run(PROFILE_TOOL, Some(&[UNIFIED_PROFILER.to_string()]), None, true).unwrap_err();
        assert_eq!(field(&error), "baselineDatasetId");
        let error = check_run(crate::jobs::cleanse::CLEAN_TOOL, None, None, true).unwrap_err();
        assert_eq!(field(&error), "baselineDatasetId");
        let drift: DriftParams = serde_json::from_value(with.parameters[DRIFT_DETECTOR].clone()).unwrap();
        assert_eq!(drift, DriftParams::default());
        let risk: RiskParams = serde_json::from_value(with.parameters[SCORE_RISK].clone()).unwrap();
        assert_eq!(risk, RiskParams::default());
    }

    #[test]
    fn tests_are_checked_item_by_item() {
        let run = |tests: Value| {
            check_run(PROFILE_TOOL, None, Some(&json!({ TEST_COVERAGE: { "tests": tests } })), false)
        };
        let ok = run(json!([
            { "type": "unique", "column": "id" },
            { "type": "range", "column": "age", "min": 0, "max": 120, "weight": 2 },
            { "type": "regex", "column": "code", "pattern": "[A-Z]{3}-\\d+" },
        ]))
        .unwrap();
        let tests: Vec<TestSpec> =
            serde_json::from_value(ok.parameters[TEST_COVERAGE]["tests"].clone()).unwrap();
        assert_eq!(tests.len(), 3);
        assert_eq!(tests[0].weight, 1.0);
        assert_eq!(tests[1].weight, 2.0);
        let many = |n: usize| Value::Array(vec![json!({ "type": "unique", "column": "id" }); n]);
        assert!(run(many(MAX_TESTS)).is_ok());
        let error = run(many(MAX_TESTS + 1)).unwrap_err();
        assert_eq!(
            (error.code(), field(&error).as_str()),
            (ErrorCode::BadUserInput, "test-coverage-agent.tests")
        );
        let cases = [
            (json!([{ "type": "regex", "column": "c", "pattern": "(" }]), "test-coverage-agent.tests[0]"),
            (json!([{ "type": "range", "column": "c" }]), "test-coverage-agent.tests[0]"),
            (json!([{ "type": "range", "column": "c", "min": 5, "max": 1 }]), "test-coverage-agent.tests[0]"),
            (json!([{ "type": "unique", "column": "c", "weight": 0 }]), "test-coverage-agent.tests[0]"),
            (
                json!([{ "type": "unique", "column": "c" }, { "type": "sorted", "column": "c" }]),
                "test-coverage-agent.tests",
            ),
            (json!([{ "type": "unique", "column": "c", "colour": 1 }]), "test-coverage-agent.tests"),
            (json!({ "type": "unique" }), "test-coverage-agent.tests"),
        ];
        for (tests, path) in cases {
            let error = run(tests.clone()).unwrap_err();
            assert_eq!(error.code(), ErrorCode::BadUserInput, "{tests}");
            assert_eq!(field(&error), path, "{tests}");
        }
        let columns = [
            ColumnInfo { name: "id".into(), data_type: "BIGINT".into() },
            ColumnInfo { name: "age".into(), data_type: "INTEGER".into() },
            ColumnInfo { name: "code".into(), data_type: "VARCHAR".into() },
        ];
        check_test_columns(&ok, &columns).unwrap();
        let bad = run(json!([{ "type": "range", "column": "code", "min": 1 }])).unwrap();
        assert_eq!(
            field(&check_test_columns(&bad, &columns).unwrap_err()),
            "test-coverage-agent.tests[0].column"
        );
        let missing = run(json!([{ "type": "unique", "column": "nope" }])).unwrap();
        let error = check_test_columns(&missing, &columns).unwrap_err();
        assert_eq!(ext(&error, "allowed"), json!(["id", "age", "code"]));
    }

    #[test]
    fn readiness_weights_and_thresholds_must_make_sense() {
        let zero = json!({ READINESS_RATER: { "completeness_weight": 0, "consistency_weight": 0, "schema_weight": 0 } });
        let error = check_run(PROFILE_TOOL, None, Some(&zero), false).unwrap_err();
        assert_eq!(field(&error), "readiness-rater.completeness_weight");
        let swapped = json!({ READINESS_RATER: { "ready_threshold": 40, "review_threshold": 60 } });
        let error = check_run(PROFILE_TOOL, None, Some(&swapped), false).unwrap_err();
        assert_eq!(field(&error), "readiness-rater.review_threshold");
    }
}
