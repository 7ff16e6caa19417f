//! Clean My Data: the tool's eight agents and their parameters, the cleanse plan a run's
//! parameters make over a dataset's columns, and what a run reports (one result per agent
//! and the manifest).
//!
//! The plan follows the product's chain: null tokens first (so that `N/A` is missing, not a
//! failed conversion or a quarantine reason), then quarantine, type fixes, standardization,
//! duplicates, null filling and outliers. Where the user names no columns, the agents choose
//! from the dataset's types and a sample ([`ColumnEvidence`]): text columns whose values
//! convert, email and phone columns by their headers, numeric columns (not identifiers) for
//! null filling and outliers. Every column the user names is checked against the schema.

use serde_json::{Map, Value, json};

use super::registry::{AgentSpec, ParameterKind, ParameterSpec, ToolSpec};
use crate::domain::{
    AgentResult, CleanseManifest, ColumnInfo, Finding, IntegrityCheck, ManifestChange, ManifestStep,
};
use crate::engine::cleanse::{
    Case, CleanseOutcome, CleansePlan, CleansePreview, ColumnEvidence, Conversion, DEFAULT_DATE_FORMATS,
    DEFAULT_NULL_TOKENS, DedupMode, Keep, NullStrategy, OnFailure, OutlierAction, OutlierMethod,
    RESERVED_PREFIX, Standardize, Step, TargetType, is_reserved_column, month_first, parse_region,
};
use crate::engine::pii::header_kind;
use crate::error::AppError;

pub const CLEAN_TOOL: &str = "clean-my-data";
pub const PREVIEWER: &str = "cleanse-previewer";
pub const QUARANTINE: &str = "quarantine-agent";
pub const TYPE_FIXER: &str = "type-fixer";
pub const STANDARDIZER: &str = "field-standardization";
pub const DEDUPLICATOR: &str = "duplicate-resolver";
pub const NULL_HANDLER: &str = "null-handler";
pub const OUTLIER_REMOVER: &str = "outlier-remover";
pub const WRITEBACK: &str = "cleanse-writeback";

/// The ISO date format, tried before `date_formats`.
const ISO_DATE: &str = "%Y-%m-%d";

/// Rows sampled (in four windows) to choose conversions and fills.
pub const EVIDENCE_SAMPLE_ROWS: u64 = 20_000;

/// A text column with at most this many distinct values in the sample (or at most 5 % of
/// its values distinct) is categorical: its nulls are filled with its mode.
const CATEGORICAL_DISTINCT: u64 = 50;

const TYPES: &[&str] = &["integer", "float", "boolean", "date", "timestamp"];
const STRATEGIES: &[&str] = &["drop", "mean", "median", "mode", "forward_fill", "back_fill", "constant"];

fn param(
    name: &'static str,
    kind: ParameterKind,
    default: Value,
    description: &'static str,
) -> ParameterSpec {
    ParameterSpec { name, kind, default, description }
}

fn agent(
    id: &'static str,
    name: &'static str,
    description: &'static str,
    parameters: Vec<ParameterSpec>,
) -> AgentSpec {
    AgentSpec { id, name, description, parameters, needs_baseline: false }
}

/// The tool as the registry lists it.
pub fn tool() -> ToolSpec {
    ToolSpec {
        id: CLEAN_TOOL,
        name: "Clean My Data",
        description: "Cleans a dataset in one pass inside the engine: quarantines invalid rows, fixes types, \
                      standardizes values, resolves duplicates, handles nulls and outliers, checks the result \
                      and writes it as a new version of the dataset with a manifest of every change. Preview \
                      the plan on a sample first with previewTool.",
        file_requirements: json!({
            "formats": ["csv", "tsv", "xlsx", "json", "ndjson", "parquet"],
            "baseline": "none",
            "output": "a new version of the dataset, and the quarantined rows as a dataset of their own",
        }),
        agents: vec![
            agent(
                PREVIEWER,
                "Cleanse Previewer",
                "Runs the plan on a reservoir sample and reports rows before and after, changes per step and \
                 column, and sampled rows before and after; writes nothing.",
                vec![param(
                    "sample_size",
                    ParameterKind::Integer { min: 1, max: 1_000_000 },
                    json!(10_000),
                    "Rows sampled (reservoir, repeatable) for the preview.",
                )],
            ),
            agent(
                QUARANTINE,
                "Quarantine",
                "Moves rows with a missing required field or a value out of range or not in the expected \
                 format to a quarantine dataset, with the reasons per row; nothing is lost.",
                vec![
                    param(
                        "required_columns",
                        ParameterKind::Columns,
                        json!([]),
                        "Columns that must hold a value (null or blank is missing).",
                    ),
                    param(
                        "ranges",
                        ParameterKind::Structured { type_name: "ranges", check: check_ranges },
                        json!([]),
                        "Allowed ranges: [{ column, min, max }] (either bound may be left out).",
                    ),
                    param(
                        "patterns",
                        ParameterKind::Structured { type_name: "patterns", check: check_patterns },
                        json!([]),
                        "Formats: [{ column, pattern }]; the whole value must match the regular expression (RE2).",
                    ),
                ],
            ),
            agent(
                TYPE_FIXER,
                "Type Fixer",
                "Converts text columns to integer, float, boolean, date or timestamp where the values support \
                 it; values that do not convert are counted and quarantined or nulled.",
                vec![
                    param(
                        "columns",
                        ParameterKind::ColumnChoices(TYPES),
                        json!({}),
                        "Conversions to make: { column: integer | float | boolean | date | timestamp }.",
                    ),
                    param(
                        "auto_detect",
                        ParameterKind::Boolean,
                        json!(true),
                        "Also convert other text columns whose sampled values support a type (identifiers, \
                         phone numbers, postcodes and columns with leading zeros stay text).",
                    ),
                    param(
                        "threshold",
                        ParameterKind::Number { min: 0.5, max: 1.0 },
                        json!(0.95),
                        "Share of a column's sampled non-blank values that must convert for auto-detection.",
                    ),
                    param(
                        "on_failure",
                        ParameterKind::Choice(&["quarantine", "null"]),
                        json!("quarantine"),
                        "What happens to a row whose value does not convert: quarantined, or the value nulled.",
                    ),
                ],
            ),
            agent(
                STANDARDIZER,
                "Field Standardization",
                "Trims and collapses spaces, sets case, maps synonyms, converts units, rewrites dates from \
                 mixed formats into one, phone numbers to E.164 and emails to lower case (invalid ones flagged).",
                vec![
                    param("trim", ParameterKind::Boolean, json!(true), "Trim every text column."),
                    param(
                        "collapse_spaces",
                        ParameterKind::Boolean,
                        json!(true),
                        "Collapse runs of whitespace inside every text column to one space.",
                    ),
                    param(
                        "case",
                        ParameterKind::ColumnChoices(&["upper", "lower", "title"]),
                        json!({}),
                        "Case per column: { column: upper | lower | title }. Title case capitalises each word, a word starting after a space, hyphen, slash or opening parenthesis.",
                    ),
                    param(
                        "value_maps",
                        ParameterKind::Structured { type_name: "value_maps", check: check_value_maps },
                        json!({}),
                        "Synonyms per column: { column: { value: replacement } }, matched after trimming and case.",
                    ),
                    param(
                        "units",
                        ParameterKind::Structured { type_name: "units", check: check_units },
                        json!({}),
                        "Unit conversions per numeric column: { column: { from, to } } with units of length (mm, \
                         cm, m, km, in, ft, yd, mi), mass (mg, g, kg, t, oz, lb) or temperature (c, f, k).",
                    ),
                    param(
                        "date_columns",
                        ParameterKind::Columns,
                        json!([]),
                        "Columns of dates in mixed formats, rewritten into date_output.",
                    ),
                    param(
                        "date_formats",
                        ParameterKind::Texts { max_items: 50, max_len: 100 },
                        json!(DEFAULT_DATE_FORMATS),
                        "Input formats (strptime) tried in order after ISO dates.",
                    ),
                    param(
                        "date_output",
                        ParameterKind::Text { max: 100 },
                        json!("%Y-%m-%d"),
                        "Format (strftime) dates are written in.",
                    ),
                    param(
                        "email_columns",
                        ParameterKind::Columns,
                        Value::Null,
                        "Email columns (trimmed, lower-cased, invalid ones flagged); by default the columns whose \
                         header names an email.",
                    ),
                    param(
                        "phone_columns",
                        ParameterKind::Columns,
                        Value::Null,
                        "Phone columns, rewritten in E.164; by default the columns whose header names a phone.",
                    ),
                    param(
                        "phone_region",
                        ParameterKind::Text { max: 2 },
                        json!("US"),
                        "Region (ISO 3166 alpha-2) of phone numbers written without a country code.",
                    ),
                ],
            ),
            agent(
                DEDUPLICATOR,
                "Duplicate Resolver",
                "Finds exact, case- and whitespace-insensitive, email-case, key and fuzzy duplicates \
                 (Jaro-Winkler over a normalised key, within blocks); removes them or merges each group.",
                vec![
                    param(
                        "mode",
                        ParameterKind::Choice(&["exact", "case_insensitive", "email_case", "keys", "fuzzy"]),
                        json!("exact"),
                        "Which rows are duplicates: equal on every column, equal ignoring case and spaces, equal \
                         emails ignoring case, equal key columns, or similar key columns.",
                    ),
                    param(
                        "key_columns",
                        ParameterKind::Columns,
                        json!([]),
                        "Key columns (keys and fuzzy modes; email_case defaults to the email columns).",
                    ),
                    param(
                        "keep",
                        ParameterKind::Choice(&["first", "last"]),
                        json!("first"),
                        "Which row of a group is kept, by position (fuzzy keeps the first).",
                    ),
                    param(
                        "merge",
                        ParameterKind::Boolean,
                        json!(false),
                        "Fill the kept row's nulls from the group's other rows (first non-null value).",
                    ),
                    param(
                        "similarity_threshold",
                        ParameterKind::Number { min: 0.5, max: 1.0 },
                        json!(0.92),
                        "Fuzzy mode: Jaro-Winkler similarity of the normalised keys at or above which rows are \
                         duplicates.",
                    ),
                    param(
                        "block_column",
                        ParameterKind::Text { max: 1000 },
                        Value::Null,
                        "Fuzzy mode: only rows with equal values of this column are compared (default: equal \
                         first characters of the key).",
                    ),
                ],
            ),
            agent(
                NULL_HANDLER,
                "Null Handler",
                "Turns null tokens into nulls, then drops or fills nulls per column (mean, median, mode, \
                 forward or back fill, constant), with an automatic strategy for the other columns.",
                vec![
                    param(
                        "null_tokens",
                        ParameterKind::Texts { max_items: 100, max_len: 100 },
                        json!(DEFAULT_NULL_TOKENS),
                        "Values read as null in text columns (compared trimmed, ignoring case).",
                    ),
                    param(
                        "strategies",
                        ParameterKind::ColumnChoices(STRATEGIES),
                        json!({}),
                        "Per column: { column: drop | mean | median | mode | forward_fill | back_fill | constant }.",
                    ),
                    param(
                        "constants",
                        ParameterKind::Structured { type_name: "column_values", check: check_constants },
                        json!({}),
                        "Values for the constant strategy: { column: value }.",
                    ),
                    param(
                        "auto",
                        ParameterKind::Boolean,
                        json!(true),
                        "Fill the other columns automatically: numbers with the median, booleans and \
                         categories with the mode; identifiers, dates and free text are left as they are.",
                    ),
                ],
            ),
            agent(
                OUTLIER_REMOVER,
                "Outlier Remover",
                "Detects outliers by z-score, IQR or percentiles and removes, caps (winsorises) or imputes them.",
                vec![
                    param(
                        "columns",
                        ParameterKind::Columns,
                        Value::Null,
                        "Numeric columns to treat; by default every numeric column that is not an identifier.",
                    ),
                    param(
                        "method",
                        ParameterKind::Choice(&["iqr", "zscore", "percentile"]),
                        json!("iqr"),
                        "Detection: outside [Q1 - k·IQR, Q3 + k·IQR], |z| above the threshold, or outside the \
                         percentiles.",
                    ),
                    param(
                        "iqr_multiplier",
                        ParameterKind::Number { min: 0.1, max: 10.0 },
                        json!(1.5),
                        "k of the IQR fences.",
                    ),
                    param(
                        "z_threshold",
                        ParameterKind::Number { min: 0.5, max: 20.0 },
                        json!(3.0),
                        "|z| above which a value is an outlier (sample standard deviation).",
                    ),
                    param(
                        "lower_percentile",
                        ParameterKind::Number { min: 0.0, max: 0.5 },
                        json!(0.01),
                        "Percentile method: the lower bound, as a fraction.",
                    ),
                    param(
                        "upper_percentile",
                        ParameterKind::Number { min: 0.5, max: 1.0 },
                        json!(0.99),
                        "Percentile method: the upper bound, as a fraction.",
                    ),
                    param(
                        "action",
                        ParameterKind::Choice(&["cap", "remove", "impute"]),
                        json!("cap"),
                        "What happens to an outlier: capped to the bounds, its row removed, or replaced by the \
                         median.",
                    ),
                ],
            ),
            agent(
                WRITEBACK,
                "Cleanse Writeback",
                "Checks the output (row accounting, no new nulls, types as promised, filled columns complete) \
                 and writes it as a new version of the dataset, with a manifest of every change per step and \
                 column.",
                vec![
                    param(
                        "output_name",
                        ParameterKind::Name,
                        Value::Null,
                        "Name of the new version (default: the dataset's name with \"(cleaned)\").",
                    ),
                    param(
                        "fail_on_check",
                        ParameterKind::Boolean,
                        json!(true),
                        "Publish nothing, and fail the job, when an integrity check fails.",
                    ),
                ],
            ),
        ],
    }
}

// ---- structured parameters ----

fn finite(value: Option<&Value>, what: &str) -> Result<Option<f64>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(format!("{what}: must be a finite number")),
        },
    }
}

fn column_name(value: Option<&Value>, at: &str) -> Result<String, String> {
    match value.and_then(Value::as_str) {
        Some(name) if !name.is_empty() && name.chars().count() <= 1000 => Ok(name.to_string()),
        _ => Err(format!("{at}: column must be a column name")),
    }
}

/// The most patterns a quarantine may check, as the data tests (each is compiled twice before
/// the run is accepted, and its regular expression runs over every value of its column).
pub const MAX_PATTERNS: usize = 200;

fn items(value: &Value, shape: &str, max: usize) -> Result<Vec<Map<String, Value>>, String> {
    let Some(list) = value.as_array() else { return Err(format!("must be a list of {shape}")) };
    if list.len() > max {
        return Err(format!("must have at most {max} items, not {}", list.len()));
    }
    list.iter()
        .enumerate()
        .map(|(i, item)| item.as_object().cloned().ok_or_else(|| format!("[{i}] must be an object {shape}")))
        .collect()
}

fn check_ranges(value: &Value) -> Result<Value, String> {
    let mut out = Vec::new();
    for (i, item) in items(value, "{ column, min, max }", 10_000)?.iter().enumerate() {
        let at = format!("[{i}]");
        if let Some(key) = item.keys().find(|k| !["column", "min", "max"].contains(&k.as_str())) {
            return Err(format!("{at}: unknown field {key:?} (column, min, max)"));
        }
        let column = column_name(item.get("column"), &at)?;
        let min = finite(item.get("min"), &format!("{at}.min"))?;
        let max = finite(item.get("max"), &format!("{at}.max"))?;
        match (min, max) {
            (None, None) => return Err(format!("{at}: a range needs min, max or both")),
            (Some(a), Some(b)) if a > b => return Err(format!("{at}: min ({a}) is above max ({b})")),
            _ => {}
        }
        out.push(json!({ "column": column, "min": min, "max": max }));
    }
    Ok(Value::Array(out))
}

fn check_patterns(value: &Value) -> Result<Value, String> {
    let mut out = Vec::new();
    for (i, item) in items(value, "{ column, pattern }", MAX_PATTERNS)?.iter().enumerate() {
        let at = format!("[{i}]");
        if let Some(key) = item.keys().find(|k| !["column", "pattern"].contains(&k.as_str())) {
            return Err(format!("{at}: unknown field {key:?} (column, pattern)"));
        }
        let column = column_name(item.get("column"), &at)?;
        let Some(pattern) = item.get("pattern").and_then(Value::as_str) else {
            return Err(format!("{at}: pattern must be a regular expression"));
        };
        if pattern.len() > 1000 {
            return Err(format!("{at}: the pattern is longer than 1000 characters"));
        }
        super::registry::check_pattern(pattern).map_err(|e| format!("{at}: invalid pattern: {e}"))?;
        out.push(json!({ "column": column, "pattern": pattern }));
    }
    Ok(Value::Array(out))
}

fn column_objects(value: &Value, shape: &str) -> Result<Map<String, Value>, String> {
    match value.as_object() {
        Some(map) if map.len() <= 10_000 => {
            if let Some(name) = map.keys().find(|k| k.is_empty() || k.chars().count() > 1000) {
                return Err(format!("{name:?} is not a column name"));
            }
            Ok(map.clone())
        }
        _ => Err(format!("must be an object {shape}")),
    }
}

/// Whether a strftime format writes every date differently: a year, and a month and a day,
/// the day of the year, or an ISO week and weekday. DuckDB's unpadded forms (`%-m`, `%-d`)
/// count as theirs; `%%` is a percent sign.
fn writes_whole_dates(format: &str) -> bool {
    let mut specifiers = Vec::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        match chars.next() {
            Some('-') => specifiers.extend(chars.next()),
            Some('%') | None => {}
            Some(s) => specifiers.push(s),
        }
    }
    let has = |wanted: &str| specifiers.iter().any(|s| wanted.contains(*s));
    let whole = has("Yy") && (has("j") || (has("mbBh") && has("de")));
    let iso_week = has("G") && has("V") && has("uwaA");
    whole || iso_week || has("FDxc")
}

fn check_value_maps(value: &Value) -> Result<Value, String> {
    let maps = column_objects(value, "{ column: { value: replacement } }")?;
    let mut entries = 0;
    for (column, map) in &maps {
        let Some(map) = map.as_object() else {
            return Err(format!("{column}: must be an object {{ value: replacement }}"));
        };
        entries += map.len();
        if let Some((from, _)) = map.iter().find(|(_, to)| !to.is_string()) {
            return Err(format!("{column}: the replacement of {from:?} must be a text"));
        }
    }
    if entries > 100_000 {
        return Err("at most 100000 replacements in all".into());
    }
    Ok(Value::Object(maps))
}

fn check_constants(value: &Value) -> Result<Value, String> {
    let map = column_objects(value, "{ column: value }")?;
    let mut out = Map::new();
    for (column, v) in map {
        let text = match &v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(format!("{column}: the value must be a text, a number or a boolean")),
        };
        out.insert(column, json!(text));
    }
    Ok(Value::Object(out))
}

/// A unit: its dimension, its size in the dimension's base unit as an exact ratio (`num/den`:
/// 1 ft = 3048/10000 m), and its value at the dimension's reference point (0 °C for
/// temperatures: 32 for °F, 273.15 for K; 0 elsewhere).
fn unit(name: &str) -> Option<(&'static str, u128, u128, f64)> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "mm" => ("length", 1, 1000, 0.0),
        "cm" => ("length", 1, 100, 0.0),
        "m" => ("length", 1, 1, 0.0),
        "km" => ("length", 1000, 1, 0.0),
        "in" => ("length", 254, 10_000, 0.0),
        "ft" => ("length", 3048, 10_000, 0.0),
        "yd" => ("length", 9144, 10_000, 0.0),
        "mi" => ("length", 1_609_344, 1000, 0.0),
        "mg" => ("mass", 1, 1_000_000, 0.0),
        "g" => ("mass", 1, 1000, 0.0),
        "kg" => ("mass", 1, 1, 0.0),
        "t" => ("mass", 1000, 1, 0.0),
        "oz" => ("mass", 28_349_523_125, 1_000_000_000_000, 0.0),
        "lb" => ("mass", 45_359_237, 100_000_000, 0.0),
        "k" => ("temperature", 1, 1, 273.15),
        "c" => ("temperature", 1, 1, 0.0),
        "f" => ("temperature", 5, 9, 32.0),
        _ => return None,
    })
}

/// The conversion of `from` into `to`, when both are units of one dimension: `to = (value −
/// subtract) · multiply / divide + add`, the ratio reduced to whole numbers, so that 1 ft is 12
/// in and 32 °F is 0 °C exactly (`value · 0.3048 / 0.0254` gave 12.000000000000002, and a
/// precomputed offset 7.1e-15 °C).
pub fn unit_conversion(from: &str, to: &str) -> Option<Conversion> {
    let (a, num_from, den_from, ref_from) = unit(from)?;
    let (b, num_to, den_to, ref_to) = unit(to)?;
    if a != b {
        return None;
    }
    fn gcd(a: u128, b: u128) -> u128 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let (multiply, divide) = (num_from * den_to, den_from * num_to);
    let g = gcd(multiply, divide).max(1);
    Some(Conversion {
        subtract: ref_from,
        multiply: (multiply / g) as f64,
        divide: (divide / g) as f64,
        add: ref_to,
    })
}

fn check_units(value: &Value) -> Result<Value, String> {
    let map = column_objects(value, "{ column: { from, to } }")?;
    for (column, spec) in &map {
        let from = spec.get("from").and_then(Value::as_str);
        let to = spec.get("to").and_then(Value::as_str);
        let extra = spec.as_object().is_some_and(|o| o.keys().any(|k| k != "from" && k != "to"));
        match (from, to) {
            (Some(from), Some(to)) if !extra => {
                if unit_conversion(from, to).is_none() {
                    return Err(format!("{column}: cannot convert {from:?} to {to:?}"));
                }
            }
            _ => return Err(format!("{column}: must be {{ from, to }}")),
        }
    }
    Ok(Value::Object(map))
}

// ---- the plan ----

/// A plan with, for each of its steps, the agent it belongs to and what it does in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    pub plan: CleansePlan,
    pub steps: Vec<(&'static str, String)>,
    /// The output's columns with the types the plan promises.
    pub output_columns: Vec<ColumnInfo>,
}

/// A value of the plan that only DuckDB can judge, checked before a job is queued.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineCheck {
    /// A date format of the standardization (`path` names its parameter).
    DateFormat { path: String, format: String },
    /// A null fill's constant and the type of its column at the fill.
    Constant { path: String, column: String, value: String, ty: String },
}

impl Built {
    /// What DuckDB must accept for the plan to run: every date format once, every constant
    /// with the type its column has when it is filled (the output's: only outlier steps,
    /// which keep types, come after the fills).
    pub fn engine_checks(&self) -> Vec<EngineCheck> {
        let mut checks = Vec::new();
        for step in &self.plan.steps {
            match step {
                Step::Standardize(Standardize { date_formats: Some((formats, output)), .. }) => {
                    let paths = formats.iter().map(|f| ("date_formats", f)).chain([("date_output", output)]);
                    for (name, format) in paths {
                        let check = EngineCheck::DateFormat {
                            path: format!("{STANDARDIZER}.{name}"),
                            format: format.clone(),
                        };
                        if !checks.contains(&check) {
                            checks.push(check);
                        }
                    }
                }
                Step::Nulls { columns, .. } => {
                    for (column, strategy) in columns {
                        let NullStrategy::Constant(value) = strategy else { continue };
                        let ty = self.output_columns.iter().find(|c| &c.name == column);
                        checks.push(EngineCheck::Constant {
                            path: format!("{NULL_HANDLER}.constants"),
                            column: column.clone(),
                            value: value.clone(),
                            ty: ty.map(|c| c.data_type.clone()).unwrap_or_default(),
                        });
                    }
                }
                _ => {}
            }
        }
        checks
    }
}

struct Params<'a>(&'a Value, &'static str);

impl Params<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(self.1).and_then(|p| p.get(name)).filter(|v| !v.is_null())
    }
    fn bool(&self, name: &str) -> bool {
        self.get(name).and_then(Value::as_bool).unwrap_or(false)
    }
    fn f64(&self, name: &str) -> f64 {
        self.get(name).and_then(Value::as_f64).unwrap_or(0.0)
    }
    fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }
    fn strings(&self, name: &str) -> Option<Vec<String>> {
        self.get(name)
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect())
    }
    fn map(&self, name: &str) -> Map<String, Value> {
        self.get(name).and_then(Value::as_object).cloned().unwrap_or_default()
    }
    fn path(&self, name: &str) -> String {
        format!("{}.{name}", self.1)
    }
}

/// The dataset's column `name`, or `BAD_USER_INPUT` at `path` listing the real columns.
fn known<'a>(columns: &'a [ColumnInfo], path: &str, name: &str) -> Result<&'a ColumnInfo, AppError> {
    columns.iter().find(|c| c.name == name).ok_or_else(|| {
        AppError::bad_input(path, format!("{path}: the dataset has no column {name:?}"))
            .with("allowed", Value::Array(columns.iter().map(|c| json!(c.name)).collect()))
    })
}

/// Identifier-like headers: `id`, `customer_id`, `customerId`, `key`, `uuid`…
fn is_identifier(name: &str) -> bool {
    let lower = name.trim().to_lowercase();
    let camel_id =
        name.ends_with("Id") && name.len() > 2 && name[..name.len() - 2].ends_with(char::is_lowercase);
    // Product codes too: a SKU or barcode is a label, not a quantity to fill or cap.
    ["id", "key", "uuid", "guid", "pk", "sku", "ean", "upc", "gtin", "isbn"].contains(&lower.as_str())
        || [
            "_id", " id", "-id", "_key", "_uuid", "_code", " code", "_no", "_number", "_sku", " sku", "_ean",
            "_upc", "_gtin", "_isbn",
        ]
        .iter()
        .any(|s| lower.ends_with(s))
        || camel_id
}

fn is_text(ty: &str) -> bool {
    ty == "VARCHAR" || ty.starts_with("VARCHAR(")
}

fn is_numeric(ty: &str) -> bool {
    super::registry::is_numeric_type(ty)
}

fn target_type(name: &str) -> TargetType {
    match name {
        "integer" => TargetType::Integer,
        "float" => TargetType::Float,
        "boolean" => TargetType::Boolean,
        "date" => TargetType::Date,
        _ => TargetType::Timestamp,
    }
}

fn sql_type(target: TargetType) -> &'static str {
    match target {
        TargetType::Integer => "BIGINT",
        TargetType::Float => "DOUBLE",
        TargetType::Boolean => "BOOLEAN",
        TargetType::Date => "DATE",
        TargetType::Timestamp => "TIMESTAMP",
    }
}

fn type_word(target: TargetType) -> &'static str {
    match target {
        TargetType::Integer => "integer",
        TargetType::Float => "float",
        TargetType::Boolean => "boolean",
        TargetType::Date => "date",
        TargetType::Timestamp => "timestamp",
    }
}

/// The type the sampled values support, if any share reaches `threshold`.
fn detect(evidence: &ColumnEvidence, threshold: f64) -> Option<TargetType> {
    if evidence.values == 0 || !is_text(&evidence.data_type) {
        return None;
    }
    let share = |n: u64| n as f64 / evidence.values as f64 >= threshold;
    // Codes (`07412`, a 20-digit reference) are not numbers, however many values read as one.
    let numeric = evidence.codes == 0;
    if share(evidence.booleans) {
        Some(TargetType::Boolean)
    } else if numeric && share(evidence.integers) && evidence.integers >= evidence.numbers {
        // Integers only when no number has a fraction: a few prices of 9.99 among whole ones
        // make a float column, not failures of an integer one.
        Some(TargetType::Integer)
    } else if numeric && share(evidence.numbers) {
        Some(TargetType::Float)
    } else if share(evidence.timestamps) && evidence.times > 0 {
        Some(TargetType::Timestamp)
    } else if share(evidence.dates) {
        Some(TargetType::Date)
    } else {
        None
    }
}

/// Refuses a dataset one of whose columns takes a name the compiled steps keep for their own
/// columns (`BAD_USER_INPUT` on `datasetId`, naming it): checked before anything reads it.
pub fn check_columns(columns: &[ColumnInfo]) -> Result<(), AppError> {
    match columns.iter().find(|c| is_reserved_column(&c.name)) {
        Some(column) => Err(AppError::bad_input(
            "datasetId",
            format!(
                "the dataset has a column named {:?}: file_row_number and names starting with \
                 {RESERVED_PREFIX} are reserved for the cleanse's own columns; rename the column and \
                 upload the file again",
                column.name
            ),
        )),
        None => Ok(()),
    }
}

/// Makes the plan of a run: `parameters` are the checked run's (`{ agentId: { … } }`, every
/// default filled in), `agents` the selected ones, `evidence` a sample of every column (see
/// [`crate::engine::cleanse::sample_evidence`]). Every named column is checked against
/// `columns`, and the plan is compiled once to check that every step applies to its
/// column's type. Errors are `BAD_USER_INPUT` naming the parameter.
pub fn build(
    parameters: &Value,
    agents: &[String],
    columns: &[ColumnInfo],
    evidence: &[ColumnEvidence],
) -> Result<Built, AppError> {
    check_columns(columns)?;
    let selected = |id: &str| agents.iter().any(|a| a == id);
    let mut steps: Vec<Step> = Vec::new();
    let mut described: Vec<(&'static str, String)> = Vec::new();
    // Types as the plan goes.
    let mut types: Vec<(String, String)> =
        columns.iter().map(|c| (c.name.clone(), c.data_type.to_uppercase())).collect();
    let type_of = |types: &[(String, String)], name: &str| {
        types.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone()).unwrap_or_default()
    };
    let evidence_of = |name: &str| evidence.iter().find(|e| e.name == name);
    // More of the column's sampled slash dates read only month first than only day first.
    let writes_month_first = |name: &str| evidence_of(name).is_some_and(|e| e.month_first > e.day_first);

    let std = Params(parameters, STANDARDIZER);
    let named_by_header = |kind: &str| -> Vec<String> {
        columns
            .iter()
            .filter(|c| is_text(&c.data_type.to_uppercase()) && header_kind(&c.name) == Some(kind))
            .map(|c| c.name.clone())
            .collect()
    };
    let list = |p: &Params, name: &str| -> Result<Option<Vec<String>>, AppError> {
        let Some(names) = p.strings(name) else { return Ok(None) };
        for n in &names {
            known(columns, &p.path(name), n)?;
        }
        Ok(Some(names))
    };
    let email_columns = match list(&std, "email_columns")? {
        Some(names) => names,
        None => named_by_header("email"),
    };
    let phone_columns = match list(&std, "phone_columns")? {
        Some(names) => names,
        None => named_by_header("phone"),
    };

    // 1. Null tokens, before anything reads the values.
    let nulls = Params(parameters, NULL_HANDLER);
    if selected(NULL_HANDLER) {
        let tokens = nulls.strings("null_tokens").unwrap_or_default();
        if !tokens.is_empty() {
            described.push((NULL_HANDLER, format!("null tokens ({}) → null", quoted_list(&tokens))));
            steps.push(Step::Nulls { tokens, columns: Vec::new() });
        }
    }

    // 2. Quarantine.
    if selected(QUARANTINE) {
        let q = Params(parameters, QUARANTINE);
        let required = list(&q, "required_columns")?.unwrap_or_default();
        let mut ranges = Vec::new();
        for (i, range) in q.get("ranges").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let column = range["column"].as_str().unwrap_or_default().to_string();
            let path = format!("{}[{i}].column", q.path("ranges"));
            let info = known(columns, &path, &column)?;
            let ty = info.data_type.to_uppercase();
            let convertible = evidence_of(&column).is_some_and(|e| e.numbers > 0);
            if !(is_numeric(&ty) || (is_text(&ty) && convertible)) {
                return Err(AppError::bad_input(
                    &path,
                    format!("{path}: a range needs a numeric column; {column} is {ty}"),
                ));
            }
            ranges.push((column, range["min"].as_f64(), range["max"].as_f64()));
        }
        let mut patterns = Vec::new();
        for (i, p) in q.get("patterns").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let column = p["column"].as_str().unwrap_or_default().to_string();
            known(columns, &format!("{}[{i}].column", q.path("patterns")), &column)?;
            patterns.push((column, p["pattern"].as_str().unwrap_or_default().to_string()));
        }
        if !(required.is_empty() && ranges.is_empty() && patterns.is_empty()) {
            let mut what = Vec::new();
            if !required.is_empty() {
                what.push(format!("required {}", quoted_list(&required)));
            }
            for (column, low, high) in &ranges {
                let bound = |b: &Option<f64>| b.map_or_else(|| "…".to_string(), |x| x.to_string());
                what.push(format!("{column} in [{}, {}]", bound(low), bound(high)));
            }
            for (column, pattern) in &patterns {
                what.push(format!("{column} matches {pattern}"));
            }
            described.push((QUARANTINE, format!("quarantine rows unless: {}", what.join("; "))));
            steps.push(Step::Quarantine { required, ranges, patterns });
        }
    }

    // Columns standardization rewrites as text keep their text type.
    let date_columns =
        if selected(STANDARDIZER) { list(&std, "date_columns")?.unwrap_or_default() } else { Vec::new() };
    let units = if selected(STANDARDIZER) { std.map("units") } else { Map::new() };
    let mut text_rewritten: Vec<String> = Vec::new();
    if selected(STANDARDIZER) {
        text_rewritten.extend(email_columns.iter().cloned());
        text_rewritten.extend(phone_columns.iter().cloned());
        text_rewritten.extend(date_columns.iter().cloned());
        text_rewritten.extend(std.map("case").keys().cloned());
        text_rewritten.extend(std.map("value_maps").keys().cloned());
    }

    // 3. Type fixes.
    if selected(TYPE_FIXER) {
        let t = Params(parameters, TYPE_FIXER);
        let mut conversions: Vec<(String, TargetType)> = Vec::new();
        for (column, target) in t.map("columns") {
            known(columns, &t.path("columns"), &column)?;
            conversions.push((column, target_type(target.as_str().unwrap_or_default())));
        }
        if t.bool("auto_detect") {
            let threshold = t.f64("threshold");
            for column in columns {
                let name = &column.name;
                // A column named for a unit conversion is converted here too when its values
                // are numbers written as text: the conversion needs a number.
                let skip = conversions.iter().any(|(c, _)| c == name)
                    || text_rewritten.contains(name)
                    || is_identifier(name)
                    || header_kind(name).is_some();
                if skip {
                    continue;
                }
                if let Some(target) = evidence_of(name).and_then(|e| detect(e, threshold)) {
                    conversions.push((name.clone(), target));
                }
            }
        }
        if !conversions.is_empty() {
            let on_failure =
                if t.str("on_failure") == Some("null") { OnFailure::Null } else { OnFailure::Quarantine };
            // A required column's failed conversion would leave the null the quarantine rule
            // forbids, and the run would fail its integrity checks after all its work.
            let required = match selected(QUARANTINE) {
                true => list(&Params(parameters, QUARANTINE), "required_columns")?.unwrap_or_default(),
                false => Vec::new(),
            };
            if on_failure == OnFailure::Null
                && let Some((column, _)) = conversions.iter().find(|(c, _)| required.contains(c))
            {
                let path = t.path("on_failure");
                return Err(AppError::bad_input(
                    &path,
                    format!(
                        "{path}: {column:?} is required (quarantine-agent.required_columns), so a value of it \
                         that does not convert cannot be nulled: use on_failure \"quarantine\", or do not \
                         require the column"
                    ),
                ));
            }
            for (column, target) in &conversions {
                if let Some(entry) = types.iter_mut().find(|(n, _)| n == column) {
                    entry.1 = sql_type(*target).to_string();
                }
            }
            let what = conversions
                .iter()
                .map(|(c, t)| format!("{c} → {}", type_word(*t)))
                .collect::<Vec<_>>()
                .join(", ");
            let failing = match on_failure {
                OnFailure::Null => "nulled",
                OnFailure::Quarantine => "quarantined",
            };
            described.push((TYPE_FIXER, format!("convert {what}; values that do not convert are {failing}")));
            // Slash dates read the way the column's sample writes them.
            let month_first = conversions
                .iter()
                .filter(|(c, t)| {
                    matches!(t, TargetType::Date | TargetType::Timestamp) && writes_month_first(c)
                })
                .map(|(c, _)| c.clone())
                .collect();
            steps.push(Step::FixTypes { columns: conversions, on_failure, month_first });
        }
    }

    // 4. Standardization.
    if selected(STANDARDIZER) {
        let trim = std.bool("trim");
        let collapse = std.bool("collapse_spaces");
        let cases = std.map("case");
        let maps = std.map("value_maps");
        for name in cases.keys().chain(maps.keys()) {
            known(columns, &std.path(if cases.contains_key(name) { "case" } else { "value_maps" }), name)?;
        }
        for name in units.keys() {
            let info = known(columns, &std.path("units"), name)?;
            let ty = type_of(&types, &info.name);
            if !is_numeric(&ty) {
                let path = std.path("units");
                return Err(AppError::bad_input(
                    &path,
                    format!("{path}: unit conversion needs a numeric column; {name} is {ty}"),
                ));
            }
        }
        // ISO dates first, whatever the list: what the parameter promises ("tried in order
        // after ISO dates"); a list of its own left them unconverted and counted as failed.
        let formats: Vec<String> = std::iter::once(ISO_DATE.to_string())
            .chain(std.strings("date_formats").unwrap_or_default().into_iter().filter(|f| f != ISO_DATE))
            .collect();
        let output = std.str("date_output").unwrap_or("%Y-%m-%d").to_string();
        // An output that does not write the day, the month and the year writes different
        // dates alike: they would be lost, not standardised.
        if !date_columns.is_empty() && !writes_whole_dates(&output) {
            let path = std.path("date_output");
            return Err(AppError::bad_input(
                &path,
                format!(
                    "{path}: {output:?} does not write a whole date (a year: %Y or %y; a month: %m, %b or %B; a \
                     day: %d or %e; or %j, the day of the year, with a year); dates written with it would be lost"
                ),
            ));
        }
        let region = std.str("phone_region").unwrap_or("US").to_string();
        if !phone_columns.is_empty() && parse_region(&region).is_none() {
            let path = std.path("phone_region");
            return Err(AppError::bad_input(
                &path,
                format!(
                    "{path}: {region:?} is not a phone region libphonenumber knows (an ISO 3166 alpha-2 code such as \"US\")"
                ),
            ));
        }
        for name in &date_columns {
            let ty = type_of(&types, name);
            if !(is_text(&ty) || ty == "DATE" || (ty.starts_with("TIMESTAMP") && !ty.ends_with(']'))) {
                let path = std.path("date_columns");
                return Err(AppError::bad_input(
                    &path,
                    format!(
                        "{path}: dates are standardised in text, date or timestamp columns; {name} is {ty}"
                    ),
                ));
            }
        }
        // Emails, phones, case and value maps rewrite text: a column of another type named
        // for them was passed over without a word.
        let rewritten: [(&str, Vec<String>); 4] = [
            ("email_columns", std.strings("email_columns").unwrap_or_default()),
            ("phone_columns", std.strings("phone_columns").unwrap_or_default()),
            ("case", cases.keys().cloned().collect()),
            ("value_maps", maps.keys().cloned().collect()),
        ];
        // A phone number is not also an email or a date.
        if let Some(name) =
            phone_columns.iter().find(|n| email_columns.contains(*n) || date_columns.contains(*n))
        {
            let path = std.path("phone_columns");
            return Err(AppError::bad_input(
                &path,
                format!("{path}: {name} cannot hold phone numbers and also emails or dates"),
            ));
        }
        for (parameter, names) in rewritten {
            if let Some((name, ty)) =
                names.iter().map(|n| (n, type_of(&types, n))).find(|(_, ty)| !is_text(ty))
            {
                let path = std.path(parameter);
                return Err(AppError::bad_input(
                    &path,
                    format!("{path}: {name} is {ty}; only text columns are standardised this way"),
                ));
            }
        }
        for column in columns {
            let name = &column.name;
            let ty = type_of(&types, name);
            let is_date_column = date_columns.contains(name);
            if !is_text(&ty) && !is_date_column {
                continue;
            }
            let case = cases.get(name).and_then(Value::as_str).map(|c| match c {
                "upper" => Case::Upper,
                "lower" => Case::Lower,
                _ => Case::Title,
            });
            // A key is matched as the values are: trimmed (when they are), then through the
            // column's case conversion; two keys that become one would be decided by the
            // order of the request's JSON keys.
            let mut value_map: Vec<(String, String)> = Vec::new();
            for (key, to) in maps.get(name).and_then(Value::as_object).into_iter().flatten() {
                let key = if trim && is_text(&ty) { key.trim().to_string() } else { key.clone() };
                // (Upper, then lower: `straße` and `STRASSE` are one once upper-cased.)
                let folded =
                    |k: &str| if case.is_some() { k.to_uppercase().to_lowercase() } else { k.to_string() };
                if let Some((other, _)) = value_map.iter().find(|(k, _)| folded(k) == folded(&key)) {
                    let path = std.path("value_maps");
                    return Err(AppError::bad_input(
                        &path,
                        format!(
                            "{path}: {name}'s keys {other:?} and {key:?} are one value once trimmed and put in the \
                             column's case: keep one"
                        ),
                    ));
                }
                value_map.push((key, to.as_str().unwrap_or_default().to_string()));
            }
            let spec = Standardize {
                column: name.clone(),
                trim: trim && is_text(&ty),
                collapse_spaces: collapse && is_text(&ty),
                case,
                value_map,
                date_formats: is_date_column.then(|| {
                    let formats =
                        if writes_month_first(name) { month_first(&formats) } else { formats.clone() };
                    (formats, output.clone())
                }),
                email: email_columns.contains(name),
                phone_region: phone_columns.contains(name).then(|| region.clone()),
            };
            let mut what = Vec::new();
            if spec.email {
                what.push("email: trimmed, lower case".to_string());
            }
            if let Some(region) = &spec.phone_region {
                what.push(format!("phone → E.164 (region {region})"));
            }
            if let Some((_, out)) = &spec.date_formats {
                what.push(format!("dates → {out}"));
            }
            if spec.trim {
                what.push("trim".into());
            }
            if spec.collapse_spaces {
                what.push("collapse spaces".into());
            }
            if let Some(case) = spec.case {
                what.push(format!("{case:?} case").to_lowercase());
            }
            if !spec.value_map.is_empty() {
                what.push(format!("{} synonyms", spec.value_map.len()));
            }
            if what.is_empty() {
                continue;
            }
            if let Some(entry) = types.iter_mut().find(|(n, _)| n == name) {
                entry.1 = "VARCHAR".into();
            }
            described.push((STANDARDIZER, format!("{name}: {}", what.join(", "))));
            steps.push(Step::Standardize(spec));
        }
        for (name, spec) in &units {
            let (from, to) =
                (spec["from"].as_str().unwrap_or_default(), spec["to"].as_str().unwrap_or_default());
            let Some(conversion) = unit_conversion(from, to) else { continue };
            described.push((STANDARDIZER, format!("{name}: {from} → {to}")));
            if let Some(entry) = types.iter_mut().find(|(n, _)| n == name) {
                entry.1 = "DOUBLE".into();
            }
            steps.push(Step::ConvertUnits { column: name.clone(), conversion });
        }
    }

    // 5. Duplicates.
    if selected(DEDUPLICATOR) {
        let d = Params(parameters, DEDUPLICATOR);
        let keys = list(&d, "key_columns")?.unwrap_or_default();
        let keep = if d.str("keep") == Some("last") { Keep::Last } else { Keep::First };
        let merge = d.bool("merge");
        let need_keys = |mode: &str| {
            AppError::bad_input(&d.path("key_columns"), format!("{mode} mode needs key_columns"))
                .with("allowed", Value::Array(columns.iter().map(|c| json!(c.name)).collect()))
        };
        let (mode, what) = match d.str("mode").unwrap_or("exact") {
            "case_insensitive" => {
                (DedupMode::CaseInsensitive, "rows equal ignoring case and spaces".to_string())
            }
            "email_case" => {
                let keys = if keys.is_empty() { email_columns.clone() } else { keys };
                if keys.is_empty() {
                    return Err(AppError::bad_input(
                        &d.path("key_columns"),
                        "email_case mode needs the email columns: no header names an email, so give key_columns",
                    ));
                }
                let what = format!("equal {} ignoring case and spaces", quoted_list(&keys));
                (DedupMode::KeysIgnoreCase(keys), what)
            }
            "keys" => {
                if keys.is_empty() {
                    return Err(need_keys("keys"));
                }
                let what = format!("equal {}", quoted_list(&keys));
                (DedupMode::Keys(keys), what)
            }
            "fuzzy" => {
                if keys.is_empty() {
                    return Err(need_keys("fuzzy"));
                }
                if keep == Keep::Last {
                    return Err(AppError::bad_input(&d.path("keep"), "fuzzy duplicates keep the first row"));
                }
                let block = match d.str("block_column") {
                    Some(b) => Some(known(columns, &d.path("block_column"), b)?.name.clone()),
                    None => None,
                };
                let threshold = d.f64("similarity_threshold");
                let what = format!(
                    "{} similar (Jaro-Winkler ≥ {threshold}){}",
                    quoted_list(&keys),
                    block.as_ref().map(|b| format!(" within equal {b}")).unwrap_or_default()
                );
                (DedupMode::Fuzzy { columns: keys, threshold, block }, what)
            }
            _ => (DedupMode::Exact, "rows equal on every column".to_string()),
        };
        let fate = if merge { "merged into" } else { "removed, keeping" };
        let which = if keep == Keep::Last { "the last" } else { "the first" };
        described.push((DEDUPLICATOR, format!("duplicates ({what}) {fate} {which}")));
        steps.push(Step::Deduplicate { mode, keep, merge });
    }

    // 6. Null filling.
    if selected(NULL_HANDLER) {
        let given = nulls.map("strategies");
        let constants = nulls.map("constants");
        let mut chosen: Vec<(String, NullStrategy)> = Vec::new();
        for (column, strategy) in &given {
            known(columns, &nulls.path("strategies"), column)?;
            let strategy = match strategy.as_str().unwrap_or_default() {
                "drop" => NullStrategy::Drop,
                "mean" if !is_numeric(&type_of(&types, column)) => {
                    let path = nulls.path("strategies");
                    let ty = type_of(&types, column);
                    return Err(AppError::bad_input(
                        &path,
                        format!(
                            "{path}: the mean needs a numeric column; {column} is {ty} (median or mode fit any column)"
                        ),
                    ));
                }
                "mean" => NullStrategy::Mean,
                "median" => NullStrategy::Median,
                "mode" => NullStrategy::Mode,
                "forward_fill" => NullStrategy::ForwardFill,
                "back_fill" => NullStrategy::BackFill,
                _ => match constants.get(column).and_then(Value::as_str) {
                    Some(value) => NullStrategy::Constant(value.to_string()),
                    None => {
                        let path = nulls.path("constants");
                        return Err(AppError::bad_input(
                            &path,
                            format!("{path}: the constant strategy for {column} needs its value here"),
                        ));
                    }
                },
            };
            chosen.push((column.clone(), strategy));
        }
        for column in constants.keys() {
            known(columns, &nulls.path("constants"), column)?;
            // (A constant for a column filled otherwise, or not at all, was dropped unsaid.)
            if given.get(column).and_then(Value::as_str) != Some("constant") {
                let path = nulls.path("constants");
                return Err(AppError::bad_input(
                    &path,
                    format!(
                        "{path}: a constant for {column} is used with the constant strategy only: set \
                         strategies.{column} to \"constant\", or leave the constant out"
                    ),
                ));
            }
        }
        if nulls.bool("auto") {
            for column in columns {
                let name = &column.name;
                if given.contains_key(name) || is_identifier(name) || header_kind(name).is_some() {
                    continue;
                }
                let ty = type_of(&types, name);
                let strategy = if is_numeric(&ty) {
                    Some(NullStrategy::Median)
                } else if ty == "BOOLEAN" {
                    Some(NullStrategy::Mode)
                } else if is_text(&ty) && !text_rewritten.contains(name) {
                    // Not a text column of dates that stayed text (too few converted): a date
                    // is nobody's mode.
                    evidence_of(name)
                        .filter(|e| {
                            e.values > 0
                                && (e.distinct <= CATEGORICAL_DISTINCT || e.distinct * 20 <= e.values)
                                && e.distinct < e.values
                                && e.dates * 2 <= e.values
                        })
                        .map(|_| NullStrategy::Mode)
                } else {
                    None
                };
                if let Some(strategy) = strategy {
                    chosen.push((name.clone(), strategy));
                }
            }
        }
        if !chosen.is_empty() {
            let what = chosen
                .iter()
                .map(|(c, s)| match s {
                    NullStrategy::Drop => format!("{c}: drop the row"),
                    NullStrategy::Mean => format!("{c}: mean"),
                    NullStrategy::Median => format!("{c}: median"),
                    NullStrategy::Mode => format!("{c}: mode"),
                    NullStrategy::ForwardFill => format!("{c}: forward fill"),
                    NullStrategy::BackFill => format!("{c}: back fill"),
                    NullStrategy::Constant(v) => format!("{c}: {v:?}"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            described.push((NULL_HANDLER, format!("nulls: {what}")));
            steps.push(Step::Nulls { tokens: Vec::new(), columns: chosen });
        }
    }

    // 7. Outliers.
    if selected(OUTLIER_REMOVER) {
        let o = Params(parameters, OUTLIER_REMOVER);
        let targets = match list(&o, "columns")? {
            Some(names) => {
                for name in &names {
                    let ty = type_of(&types, name);
                    if !is_numeric(&ty) {
                        let path = o.path("columns");
                        return Err(AppError::bad_input(
                            &path,
                            format!("{path}: outliers need a numeric column; {name} is {ty}"),
                        ));
                    }
                }
                names
            }
            None => types
                .iter()
                .filter(|(name, ty)| is_numeric(ty) && !is_identifier(name))
                .map(|(name, _)| name.clone())
                .collect(),
        };
        let (method, how) = match o.str("method").unwrap_or("iqr") {
            "zscore" => {
                let k = o.f64("z_threshold");
                (OutlierMethod::ZScore(k), format!("|z| > {k}"))
            }
            "percentile" => {
                let (low, high) = (o.f64("lower_percentile"), o.f64("upper_percentile"));
                (OutlierMethod::Percentile(low, high), format!("outside percentiles {low}–{high}"))
            }
            _ => {
                let k = o.f64("iqr_multiplier");
                (OutlierMethod::Iqr(k), format!("IQR fences (k = {k})"))
            }
        };
        let (action, doing) = match o.str("action").unwrap_or("cap") {
            "remove" => (OutlierAction::Remove, "remove the row"),
            "impute" => (OutlierAction::Impute, "replace with the median"),
            _ => (OutlierAction::Cap, "cap to the bounds"),
        };
        for column in targets {
            described.push((OUTLIER_REMOVER, format!("{column}: outliers by {how}: {doing}")));
            steps.push(Step::Outliers { column, method, action });
        }
    }

    let plan = CleansePlan { steps };
    let output_columns = crate::engine::cleanse::output_columns(columns, &plan).map_err(|e| {
        // Named by the agent whose step does not fit (`step 2 (fix_types): …`).
        let text = format!("{e:#}");
        let field = [
            ("(quarantine)", "quarantine-agent"),
            ("(fix_types)", "type-fixer.columns"),
            ("(standardize)", STANDARDIZER),
            ("(convert_units)", "field-standardization.units"),
            ("(deduplicate)", DEDUPLICATOR),
            ("(null_tokens)", "null-handler.null_tokens"),
            ("(nulls)", NULL_HANDLER),
            ("(outliers)", OUTLIER_REMOVER),
        ]
        .into_iter()
        .find(|(step, _)| text.contains(step))
        .map_or("parameters", |(_, field)| field);
        AppError::bad_input(field, format!("the cleanse plan does not fit the dataset: {text}"))
    })?;
    Ok(Built { plan, steps: described, output_columns })
}

/// The null tokens of a run (none when the null handler does not run).
pub fn null_tokens(parameters: &Value) -> Vec<String> {
    Params(parameters, NULL_HANDLER).strings("null_tokens").unwrap_or_default()
}

fn quoted_list(names: &[String]) -> String {
    names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
}

/// The agent a step's changes belong to.
fn agent_of_step(step: &str) -> &'static str {
    match step {
        "quarantine" => QUARANTINE,
        "fix_types" => TYPE_FIXER,
        "standardize" | "convert_units" => STANDARDIZER,
        "deduplicate" => DEDUPLICATOR,
        "null_tokens" | "nulls" => NULL_HANDLER,
        _ => OUTLIER_REMOVER,
    }
}

// ---- checks and the manifest ----

/// The integrity checks of a written output, from the input's and output's null counts and
/// types (`engine::cleanse::column_nulls`) and what the plan promised.
pub fn integrity_checks(
    built: &Built,
    outcome: &CleanseOutcome,
    input_nulls: &[(ColumnInfo, u64)],
    output_rows: u64,
    output: &[(ColumnInfo, u64)],
) -> Vec<IntegrityCheck> {
    let mut checks = Vec::new();
    let removed: u64 = outcome.rows_removed_by_step.iter().map(|(_, n)| n).sum();
    let accounted = outcome.rows_in == outcome.rows_out + removed + outcome.rows_quarantined
        && output_rows == outcome.rows_out;
    checks.push(IntegrityCheck {
        name: "row_accounting".into(),
        passed: accounted,
        message: format!(
            "{} rows in = {} out + {} removed + {} quarantined; the written file has {} rows",
            outcome.rows_in, outcome.rows_out, removed, outcome.rows_quarantined, output_rows
        ),
    });

    let mut wrong_types = Vec::new();
    for promised in &built.output_columns {
        match output.iter().find(|(c, _)| c.name == promised.name) {
            Some((c, _)) if c.data_type.eq_ignore_ascii_case(&promised.data_type) => {}
            Some((c, _)) => {
                wrong_types.push(format!("{} is {} (promised {})", c.name, c.data_type, promised.data_type))
            }
            None => wrong_types.push(format!("{} is missing", promised.name)),
        }
    }
    checks.push(IntegrityCheck {
        name: "types".into(),
        passed: wrong_types.is_empty() && output.len() == built.output_columns.len(),
        message: if wrong_types.is_empty() {
            format!("all {} columns have the promised types", built.output_columns.len())
        } else {
            wrong_types.join("; ")
        },
    });

    // Nulls may only come from values the plan nulled on purpose: failed conversions (when
    // nulled) and null tokens.
    let mut new_nulls = Vec::new();
    for (column, after) in output {
        let before = input_nulls.iter().find(|(c, _)| c.name == column.name).map_or(0, |(_, n)| *n);
        let allowed: u64 = outcome
            .changes
            .iter()
            .filter(|c| {
                c.column == column.name && matches!(c.step.as_str(), "null_tokens" | "nulls" | "fix_types")
            })
            .map(|c| c.changed + c.failed)
            .sum();
        if *after > before + allowed {
            new_nulls.push(format!("{}: {after} nulls after, {before} before", column.name));
        }
    }
    checks.push(IntegrityCheck {
        name: "no_new_nulls".into(),
        passed: new_nulls.is_empty(),
        message: if new_nulls.is_empty() {
            "no column gained nulls the plan did not make".into()
        } else {
            new_nulls.join("; ")
        },
    });

    // Required columns and columns whose nulls drop their rows hold no null afterwards;
    // columns the plan fills hold none but those its fill counted as left (no value to fill
    // them with).
    let mut complete: Vec<&str> = Vec::new();
    let mut filled: Vec<&str> = Vec::new();
    for step in &built.plan.steps {
        match step {
            Step::Nulls { columns, .. } => {
                for (column, strategy) in columns {
                    if *strategy == NullStrategy::Drop { &mut complete } else { &mut filled }.push(column)
                }
            }
            Step::Quarantine { required, .. } => complete.extend(required.iter().map(String::as_str)),
            _ => {}
        }
    }
    let unfilled: Vec<String> = output
        .iter()
        .filter_map(|(c, nulls)| {
            let name = c.name.as_str();
            let left: u64 = if complete.contains(&name) {
                0
            } else if filled.contains(&name) {
                outcome
                    .changes
                    .iter()
                    .filter(|ch| ch.column == name && ch.step == "nulls")
                    .map(|ch| ch.failed)
                    .sum()
            } else {
                return None;
            };
            (*nulls > left).then(|| format!("{name}: {nulls} nulls, {left} left with no value to fill them"))
        })
        .collect();
    checks.push(IntegrityCheck {
        name: "filled_columns".into(),
        passed: unfilled.is_empty(),
        message: if unfilled.is_empty() {
            "every required column is complete, every filled one but the nulls nothing could fill".into()
        } else {
            unfilled.join("; ")
        },
    });
    checks
}

/// The manifest of a run.
pub fn manifest(built: &Built, outcome: &CleanseOutcome, checks: Vec<IntegrityCheck>) -> CleanseManifest {
    let steps = built
        .steps
        .iter()
        .enumerate()
        .map(|(i, (agent, description))| ManifestStep {
            agent_id: agent.to_string(),
            step: built.plan.steps.get(i).map_or("", Step::name).to_string(),
            description: description.clone(),
            rows_removed: outcome.rows_removed_by_step.get(i).map_or(0, |(_, n)| *n),
            rows_quarantined: outcome.rows_quarantined_by_step.get(i).map_or(0, |(_, n)| *n),
        })
        .collect();
    CleanseManifest {
        rows_in: outcome.rows_in,
        rows_out: outcome.rows_out,
        rows_removed: outcome.rows_removed_by_step.iter().map(|(_, n)| n).sum(),
        rows_quarantined: outcome.rows_quarantined,
        steps,
        changes: changes(outcome),
        checks,
        output_dataset_id: None,
        quarantine_dataset_id: None,
    }
}

/// Per step (by name: the standardisation of several columns is one `standardize`) and
/// column, in the order the steps ran.
fn changes(outcome: &CleanseOutcome) -> Vec<ManifestChange> {
    outcome
        .changes
        .iter()
        .map(|c| ManifestChange {
            agent_id: agent_of_step(&c.step).to_string(),
            step: c.step.clone(),
            column: c.column.clone(),
            changed: c.changed,
            failed: c.failed,
        })
        .collect()
}

/// The `changes` of a preview or a run as JSON: rows, and per agent its steps and per
/// column the values changed and failed.
pub fn changes_json(built: &Built, outcome: &CleanseOutcome) -> Value {
    let manifest = manifest(built, outcome, Vec::new());
    json!({
        "rowsIn": manifest.rows_in,
        "rowsOut": manifest.rows_out,
        "rowsRemoved": manifest.rows_removed,
        "rowsQuarantined": manifest.rows_quarantined,
        "steps": manifest.steps.iter().map(|s| json!({
            "agentId": s.agent_id,
            "step": s.step,
            "description": s.description,
            "rowsRemoved": s.rows_removed,
            "rowsQuarantined": s.rows_quarantined,
        })).collect::<Vec<_>>(),
        "columns": manifest.changes.iter().map(|c| json!({
            "agentId": c.agent_id,
            "step": c.step,
            "column": c.column,
            "changed": c.changed,
            "failed": c.failed,
        })).collect::<Vec<_>>(),
    })
}

/// The sampled rows of a preview as JSON: `{ row, before, after, fate }` with the values by
/// column name (`after` null for a removed or quarantined row).
pub fn sample_json(preview: &CleansePreview, output_columns: &[ColumnInfo]) -> Vec<Value> {
    fn object<'a>(names: impl Iterator<Item = &'a String>, values: &[Option<String>]) -> Value {
        Value::Object(names.zip(values).map(|(n, v)| (n.clone(), json!(v))).collect())
    }
    preview
        .rows
        .iter()
        .map(|row| {
            json!({
                "row": row.row,
                "before": object(preview.columns.iter(), &row.before),
                "after": row.after.as_ref().map(|after| object(output_columns.iter().map(|c| &c.name), after)),
                "fate": row.fate,
            })
        })
        .collect()
}

/// Whether the plan changes a row of [`sample_json`]: it removes or quarantines it, or one
/// of its values (or columns) differs after.
pub fn sample_row_changed(row: &Value) -> bool {
    !row["fate"].is_null() || row["after"] != row["before"]
}

/// What `previewTool` returns: the plan run on a sample, nothing written.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// Rows of the sample, and those left after the plan.
    pub rows_before: u64,
    pub rows_after: u64,
    pub rows_removed: u64,
    pub rows_quarantined: u64,
    /// The plan's steps in words, with their agents.
    pub plan: Vec<(String, String)>,
    /// See [`changes_json`].
    pub changes: Value,
    /// See [`sample_json`].
    pub sample: Vec<Value>,
}

impl Preview {
    pub fn of(built: &Built, preview: &CleansePreview) -> Preview {
        let outcome = &preview.outcome;
        Preview {
            rows_before: outcome.rows_in,
            rows_after: outcome.rows_out,
            rows_removed: outcome.rows_removed_by_step.iter().map(|(_, n)| n).sum(),
            rows_quarantined: outcome.rows_quarantined,
            plan: built.steps.iter().map(|(a, d)| (a.to_string(), d.clone())).collect(),
            changes: changes_json(built, outcome),
            sample: sample_json(preview, &built.output_columns),
        }
    }
}

/// One result per selected agent, in the tool's order.
pub fn agent_results(
    agents: &[String],
    parameters: &Value,
    manifest: &CleanseManifest,
    preview: Option<(&Built, &CleansePreview, f64)>,
    elapsed_ms: f64,
) -> Vec<AgentResult> {
    let mut results = Vec::new();
    for agent in agents {
        let used = parameters.get(agent.as_str()).cloned().unwrap_or(Value::Null);
        let steps: Vec<_> = manifest.steps.iter().filter(|s| &s.agent_id == agent).collect();
        let changes: Vec<_> = manifest.changes.iter().filter(|c| &c.agent_id == agent).collect();
        let removed: u64 = steps.iter().map(|s| s.rows_removed).sum();
        let quarantined: u64 = steps.iter().map(|s| s.rows_quarantined).sum();
        // Per column, summed over the agent's steps named `step` (all of them with None).
        let per_column = |step: Option<&str>, pick: fn(&ManifestChange) -> u64| -> Value {
            let mut sums = serde_json::Map::new();
            for c in changes.iter().filter(|c| pick(c) > 0 && step.is_none_or(|s| c.step == s)) {
                let sum = sums.entry(c.column.clone()).or_insert(json!(0u64));
                *sum = json!(sum.as_u64().unwrap_or(0) + pick(c));
            }
            Value::Object(sums)
        };
        let mut alerts = Vec::new();
        let mut issues = Vec::new();
        let mut recommendations = Vec::new();
        let metrics = match agent.as_str() {
            PREVIEWER => match preview {
                Some((built, p, _)) => json!({
                    "sampleRows": p.outcome.rows_in,
                    "changes": changes_json(built, &p.outcome),
                }),
                None => json!({}),
            },
            WRITEBACK => {
                for check in manifest.checks.iter().filter(|c| !c.passed) {
                    alerts.push(Finding {
                        code: "INTEGRITY_CHECK_FAILED".into(),
                        severity: "critical".into(),
                        column: None,
                        message: format!("{}: {}", check.name, check.message),
                    });
                }
                json!({
                    "rowsIn": manifest.rows_in,
                    "rowsOut": manifest.rows_out,
                    "rowsRemoved": manifest.rows_removed,
                    "rowsQuarantined": manifest.rows_quarantined,
                    "checksPassed": manifest.checks.iter().filter(|c| c.passed).count(),
                    "checksFailed": manifest.checks.iter().filter(|c| !c.passed).count(),
                    "outputDatasetId": manifest.output_dataset_id,
                    "quarantineDatasetId": manifest.quarantine_dataset_id,
                })
            }
            _ => {
                for c in changes.iter().filter(|c| c.failed > 0) {
                    let message = match agent.as_str() {
                        TYPE_FIXER => format!("{} values of {} did not convert", c.failed, c.column),
                        STANDARDIZER => {
                            format!("{} values of {} are not valid (kept as they were)", c.failed, c.column)
                        }
                        NULL_HANDLER => format!(
                            "{} nulls of {} were left: there was no value to fill them with",
                            c.failed, c.column
                        ),
                        _ => format!("{} values of {} could not be handled", c.failed, c.column),
                    };
                    let code = match agent.as_str() {
                        TYPE_FIXER => "CONVERSION_FAILED",
                        NULL_HANDLER => "NULLS_LEFT",
                        _ => "INVALID_VALUES",
                    };
                    issues.push(Finding {
                        code: code.into(),
                        severity: "warning".into(),
                        column: Some(c.column.clone()),
                        message,
                    });
                }
                if quarantined > 0 {
                    recommendations.push(Finding {
                        code: "REVIEW_QUARANTINE".into(),
                        severity: "info".into(),
                        column: None,
                        message: if manifest.quarantine_dataset_id.is_some() {
                            format!(
                                "{quarantined} rows were quarantined with their reasons; review the quarantine dataset"
                            )
                        } else {
                            format!(
                                "{quarantined} rows would be quarantined; run with cleanse-writeback to keep them, \
                                 with their reasons, as a dataset of their own"
                            )
                        },
                    });
                }
                let mut metrics = json!({
                    "steps": steps.iter().map(|s| s.description.clone()).collect::<Vec<_>>(),
                    "rowsRemoved": removed,
                    "rowsQuarantined": quarantined,
                    "valuesChanged": per_column(None, |c| c.changed),
                    "valuesFailed": per_column(None, |c| c.failed),
                });
                if agent == NULL_HANDLER {
                    // Its two steps apart: a token nulled and then filled is in both.
                    metrics["valuesNulled"] = per_column(Some("null_tokens"), |c| c.changed);
                    metrics["valuesFilled"] = per_column(Some("nulls"), |c| c.changed);
                }
                metrics
            }
        };
        results.push(AgentResult {
            agent_id: agent.clone(),
            status: "success".into(),
            execution_time_ms: match agent.as_str() {
                WRITEBACK => elapsed_ms,
                PREVIEWER => preview.map_or(0.0, |(_, _, ms)| ms),
                _ => 0.0,
            },
            summary_metrics: metrics,
            alerts,
            issues,
            recommendations,
            row_level_issues: Vec::new(),
            row_level_issue_count: 0,
            parameters: used,
        });
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::jobs::registry::check_run;

    fn columns() -> Vec<ColumnInfo> {
        [
            ("id", "BIGINT"),
            ("name", "VARCHAR"),
            ("email", "VARCHAR"),
            ("phone", "VARCHAR"),
            ("amount", "VARCHAR"),
            ("joined", "VARCHAR"),
            ("city", "VARCHAR"),
            ("age", "BIGINT"),
            ("weight \"kg\"", "DOUBLE"),
        ]
        .iter()
        .map(|(n, t)| ColumnInfo { name: n.to_string(), data_type: t.to_string() })
        .collect()
    }

    fn evidence() -> Vec<ColumnEvidence> {
        let e = |name: &str, ty: &str, values, distinct, integers, numbers, dates| ColumnEvidence {
            name: name.into(),
            data_type: ty.into(),
            values,
            distinct,
            integers,
            numbers,
            booleans: 0,
            dates,
            timestamps: dates,
            times: 0,
            day_first: 0,
            month_first: 0,
            codes: 0,
        };
        vec![
            e("id", "BIGINT", 100, 100, 0, 0, 0),
            e("name", "VARCHAR", 100, 95, 0, 0, 0),
            e("email", "VARCHAR", 100, 90, 0, 0, 0),
            e("phone", "VARCHAR", 100, 90, 100, 100, 0),
            e("amount", "VARCHAR", 100, 80, 10, 99, 0),
            e("joined", "VARCHAR", 100, 70, 0, 0, 97),
            e("city", "VARCHAR", 100, 5, 0, 0, 0),
            e("age", "BIGINT", 100, 40, 0, 0, 0),
            e("weight \"kg\"", "DOUBLE", 100, 60, 0, 0, 0),
        ]
    }

    fn built(parameters: Value) -> Result<Built, AppError> {
        let run = check_run(CLEAN_TOOL, None, Some(&parameters), false)?;
        build(&run.parameters, &run.agents, &columns(), &evidence())
    }

    #[test]
    fn a_sampled_row_is_changed_when_it_leaves_or_a_value_or_column_differs() {
        let row = |after: Value, fate: Value| json!({ "row": 1, "before": { "a": "1", "b": null }, "after": after, "fate": fate });
        assert!(!sample_row_changed(&row(json!({ "a": "1", "b": null }), Value::Null)));
        assert!(sample_row_changed(&row(json!({ "a": "2", "b": null }), Value::Null)));
        assert!(sample_row_changed(&row(json!({ "a": "1", "b": "" }), Value::Null)));
        assert!(sample_row_changed(&row(json!({ "a": "1" }), Value::Null)), "a column dropped");
        assert!(sample_row_changed(&row(Value::Null, json!("deduplicate"))));
        assert!(sample_row_changed(&row(Value::Null, json!("quarantine: missing a"))));
    }

    #[test]
    fn slash_dates_are_read_the_way_the_column_writes_them() {
        // `joined` converts to dates; its sample holds slash dates only month first reads.
        let mut sampled = evidence();
        let joined = sampled.iter_mut().find(|e| e.name == "joined").unwrap();
        (joined.month_first, joined.day_first) = (12, 1);
        let plan = |parameters: Value, sampled: &[ColumnEvidence]| {
            let run = check_run(CLEAN_TOOL, None, Some(&parameters), false).unwrap();
            build(&run.parameters, &run.agents, &columns(), sampled).unwrap().plan
        };
        let fixed = plan(json!({}), &sampled);
        let month_first_columns = fixed.steps.iter().find_map(|s| match s {
            Step::FixTypes { month_first, .. } => Some(month_first.clone()),
            _ => None,
        });
        assert_eq!(month_first_columns, Some(vec!["joined".to_string()]));
        // Standardised as dates: the month-first formats come first.
        let standardized = plan(json!({ STANDARDIZER: { "date_columns": ["joined"] } }), &sampled);
        let formats = standardized.steps.iter().find_map(|s| match s {
            Step::Standardize(s) if s.column == "joined" => s.date_formats.clone().map(|(f, _)| f),
            _ => None,
        });
        let formats = formats.unwrap();
        let position = |f: &str| formats.iter().position(|x| x == f).unwrap();
        assert!(position("%m/%d/%Y") < position("%d/%m/%Y"), "{formats:?}");
        // The default order otherwise (day first, as documented).
        let fixed = plan(json!({}), &evidence());
        assert!(
            fixed
                .steps
                .iter()
                .any(|s| matches!(s, Step::FixTypes { month_first, .. } if month_first.is_empty()))
        );
    }

    fn field(error: &AppError) -> String {
        error
            .extensions()
            .iter()
            .find(|(k, _)| *k == "field")
            .and_then(|(_, v)| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    #[test]
    fn iso_dates_are_read_before_the_formats_given() {
        let standardized = |formats: Value| {
            let b = built(
                json!({ "field-standardization": { "date_columns": ["joined"], "date_formats": formats } }),
            )
            .unwrap();
            b.plan
                .steps
                .iter()
                .find_map(|s| match s {
                    Step::Standardize(s) if s.column == "joined" => s.date_formats.clone(),
                    _ => None,
                })
                .unwrap()
                .0
        };
        assert_eq!(standardized(json!(["%d.%m.%Y"])), ["%Y-%m-%d", "%d.%m.%Y"]);
        assert_eq!(standardized(json!(["%d.%m.%Y", "%Y-%m-%d"])), ["%Y-%m-%d", "%d.%m.%Y"]);
        assert_eq!(standardized(json!([])), ["%Y-%m-%d"], "no list is ISO dates alone");
    }

    #[test]
    fn a_few_fractions_among_whole_numbers_make_a_float_column() {
        let sampled = |integers, numbers| ColumnEvidence {
            name: "price".into(),
            data_type: "VARCHAR".into(),
            values: 100,
            distinct: 50,
            integers,
            numbers,
            booleans: 0,
            dates: 0,
            timestamps: 0,
            times: 0,
            day_first: 0,
            month_first: 0,
            codes: 0,
        };
        // 97 whole prices and 3 of 9.99: integers would quarantine the 9.99s.
        assert_eq!(detect(&sampled(97, 100), 0.95), Some(TargetType::Float));
        assert_eq!(detect(&sampled(100, 100), 0.95), Some(TargetType::Integer));
        // Whole numbers and a few words that are not numbers: still integers.
        assert_eq!(detect(&sampled(97, 97), 0.95), Some(TargetType::Integer));
        assert_eq!(detect(&sampled(90, 92), 0.95), None);
        // A column holding codes (a leading zero, a whole number beyond BIGINT) stays text.
        let codes = ColumnEvidence { codes: 1, ..sampled(100, 100) };
        assert_eq!(detect(&codes, 0.95), None);
    }

    #[test]
    fn the_default_plan_follows_the_chain_and_chooses_from_the_evidence() {
        let b = built(json!({})).unwrap();
        let names: Vec<&str> = b.plan.steps.iter().map(Step::name).collect();
        assert_eq!(names[0], "null_tokens", "null tokens first");
        assert_eq!(names[1], "fix_types");
        let Step::FixTypes { columns, on_failure, .. } = &b.plan.steps[1] else { panic!() };
        // amount reads as numbers, joined as dates; phone is a phone (header) and stays text.
        assert_eq!(
            columns,
            &vec![("amount".to_string(), TargetType::Float), ("joined".to_string(), TargetType::Date)]
        );
        assert_eq!(*on_failure, OnFailure::Quarantine);
        let email = b.plan.steps.iter().find_map(|s| match s {
            Step::Standardize(s) if s.column == "email" => Some(s.clone()),
            _ => None,
        });
        assert!(email.unwrap().email, "email columns are found by their header");
        let phone = b.plan.steps.iter().find_map(|s| match s {
            Step::Standardize(s) if s.column == "phone" => s.phone_region.clone(),
            _ => None,
        });
        assert_eq!(phone.as_deref(), Some("US"));
        assert!(b.plan.steps.iter().any(|s| matches!(s, Step::Deduplicate { mode: DedupMode::Exact, .. })));
        // Auto fill: numbers by median, the categorical city by mode; not the id, not names.
        let fills = b.plan.steps.iter().rev().find_map(|s| match s {
            Step::Nulls { columns, .. } if !columns.is_empty() => Some(columns.clone()),
            _ => None,
        });
        let fills = fills.unwrap();
        assert!(fills.contains(&("amount".into(), NullStrategy::Median)));
        assert!(fills.contains(&("city".into(), NullStrategy::Mode)));
        assert!(!fills.iter().any(|(c, _)| c == "id" || c == "name" || c == "email"));
        // Outliers on numeric columns that are not identifiers.
        let outliers: Vec<&str> = b
            .plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Outliers { column, .. } => Some(column.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(outliers, ["amount", "age", "weight \"kg\""]);
        assert_eq!(b.steps.len(), b.plan.steps.len(), "every step is described");
        let amount = b.output_columns.iter().find(|c| c.name == "amount").unwrap();
        assert_eq!(amount.data_type, "DOUBLE");
    }

    #[test]
    fn named_columns_must_exist_and_errors_name_the_parameter() {
        let cases = [
            (json!({ QUARANTINE: { "required_columns": ["nope"] } }), "quarantine-agent.required_columns"),
            (
                json!({ QUARANTINE: { "required_columns": ["amount"] }, TYPE_FIXER: { "columns": { "amount": "float" }, "on_failure": "null" } }),
                "type-fixer.on_failure",
            ),
            (json!({ TYPE_FIXER: { "columns": { "nope": "integer" } } }), "type-fixer.columns"),
            (json!({ STANDARDIZER: { "case": { "nope": "upper" } } }), "field-standardization.case"),
            // Text rewrites of a column that is not text.
            (json!({ STANDARDIZER: { "phone_columns": ["id"] } }), "field-standardization.phone_columns"),
            (json!({ STANDARDIZER: { "email_columns": ["age"] } }), "field-standardization.email_columns"),
            (json!({ STANDARDIZER: { "case": { "id": "upper" } } }), "field-standardization.case"),
            (
                json!({ STANDARDIZER: { "value_maps": { "age": { "1": "one" } } } }),
                "field-standardization.value_maps",
            ),
            (
                json!({ STANDARDIZER: { "email_columns": ["email"], "phone_columns": ["email"] } }),
                "field-standardization.phone_columns",
            ),
            (
                json!({ STANDARDIZER: { "date_columns": ["joined"], "phone_columns": ["joined"] } }),
                "field-standardization.phone_columns",
            ),
            (
                json!({ DEDUPLICATOR: { "mode": "keys", "key_columns": ["nope"] } }),
                "duplicate-resolver.key_columns",
            ),
            (json!({ DEDUPLICATOR: { "mode": "keys" } }), "duplicate-resolver.key_columns"),
            (json!({ NULL_HANDLER: { "strategies": { "nope": "mean" } } }), "null-handler.strategies"),
            (json!({ NULL_HANDLER: { "strategies": { "city": "constant" } } }), "null-handler.constants"),
            // A constant that would be dropped unsaid: another strategy, or none given.
            (
                json!({ NULL_HANDLER: { "strategies": { "city": "mode" }, "constants": { "city": "x" } } }),
                "null-handler.constants",
            ),
            (json!({ NULL_HANDLER: { "constants": { "age": "5" } } }), "null-handler.constants"),
            // Keys that become one value once the column's case is applied, or once trimmed.
            (
                json!({ STANDARDIZER: { "case": { "city": "upper" }, "value_maps": { "city": { "ny": "New York", "NY": "NYC" } } } }),
                "field-standardization.value_maps",
            ),
            (
                json!({ STANDARDIZER: { "value_maps": { "city": { "LA": "Los Angeles", " LA ": "L.A." } } } }),
                "field-standardization.value_maps",
            ),
            // An output that writes different dates alike.
            (
                json!({ STANDARDIZER: { "date_columns": ["joined"], "date_output": "%H:%M:%S" } }),
                "field-standardization.date_output",
            ),
            (
                json!({ STANDARDIZER: { "date_columns": ["joined"], "date_output": "%m/%Y" } }),
                "field-standardization.date_output",
            ),
            (
                json!({ STANDARDIZER: { "date_columns": ["joined"], "date_output": "%%Y %m %d" } }),
                "field-standardization.date_output",
            ),
            (json!({ OUTLIER_REMOVER: { "columns": ["name"] } }), "outlier-remover.columns"),
            (
                json!({ QUARANTINE: { "ranges": [{ "column": "name", "min": 1 }] } }),
                "quarantine-agent.ranges[0].column",
            ),
            (
                json!({ DEDUPLICATOR: { "mode": "fuzzy", "key_columns": ["name"], "keep": "last" } }),
                "duplicate-resolver.keep",
            ),
        ];
        for (parameters, path) in cases {
            let error = built(parameters.clone()).unwrap_err();
            assert_eq!(error.code(), ErrorCode::BadUserInput, "{parameters}");
            assert_eq!(field(&error), path, "{parameters}");
        }
        // Whole dates, unpadded or by ISO week, are fine.
        for output in ["%-m/%-d/%Y", "%-d.%-m.%Y", "%G-W%V-%u", "%Y-%j", "%d %B %Y"] {
            let parameters = json!({ STANDARDIZER: { "date_columns": ["joined"], "date_output": output } });
            assert!(built(parameters).is_ok(), "{output}");
        }
        // A key with spaces around it matches as the trimmed values do.
        let b =
            built(json!({ STANDARDIZER: { "value_maps": { "city": { " LA ": "Los Angeles" } } } })).unwrap();
        let map = b.plan.steps.iter().find_map(|s| match s {
            Step::Standardize(s) if s.column == "city" => Some(s.value_map.clone()),
            _ => None,
        });
        assert_eq!(map.unwrap(), [("LA".to_string(), "Los Angeles".to_string())]);
        let error = built(json!({ TYPE_FIXER: { "columns": { "nope": "integer" } } })).unwrap_err();
        let allowed = error.extensions().iter().find(|(k, _)| *k == "allowed").map(|(_, v)| v.clone());
        assert_eq!(allowed.unwrap()[8], json!("weight \"kg\""));
    }

    #[test]
    fn lists_are_not_the_scalars_their_types_start_with() {
        let mut columns = columns();
        for (name, ty) in [("stamps", "TIMESTAMP[]"), ("amounts", "DECIMAL(9,2)[]")] {
            columns.push(ColumnInfo { name: name.into(), data_type: ty.into() });
        }
        for (parameters, path) in [
            (json!({ STANDARDIZER: { "date_columns": ["stamps"] } }), "field-standardization.date_columns"),
            (json!({ OUTLIER_REMOVER: { "columns": ["amounts"] } }), "outlier-remover.columns"),
            (json!({ NULL_HANDLER: { "strategies": { "amounts": "mean" } } }), "null-handler.strategies"),
        ] {
            let run = check_run(CLEAN_TOOL, None, Some(&parameters), false).unwrap();
            let error = build(&run.parameters, &run.agents, &columns, &evidence()).unwrap_err();
            assert_eq!(
                (error.code(), field(&error).as_str()),
                (ErrorCode::BadUserInput, path),
                "{parameters}"
            );
        }
    }

    #[test]
    fn registry_shapes_are_checked() {
        let bad = [
            json!({ QUARANTINE: { "ranges": [{ "column": "age" }] } }),
            json!({ QUARANTINE: { "ranges": [{ "column": "age", "min": 5, "max": 1 }] } }),
            json!({ QUARANTINE: { "patterns": [{ "column": "name", "pattern": "(" }] } }),
            json!({ QUARANTINE: { "required_columns": "name" } }),
            json!({ TYPE_FIXER: { "columns": { "amount": "money" } } }),
            json!({ STANDARDIZER: { "value_maps": { "city": { "NYC": 1 } } } }),
            json!({ STANDARDIZER: { "units": { "age": { "from": "kg", "to": "m" } } } }),
            json!({ STANDARDIZER: { "phone_region": "USA" } }),
            json!({ NULL_HANDLER: { "constants": { "city": [1] } } }),
            json!({ QUARANTINE: { "patterns": [{ "column": "name", "pattern": "[a-z&&[^aeiou]]" }] } }),
            json!({ WRITEBACK: { "output_name": "clean\u{1b}[2J" } }),
            json!({ WRITEBACK: { "output_name": "  " } }),
        ];
        for parameters in bad {
            let error = check_run(CLEAN_TOOL, None, Some(&parameters), false).unwrap_err();
            assert_eq!(error.code(), ErrorCode::BadUserInput, "{parameters}");
        }
        let named = json!({ WRITEBACK: { "output_name": "customers (clean)" } });
        check_run(CLEAN_TOOL, None, Some(&named), false).unwrap();
        // At most MAX_PATTERNS patterns, each parsed rather than compiled: a list of patterns
        // that compile slowly (Unicode classes repeated) is checked at once.
        let patterns = |n: usize| {
            let list: Vec<Value> = (0..n)
                .map(|i| json!({ "column": "name", "pattern": format!("\\w{{{}}}", 200 + i % 50) }))
                .collect();
            json!({ QUARANTINE: { "patterns": list } })
        };
        let started = std::time::Instant::now();
        check_run(CLEAN_TOOL, None, Some(&patterns(MAX_PATTERNS)), false).unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
        let error = check_run(CLEAN_TOOL, None, Some(&patterns(MAX_PATTERNS + 1)), false).unwrap_err();
        assert_eq!(error.code(), ErrorCode::BadUserInput);
        assert!(error.message().contains("at most 200 items"), "{}", error.message());
    }

    #[test]
    fn a_text_column_of_dates_is_not_filled_with_its_mode() {
        // The categorical city, but most of its sampled values read as dates (too few to be
        // converted): dates are left as they are, as the null handler says.
        let mut dated = evidence();
        dated.iter_mut().find(|e| e.name == "city").unwrap().dates = 60;
        let fills = |evidence: &[ColumnEvidence]| -> Vec<(String, NullStrategy)> {
            let run = check_run(CLEAN_TOOL, None, Some(&json!({})), false).unwrap();
            let b = build(&run.parameters, &run.agents, &columns(), evidence).unwrap();
            b.plan
                .steps
                .iter()
                .rev()
                .find_map(|s| match s {
                    Step::Nulls { columns, .. } if !columns.is_empty() => Some(columns.clone()),
                    _ => None,
                })
                .unwrap_or_default()
        };
        assert!(fills(&evidence()).contains(&("city".into(), NullStrategy::Mode)));
        assert!(!fills(&dated).iter().any(|(c, _)| c == "city"));
    }

    #[test]
    fn user_choices_override_the_automatic_ones() {
        let b = built(json!({
            TYPE_FIXER: { "auto_detect": false, "columns": { "age": "float" }, "on_failure": "null" },
            NULL_HANDLER: { "auto": false, "strategies": { "city": "constant" }, "constants": { "city": "unknown" } },
            DEDUPLICATOR: { "mode": "email_case", "merge": true },
            OUTLIER_REMOVER: { "columns": ["age"], "method": "zscore", "action": "remove" },
            STANDARDIZER: { "units": { "weight \"kg\"": { "from": "kg", "to": "lb" } } },
        }))
        .unwrap();
        let fix = b.plan.steps.iter().find_map(|s| match s {
            Step::FixTypes { columns, on_failure, .. } => Some((columns.clone(), *on_failure)),
            _ => None,
        });
        assert_eq!(fix, Some((vec![("age".into(), TargetType::Float)], OnFailure::Null)));
        assert!(b.plan.steps.iter().any(|s| matches!(s,
            Step::Deduplicate { mode: DedupMode::KeysIgnoreCase(k), merge: true, .. } if k == &vec!["email".to_string()])));
        assert!(b.plan.steps.iter().any(|s| matches!(s,
            Step::Nulls { columns, .. } if columns == &vec![("city".to_string(), NullStrategy::Constant("unknown".into()))])));
        let outliers: Vec<_> = b.plan.steps.iter().filter(|s| matches!(s, Step::Outliers { .. })).collect();
        assert_eq!(outliers.len(), 1);
        let units = b.plan.steps.iter().find_map(|s| match s {
            Step::ConvertUnits { conversion, .. } => Some(conversion.multiply / conversion.divide),
            _ => None,
        });
        assert!((units.unwrap() - 2.204_622_621_8).abs() < 1e-9);
    }

    #[test]
    fn only_the_selected_agents_make_steps() {
        let run =
            check_run(CLEAN_TOOL, Some(&[DEDUPLICATOR.to_string(), WRITEBACK.to_string()]), None, false)
                .unwrap();
        let b = build(&run.parameters, &run.agents, &columns(), &evidence()).unwrap();
        assert_eq!(b.plan.steps.len(), 1);
        assert_eq!(b.steps[0].0, DEDUPLICATOR);
    }

    #[test]
    fn integrity_checks_catch_lost_rows_wrong_types_and_new_nulls() {
        use crate::engine::cleanse::StepChange;
        let b = built(json!({})).unwrap();
        let info = |name: &str, ty: &str| ColumnInfo { name: name.into(), data_type: ty.into() };
        let outcome = CleanseOutcome {
            rows_in: 10,
            rows_out: 7,
            rows_removed_by_step: vec![("deduplicate".into(), 2)],
            rows_quarantined_by_step: vec![("quarantine".into(), 1)],
            rows_quarantined: 1,
            changes: vec![StepChange {
                step: "fix_types".into(),
                column: "amount".into(),
                changed: 3,
                failed: 2,
            }],
        };
        let input: Vec<(ColumnInfo, u64)> = columns().into_iter().map(|c| (c, 0)).collect();
        let good: Vec<(ColumnInfo, u64)> =
            b.output_columns.iter().map(|c| (c.clone(), if c.name == "amount" { 2 } else { 0 })).collect();
        // amount: 2 nulls from failed conversions is what the plan did; the auto fill promised
        // none, though.
        let checks = integrity_checks(&b, &outcome, &input, 7, &good);
        let passed =
            |checks: &[IntegrityCheck], name: &str| checks.iter().find(|c| c.name == name).unwrap().passed;
        assert!(
            passed(&checks, "row_accounting") && passed(&checks, "types") && passed(&checks, "no_new_nulls")
        );
        assert!(!passed(&checks, "filled_columns"), "{checks:?}");
        // ... unless the fill counted them as left, with no value to fill them.
        let mut unfillable = outcome.clone();
        unfillable.changes.push(StepChange {
            step: "nulls".into(),
            column: "amount".into(),
            changed: 0,
            failed: 2,
        });
        let checks = integrity_checks(&b, &unfillable, &input, 7, &good);
        assert!(checks.iter().all(|c| c.passed), "{checks:?}");
        let mut more = good.clone();
        more[4].1 = 3;
        let checks = integrity_checks(&b, &unfillable, &input, 7, &more);
        assert!(!passed(&checks, "filled_columns"), "{checks:?}");

        let short = integrity_checks(&b, &outcome, &input, 6, &good);
        assert!(!passed(&short, "row_accounting"));
        let mut retyped = good.clone();
        retyped[4].0 = info("amount", "VARCHAR");
        assert!(!passed(&integrity_checks(&b, &outcome, &input, 7, &retyped), "types"));
        let mut nulled = good.clone();
        nulled[1].1 = 1;
        let checks = integrity_checks(&b, &outcome, &input, 7, &nulled);
        assert!(!passed(&checks, "no_new_nulls"));
        assert!(checks.iter().any(|c| c.message.contains("name: 1 nulls after, 0 before")), "{checks:?}");

        let manifest = manifest(&b, &outcome, checks);
        assert_eq!(
            (manifest.rows_in, manifest.rows_out, manifest.rows_removed, manifest.rows_quarantined),
            (10, 7, 2, 1)
        );
        assert_eq!(
            manifest.changes,
            vec![ManifestChange {
                agent_id: TYPE_FIXER.into(),
                step: "fix_types".into(),
                column: "amount".into(),
                changed: 3,
                failed: 2
            }]
        );
    }

    #[test]
    fn units_convert_within_a_dimension() {
        // As the engine computes it, in DOUBLE: exact where the answer is.
        let convert = |from: &str, to: &str, v: f64| {
            let c = unit_conversion(from, to).unwrap();
            (v - c.subtract) * c.multiply / c.divide + c.add
        };
        assert_eq!(convert("c", "f", 100.0), 212.0);
        assert_eq!(convert("c", "f", 0.0), 32.0);
        assert_eq!(convert("f", "c", 32.0), 0.0);
        assert_eq!(convert("f", "c", 212.0), 100.0);
        assert_eq!(convert("f", "k", 32.0), 273.15);
        assert_eq!(convert("k", "c", 273.15), 0.0);
        assert_eq!(convert("ft", "in", 1.0), 12.0);
        assert_eq!(convert("ft", "in", 10.0), 120.0);
        assert_eq!(convert("lb", "oz", 1.0), 16.0);
        assert_eq!(convert("mi", "km", 1.0), 1.609_344);
        assert!((convert("km", "mi", 1.0) - 0.621_371_192).abs() < 1e-9);
        assert!(unit_conversion("kg", "km").is_none());
        assert!(unit_conversion("parsec", "km").is_none());
    }

    #[test]
    fn a_text_column_of_numbers_named_for_a_unit_conversion_is_converted_first() {
        // amount is text whose sampled values are numbers: auto-detection makes it a float,
        // which the conversion needs (it was skipped, and the conversion refused as VARCHAR).
        let b =
            built(json!({ STANDARDIZER: { "units": { "amount": { "from": "kg", "to": "lb" } } } })).unwrap();
        assert!(b.plan.steps.iter().any(|s| matches!(s, Step::FixTypes { columns, .. }
            if columns.contains(&("amount".to_string(), TargetType::Float)))));
        assert!(
            b.plan.steps.iter().any(|s| matches!(s, Step::ConvertUnits { column, .. } if column == "amount"))
        );
        // Without the type fixer nothing converts it: refused, naming the parameter.
        let run = check_run(
            CLEAN_TOOL,
            Some(&[STANDARDIZER.to_string()]),
            Some(&json!({ STANDARDIZER: { "units": { "amount": { "from": "kg", "to": "lb" } } } })),
            false,
        )
        .unwrap();
        let error = build(&run.parameters, &run.agents, &columns(), &evidence()).err().unwrap();
        assert_eq!(field(&error), "field-standardization.units");
    }

    #[test]
    fn a_column_with_a_reserved_name_is_bad_input_naming_it() {
        for reserved in ["__ag_x", "__AG_row", "file_row_number"] {
            let mut cols = columns();
            cols.push(ColumnInfo { name: reserved.into(), data_type: "VARCHAR".into() });
            let run = check_run(CLEAN_TOOL, None, Some(&json!({})), false).unwrap();
            let error = build(&run.parameters, &run.agents, &cols, &evidence()).err().unwrap();
            assert_eq!(error.code(), ErrorCode::BadUserInput);
            assert_eq!(field(&error), "datasetId");
            assert!(error.message().contains(&format!("{reserved:?}")), "{}", error.message());
        }
    }

    #[test]
    fn identifiers_are_recognised() {
        for name in
            ["id", "customer_id", "customerId", "ID", "zip_code", "uuid", "sku", "product_sku", "EAN", "isbn"]
        {
            assert!(is_identifier(name), "{name}");
        }
        for name in ["amount", "paid", "valid", "width"] {
            assert!(!is_identifier(name), "{name}");
        }
    }
}
