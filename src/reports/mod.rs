//! Downloadable renderings of a job's report: JSON, an Excel workbook and a self-contained
//! HTML page.
//!
//! [`render`] is pure: it takes the job's metadata and its [`Report`] and returns the file's
//! bytes. The workbook and the page show the values of columns that hold personal data masked
//! (see [`Masking`]). The JSON is not masked: it is the full report as stored (raw top values,
//! minimums and maximums included), for the job's owner, and is not to be shared as is.

mod html;
mod json;
mod svg;
mod xlsx;

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::domain::{ColumnProfile, Report, mask};

/// What the renderings say about the job itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportMeta {
    pub job_id: String,
    pub tool_id: String,
    pub dataset_name: String,
    /// The baseline dataset's name, for drift jobs.
    pub baseline_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Columns other runs on the same version found personal (column → kind), masked too.
    pub personal: HashMap<String, String>,
}

/// A downloadable rendering of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportFormat {
    Json,
    Xlsx,
    Html,
    /// A cleanse's manifest alone (JSON): every step, change and integrity check.
    Manifest,
}

impl ReportFormat {
    pub const ALL: [ReportFormat; 3] = [ReportFormat::Json, ReportFormat::Xlsx, ReportFormat::Html];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Xlsx => "xlsx",
            ReportFormat::Html => "html",
            ReportFormat::Manifest => "manifest",
        }
    }

    /// `json`, `xlsx` or `html` (any case; `excel` and `htm` are accepted too).
    pub fn parse(s: &str) -> Option<ReportFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Some(ReportFormat::Json),
            "xlsx" | "excel" => Some(ReportFormat::Xlsx),
            "html" | "htm" => Some(ReportFormat::Html),
            "manifest" => Some(ReportFormat::Manifest),
            _ => None,
        }
    }

    /// The `Content-Type` of the rendering.
    pub fn content_type(self) -> &'static str {
        match self {
            ReportFormat::Json | ReportFormat::Manifest => "application/json",
            ReportFormat::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ReportFormat::Html => "text/html; charset=utf-8",
        }
    }

    /// A safe download name: `customers.csv` gives `customers-report.html`. ASCII letters,
    /// digits, `.`, `_` and `-` only, so it can go into a `Content-Disposition` header as is.
    pub fn file_name(self, dataset_name: &str) -> String {
        match self {
            ReportFormat::Manifest => format!("{}-manifest.json", file_stem(dataset_name)),
            _ => format!("{}-report.{}", file_stem(dataset_name), self.as_str()),
        }
    }

    /// The file's format as a download lists it: json, xlsx or html.
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Manifest => "json",
            other => other.as_str(),
        }
    }
}

/// The dataset name without a data-file extension, reduced to `[A-Za-z0-9._-]`.
fn file_stem(dataset_name: &str) -> String {
    let (name, _) = crate::domain::split_extension(dataset_name.trim());
    let mut stem = String::new();
    for c in name.chars() {
        // Letters and digits of any script (the download's `filename*` carries them); nothing
        // that separates paths, quotes or controls.
        let c = if c.is_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' };
        if c == '-' && stem.ends_with('-') {
            continue;
        }
        stem.push(c);
    }
    // At most 100 bytes (file systems count bytes: 255 at most, with the suffix).
    let mut stem: String = stem.trim_matches(|c| matches!(c, '-' | '.' | '_')).to_string();
    while stem.len() > 100 {
        stem.pop();
    }
    let stem = stem.trim_end_matches(['-', '.']);
    if stem.is_empty() { "dataset".to_string() } else { stem.to_string() }
}

/// Renders `report` in `format`.
pub fn render(format: ReportFormat, meta: &ReportMeta, report: &Report) -> anyhow::Result<Vec<u8>> {
    match format {
        ReportFormat::Json => json::render(meta, report),
        ReportFormat::Xlsx => xlsx::render(meta, report),
        ReportFormat::Html => Ok(html::render(meta, report).into_bytes()),
        ReportFormat::Manifest => json::render_manifest(meta, report),
    }
}

/// Which columns hold personal data, and as what kind: their values are shown masked.
///
/// A column is personal when the risk scorer found it (its kind is then used) or when the
/// profiler flagged it (its hint is mapped to the closest of [`crate::domain::PII_KINDS`], else a
/// generic mask). A drift column that neither the profile nor the risk report covers (a run of
/// the drift detector alone) is personal when its header names personal data
/// ([`crate::engine::pii::header_kind`]: `email`, `customer_name`…).
pub(crate) struct Masking {
    kinds: HashMap<String, String>,
    /// The profile's text columns: in those not found personal, personal data written inside
    /// a value (an IBAN among codes, an e-mail in a note) is masked on its own
    /// ([`crate::domain::mask_embedded`]).
    text_columns: std::collections::HashSet<String>,
    /// The raw values the report holds for each personal-data column (top values, min and
    /// max), longest first: [`Masking::scrub`] masks them in free text.
    raw: HashMap<String, Vec<String>>,
}

/// Raw values shorter than this are not scrubbed from free text: they would match inside
/// ordinary words and numbers.
const MIN_SCRUBBED_CHARS: usize = 3;

impl Masking {
    pub(crate) fn of(report: &Report) -> Masking {
        let mut kinds = HashMap::new();
        if let Some(profile) = &report.profile {
            for column in &profile.columns {
                if let Some(hint) = &column.pii {
                    kinds.insert(column.name.clone(), pii_kind_of_hint(hint).to_string());
                }
            }
        }
        // A column named like personal data (`pan`, `iban`, `ssn`…), or whose values the
        // profiler recognised as e-mail addresses, phone numbers or IP addresses, is masked
        // whatever else ran: a profiler-only run has no risk scorer's verdict.
        if let Some(profile) = &report.profile {
            for column in &profile.columns {
                let by_values = match column.semantic_type.as_str() {
                    kind @ ("email" | "phone" | "ip") => Some(kind),
                    _ => None,
                };
                if let Some(kind) = crate::engine::pii::header_kind(&column.name).or(by_values) {
                    kinds.entry(column.name.clone()).or_insert_with(|| kind.to_string());
                }
            }
        }
        if let Some(risk) = &report.risk {
            // Most sensitive first: the first finding of a column wins.
            for found in risk.columns.iter().rev() {
                kinds.insert(found.column.clone(), found.kind.clone());
            }
        }
        if let Some(drift) = &report.drift {
            for found in drift.personal_columns.iter().rev() {
                kinds.entry(found.column.clone()).or_insert_with(|| found.kind.clone());
            }
            let covered = |name: &str| {
                report.profile.as_ref().is_some_and(|p| p.columns.iter().any(|c| c.name == name))
                    || report.risk.as_ref().is_some_and(|r| r.columns.iter().any(|c| c.column == name))
            };
            for column in &drift.columns {
                if !kinds.contains_key(&column.column)
                    && !covered(&column.column)
                    && let Some(kind) = crate::engine::pii::header_kind(&column.column)
                {
                    kinds.insert(column.column.clone(), kind.to_string());
                }
            }
        }
        let raw = Masking::raw_values(report, &kinds);
        Masking { kinds, text_columns: Masking::text_columns(report), raw }
    }

    fn text_columns(report: &Report) -> std::collections::HashSet<String> {
        report
            .profile
            .iter()
            .flat_map(|p| p.columns.iter())
            .filter(|c| c.data_type.eq_ignore_ascii_case("VARCHAR"))
            .map(|c| c.name.clone())
            .collect()
    }

    /// `report`'s masking, with the columns other runs on the same version found personal
    /// (`known`: column → kind) masked too: the profiler's report of a run that did not score
    /// risks still masks what an earlier risk scorer found.
    pub(crate) fn with_known(report: &Report, known: &HashMap<String, String>) -> Masking {
        let mut kinds = Masking::of(report).kinds;
        for (column, kind) in known {
            kinds.entry(column.clone()).or_insert_with(|| kind.clone());
        }
        let raw = Masking::raw_values(report, &kinds);
        Masking { kinds, text_columns: Masking::text_columns(report), raw }
    }

    /// The personal columns and their kinds.
    pub(crate) fn into_kinds(self) -> HashMap<String, String> {
        self.kinds
    }

    /// The raw values the report holds for each column of `kinds` (top values, min and max),
    /// and those of the other columns that have personal data written inside them, longest
    /// first.
    fn raw_values(report: &Report, kinds: &HashMap<String, String>) -> HashMap<String, Vec<String>> {
        let mut raw: HashMap<String, Vec<String>> = HashMap::new();
        if let Some(profile) = &report.profile {
            for column in &profile.columns {
                let personal = kinds.contains_key(&column.name);
                let values = column
                    .shown_values()
                    .filter(|v| v.chars().count() >= MIN_SCRUBBED_CHARS)
                    .filter(|v| {
                        personal || matches!(crate::domain::mask_embedded(v), std::borrow::Cow::Owned(_))
                    })
                    .map(String::from);
                let mut values: Vec<String> = values.collect();
                values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
                values.dedup();
                if !values.is_empty() {
                    raw.insert(column.name.clone(), values);
                }
            }
        }
        raw
    }

    /// The kind of personal data `column` holds, if any.
    pub(crate) fn kind(&self, column: &str) -> Option<&str> {
        self.kinds.get(column).map(String::as_str)
    }

    /// `value` of `column`, masked when the column holds personal data; in another text
    /// column, with the personal data written inside it masked.
    pub(crate) fn value(&self, column: &str, value: &str) -> String {
        match self.kind(column) {
            Some(kind) => mask(kind, value),
            None if self.text_columns.contains(column) => crate::domain::mask_embedded(value).into_owned(),
            None => value.to_string(),
        }
    }

    /// A category of a drift column (its values on either side, the baseline's too), masked
    /// like `value`; in a column the current profile does not show as text (a drift-only run,
    /// a column of numbers now and of text in the baseline), every category that is not a
    /// number has the personal data written inside it masked.
    pub(crate) fn category(&self, column: &str, value: &str) -> String {
        if self.kind(column).is_some() || self.text_columns.contains(column) {
            self.value(column, value)
        } else if value.trim().parse::<f64>().is_ok() {
            value.to_string()
        } else {
            crate::domain::mask_embedded(value).into_owned()
        }
    }

    /// A column's min or max, masked like its values.
    pub(crate) fn bound(&self, column: &ColumnProfile, value: Option<&str>) -> Option<String> {
        value.map(|v| self.value(&column.name, v))
    }

    /// Free text about `column` (an alert's or issue's message) with the raw values the report
    /// holds for it masked as [`Masking::value`] shows them: the profiler's `CONSTANT_COLUMN`
    /// quotes the single value of a column not found personal (and quoted it in any column
    /// before the agents stopped quoting personal values), which may be a note holding an
    /// e-mail address.
    pub(crate) fn scrub(&self, column: Option<&str>, text: &str) -> String {
        let Some(column) = column else {
            return text.to_string();
        };
        let mut text = text.to_string();
        for raw in self.raw.get(column).into_iter().flatten() {
            let shown = match self.kind(column) {
                Some(kind) => mask(kind, raw),
                None => crate::domain::mask_embedded(raw).into_owned(),
            };
            // As written, and as Rust's `{:?}` quotes it (the profiler's alerts do: `"` as `\"`).
            let escaped = |s: &str| {
                let quoted = format!("{s:?}");
                quoted[1..quoted.len() - 1].to_string()
            };
            for (from, to) in [(raw.clone(), shown.clone()), (escaped(raw), escaped(&shown))] {
                if text.contains(from.as_str()) {
                    text = text.replace(from.as_str(), &to);
                }
            }
        }
        text
    }
}

/// The PII kind closest to the profiler's hint (`email`, `national_id`, `name`…).
fn pii_kind_of_hint(hint: &str) -> &'static str {
    match hint {
        "email" => "email",
        "phone" => "phone",
        "ip" => "ip",
        "postcode" => "postcode",
        "date_of_birth" => "date_of_birth",
        "national_id" | "ssn" => "ssn",
        "payment_card" | "credit_card" => "credit_card",
        "iban" => "iban",
        "name" | "person_name" => "person_name",
        _ => "other",
    }
}

/// Every agent's alerts, as the executive summary counts them: the overview's count. (A report
/// with no agents, which the worker never writes, counts its profile's.)
pub(crate) fn all_alerts(report: &Report) -> Vec<&crate::domain::Finding> {
    if report.agents.is_empty() {
        report.profile.iter().flat_map(|p| p.alerts.iter()).collect()
    } else {
        report.agents.iter().flat_map(|a| a.alerts.iter()).collect()
    }
}

/// Display label of an agent.
pub(crate) fn agent_title(agent_id: &str) -> String {
    match agent_id {
        "unified-profiler" => "Unified profiler".into(),
        "drift-detector" => "Drift detector".into(),
        "score-risk" => "Risk scorer".into(),
        "test-coverage-agent" => "Test coverage".into(),
        "readiness-rater" => "Readiness rater".into(),
        other => humanize(other),
    }
}

/// `rowCount`, `row_count` or `row-count` as `Row count`.
pub(crate) fn humanize(key: &str) -> String {
    let mut words = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if c == '_' || c == '-' || c == '.' {
            if !words.ends_with(' ') && !words.is_empty() {
                words.push(' ');
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower {
            words.push(' ');
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        words.extend(c.to_lowercase());
    }
    const ACRONYMS: &[&str] =
        &["id", "ip", "js", "ks", "pii", "psi", "ssn", "url", "uuid", "iban", "gdpr", "ccpa"];
    let words: Vec<String> = words
        .split_whitespace()
        .enumerate()
        .map(|(i, word)| {
            if ACRONYMS.contains(&word) {
                word.to_uppercase()
            } else if i == 0 {
                let mut chars = word.chars();
                chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
            } else {
                word.to_string()
            }
        })
        .collect();
    if words.is_empty() { key.to_string() } else { words.join(" ") }
}

/// The metrics worth a glance, most telling first: scores, grades and levels, then counts and
/// percentages, then the rest (each group in key order).
pub(crate) fn key_metrics(metrics: &serde_json::Value, max: usize) -> Vec<(String, serde_json::Value)> {
    const PREFERRED: &[&str] = &[
        "qualityScore",
        "grade",
        "rowCount",
        "columnCount",
        "riskScore",
        "riskLevel",
        "driftedColumns",
        "readinessScore",
        "verdict",
        "testScore",
        "failedTests",
    ];
    let rank = |key: &str| {
        if let Some(i) = PREFERRED.iter().position(|p| *p == key) {
            return i;
        }
        let lower = key.to_ascii_lowercase();
        let has = |parts: &[&str]| parts.iter().any(|p| lower.contains(p));
        if has(&["score", "grade", "level", "verdict", "status"]) {
            100
        } else if has(&["count", "percent", "rate", "change", "ratio"]) {
            200
        } else {
            300
        }
    };
    // Per-column or per-test details (lists of objects) have their own sections.
    let detail = |key: &str| {
        metrics.get(key).and_then(|v| v.as_array()).is_some_and(|items| items.iter().any(|i| i.is_object()))
    };
    let mut scalars: Vec<(String, serde_json::Value)> = flatten_metrics(metrics)
        .into_iter()
        .filter(|(k, v)| !v.is_object() && !v.is_null() && !detail(k))
        .collect();
    scalars.sort_by_key(|(k, _)| rank(k));
    scalars.truncate(max);
    scalars
}

/// The label of a flattened metric's key path: its first key (the metric's name) humanized,
/// the keys below it (column names, parameter names) as written: `valuesChanged.E-mail
/// Address` reads `Values changed · E-mail Address`.
pub(crate) fn metric_label(path: &str) -> String {
    match path.split_once('.') {
        Some((name, rest)) => format!("{} · {rest}", humanize(name)),
        None => humanize(path),
    }
}

/// A summary metric flattened to `(key path, display value)` pairs: nested objects join their
/// keys with `.`, lists of scalars are joined with `, `, other lists are compact JSON.
pub(crate) fn flatten_metrics(value: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                    walk(&path, value, out);
                }
            }
            other => out.push((prefix.to_string(), other.clone())),
        }
    }
    let mut out = Vec::new();
    match value {
        serde_json::Value::Null => {}
        serde_json::Value::Object(_) => walk("", value, &mut out),
        other => out.push(("value".to_string(), other.clone())),
    }
    out
}

/// A JSON scalar or list as display text (numbers formatted with [`fmt_num`]).
pub(crate) fn json_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "—".into(),
        serde_json::Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => fmt_int(u),
            (None, Some(i), _) => fmt_signed(i),
            (None, None, Some(f)) => fmt_num(f),
            _ => n.to_string(),
        },
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) if items.iter().all(|i| !i.is_array() && !i.is_object()) => {
            items.iter().map(json_text).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

/// `1234567` as `1,234,567`.
pub(crate) fn fmt_int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn fmt_signed(n: i64) -> String {
    if n < 0 { format!("−{}", fmt_int(n.unsigned_abs())) } else { fmt_int(n.unsigned_abs()) }
}

/// A number for people: thousands separators, at most 3 significant decimals for small
/// values and 1–2 for large ones, trailing zeros dropped; scientific for tiny or huge values.
pub(crate) fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "—".into()
        } else if x > 0.0 {
            "∞".into()
        } else {
            "−∞".into()
        };
    }
    let a = x.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(1e-4..1e15).contains(&a) {
        return format!("{x:.2e}").replace('-', "−");
    }
    let decimals = if a >= 1000.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        // Three significant digits: 0.0123, 0.000456.
        (2 - a.log10().floor() as i32).clamp(3, 6) as usize
    };
    let text = format!("{a:.decimals$}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let frac = frac.trim_end_matches('0');
    let int = int.parse::<u64>().map(fmt_int).unwrap_or_else(|_| int.to_string());
    let sign = if x < 0.0 && (int != "0" || !frac.is_empty()) { "−" } else { "" };
    if frac.is_empty() { format!("{sign}{int}") } else { format!("{sign}{int}.{frac}") }
}

/// A percentage given on a 0–100 scale, with one decimal: `87.5%`.
pub(crate) fn fmt_pct(x: f64) -> String {
    if !x.is_finite() {
        return "—".into();
    }
    let text = format!("{x:.1}");
    // Rounding must not turn a few into none, nor most into all.
    if x > 0.0 && text == "0.0" {
        return "<0.1%".into();
    }
    if x < 100.0 && text == "100.0" {
        return ">99.9%".into();
    }
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text}%")
}

/// A share given on a 0–1 scale as a percentage.
pub(crate) fn fmt_share(x: f64) -> String {
    fmt_pct(x * 100.0)
}

/// A p-value: `< 0.001` below a thousandth, else three decimals.
pub(crate) fn fmt_p(p: f64) -> String {
    if !p.is_finite() {
        "—".into()
    } else if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// A timestamp for people: `2024-05-01 14:03 UTC`.
pub(crate) fn fmt_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A histogram bound of a column: a date or time for DATE and TIMESTAMP columns (epoch seconds),
/// else a number.
pub(crate) fn fmt_bound(data_type: &str, x: f64) -> String {
    let upper = data_type.to_ascii_uppercase();
    let is_date = upper == "DATE";
    if (is_date || upper.starts_with("TIMESTAMP"))
        && x.is_finite()
        && x.abs() < 1e13
        && let Some(t) = DateTime::<Utc>::from_timestamp(x.round() as i64, 0)
    {
        let format = if is_date { "%Y-%m-%d" } else { "%Y-%m-%d %H:%M" };
        return t.format(format).to_string();
    }
    fmt_num(x)
}

/// At most `max` characters of `s`, with `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
pub(crate) mod fixture {
    //! A rich synthetic report shared by the renderers' tests (and, by `include!`, the
    //! browser test).
    use crate::domain::*;
    use crate::reports::ReportMeta;
    use serde_json::json;

    include!("fixture.rs");
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_name_files() {
        for format in ReportFormat::ALL {
            assert_eq!(ReportFormat::parse(format.as_str()), Some(format));
            assert_eq!(ReportFormat::parse(&format.as_str().to_uppercase()), Some(format));
        }
        assert_eq!(ReportFormat::parse("pdf"), None);
        assert_eq!(ReportFormat::Html.file_name("customers"), "customers-report.html");
        assert_eq!(ReportFormat::Xlsx.file_name("customers.csv"), "customers-report.xlsx");
        assert_eq!(ReportFormat::Json.file_name("Q1 sales / EU"), "Q1-sales-EU-report.json");
        assert_eq!(ReportFormat::Json.file_name("../../etc/passwd"), "etc-passwd-report.json");
        assert_eq!(ReportFormat::Json.file_name("\"x\";\r\n"), "x-report.json");
        assert_eq!(ReportFormat::Html.file_name("données"), "données-report.html");
        assert_eq!(ReportFormat::Json.file_name("日本語.csv"), "日本語-report.json");
        assert!(ReportFormat::Json.file_name(&"売".repeat(80)).len() <= 112);
        assert_eq!(ReportFormat::Json.file_name("a\u{202E}b\u{200B}c"), "a-b-c-report.json");
        assert_eq!(ReportFormat::Html.file_name("   "), "dataset-report.html");
        assert_eq!(ReportFormat::Html.file_name(".csv"), "csv-report.html");
        assert!(ReportFormat::Html.content_type().starts_with("text/html"));
        assert!(ReportFormat::Json.file_name(&"x".repeat(500)).len() < 120);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(fmt_int(0), "0");
        assert_eq!(fmt_int(999), "999");
        assert_eq!(fmt_int(1000), "1,000");
        assert_eq!(fmt_int(1234567), "1,234,567");
        assert_eq!(fmt_signed(-1234), "−1,234");
        assert_eq!(fmt_num(1234567.891), "1,234,567.9");
        assert_eq!(fmt_num(12.0), "12");
        assert_eq!(fmt_num(12.345), "12.35");
        assert_eq!(fmt_num(-3.5), "−3.5");
        assert_eq!(fmt_num(0.012345), "0.0123");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(1e-7), "1.00e−7");
        assert_eq!(fmt_num(f64::NAN), "—");
        assert_eq!(fmt_pct(87.46), "87.5%");
        assert_eq!(fmt_pct(100.0), "100%");
        assert_eq!(fmt_pct(0.02), "<0.1%");
        assert_eq!(fmt_pct(0.0), "0%");
        assert_eq!(fmt_pct(99.97), ">99.9%");
        assert_eq!(fmt_share(0.25), "25%");
        assert_eq!(fmt_p(0.0001), "< 0.001");
        assert_eq!(fmt_p(0.04321), "0.043");
        assert_eq!(fmt_bound("DATE", 1_700_000_000.0), "2023-11-14");
        assert_eq!(fmt_bound("TIMESTAMP", 1_700_000_000.0), "2023-11-14 22:13");
        assert_eq!(fmt_bound("DOUBLE", 2.5), "2.5");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("é", 4), "é");
    }

    #[test]
    fn metric_labels_keep_column_names_as_written() {
        assert_eq!(metric_label("valuesChanged.E-mail Address"), "Values changed · E-mail Address");
        assert_eq!(metric_label("units.temp_c.from"), "Units · temp_c.from");
        assert_eq!(metric_label("rowCount"), "Row count");
    }

    #[test]
    fn labels_read_well() {
        assert_eq!(humanize("rowCount"), "Row count");
        assert_eq!(humanize("row_level_issue_count"), "Row level issue count");
        assert_eq!(humanize("PSI"), "PSI");
        assert_eq!(humanize("piiColumnCount"), "PII column count");
        assert_eq!(humanize("execution_time_ms"), "Execution time ms");
        let keys: Vec<String> = key_metrics(
            &serde_json::json!({"columnCount": 3, "grade": "B", "qualityScore": 80, "a": 1, "rowCount": 5, "x": {"y": 1}}),
            4,
        )
        .into_iter()
        .map(|(k, _)| k)
        .collect();
        assert_eq!(keys, ["qualityScore", "grade", "rowCount", "columnCount"]);
        assert_eq!(humanize("drift.columns"), "Drift columns");
        assert_eq!(agent_title("score-risk"), "Risk scorer");
        assert_eq!(agent_title("new-agent"), "New agent");
        let flat = flatten_metrics(&serde_json::json!({"a": 1, "b": {"c": [1, 2]}}));
        assert_eq!(flat.len(), 2);
        assert_eq!(flat[1].0, "b.c");
        assert_eq!(json_text(&flat[1].1), "1, 2");
        assert_eq!(json_text(&serde_json::json!(1234.5678)), "1,234.6");
    }

    #[test]
    fn masking_follows_the_risk_scorer_then_the_profiler() {
        let report = fixture::rich_report(3);
        let masking = Masking::of(&report);
        assert_eq!(masking.kind("email"), Some("email"));
        assert_eq!(masking.kind("ssn"), Some("ssn"));
        assert_eq!(masking.kind("full_name"), Some("person_name"));
        assert_eq!(masking.kind("home_address"), Some("other"));
        assert_eq!(masking.kind("amount"), None);
        assert_eq!(masking.value("email", "jane.doe@example.com"), "j***@e***.com");
        assert_eq!(masking.value("amount", "12"), "12");
    }

    fn drift_column(name: &str, labels: &[&str]) -> crate::domain::ColumnDrift {
        let mut column = fixture::rich_report(0).drift.unwrap().columns.remove(1);
        column.column = name.into();
        column.bins = labels
            .iter()
            .map(|l| crate::domain::DriftBin { label: l.to_string(), baseline: 0.5, current: 0.5 })
            .collect();
        column
    }

    /// A report of the drift detector alone, over personal and ordinary columns.
    pub(crate) fn drift_only_report() -> Report {
        let mut drift = fixture::rich_report(0).drift.unwrap();
        drift.columns = vec![
            drift_column("customer_email", &["jane.doe@example.com", "(other)"]),
            drift_column("customer_name", &["Jane Doe", "(other)"]),
            drift_column("Phone No", &["+44 20 7946 0958", "(other)"]),
            drift_column("country", &["United Kingdom", "(other)"]),
            drift_column("email_verified", &["true", "false"]),
        ];
        let agents =
            fixture::rich_report(0).agents.into_iter().filter(|a| a.agent_id == "drift-detector").collect();
        Report { profile: None, risk: None, drift: Some(drift), agents, cleanse: None }
    }

    #[test]
    fn masking_falls_back_to_headers_for_uncovered_drift_columns() {
        let masking = Masking::of(&drift_only_report());
        assert_eq!(masking.kind("customer_email"), Some("email"));
        assert_eq!(masking.kind("customer_name"), Some("person_name"));
        assert_eq!(masking.kind("Phone No"), Some("phone"));
        assert_eq!(masking.kind("country"), None);
        assert_eq!(masking.kind("email_verified"), None);
        assert_eq!(masking.value("customer_name", "Jane Doe"), "J*** D**");

        // A column the profile covers keeps the profile's verdict; an uncovered one falls back.
        let mut report = fixture::rich_report(0);
        let drift = report.drift.as_mut().unwrap();
        drift.columns.push(drift_column("contact_email", &["a@b.co"]));
        drift.columns.push(drift_column("country", &["France"]));
        let masking = Masking::of(&report);
        assert_eq!(masking.kind("contact_email"), Some("email"));
        assert_eq!(masking.kind("country"), None);
        assert_eq!(masking.kind("email"), Some("email"));
    }

    #[test]
    fn a_profile_alone_masks_columns_by_header_and_by_recognised_values() {
        // The profiler alone: no risk scorer's verdict, no profiler hint.
        let mut report = fixture::rich_report(0);
        report.risk = None;
        let profile = report.profile.as_mut().unwrap();
        let template = profile.columns[0].clone();
        let column = |name: &str, semantic: &str| {
            let mut c = template.clone();
            c.name = name.into();
            c.semantic_type = semantic.into();
            c.pii = None;
            c
        };
        profile.columns = vec![
            column("pan", "identifier"),
            column("contact", "email"),
            column("reach_me", "phone"),
            column("country", "text"),
        ];
        profile.columns[3].data_type = "VARCHAR".into();
        let masking = Masking::of(&report);
        assert_eq!(masking.kind("pan"), Some("credit_card"));
        assert_eq!(masking.kind("contact"), Some("email"));
        assert_eq!(masking.kind("reach_me"), Some("phone"));
        assert_eq!(masking.kind("country"), None);
        assert!(!masking.value("pan", "4111111111111111").contains("41111111"));
        // A text column no one found personal still hides what is written inside a value.
        assert_eq!(masking.value("country", "DE89370400440532013000"), "DE****************3000");
        assert_eq!(masking.value("country", "mail ann@example.com"), "mail a***@e***.com");
        assert_eq!(masking.value("country", "France"), "France");
    }

    #[test]
    fn scrub_masks_raw_values_of_personal_columns_in_messages() {
        let mut report = fixture::rich_report(0);
        let email = report.profile.as_mut().unwrap().columns.iter_mut().find(|c| c.name == "email").unwrap();
        email.top_values =
            vec![crate::domain::ValueCount { value: Some("jane.doe@example.com".into()), count: 9 }];
        let masking = Masking::of(&report);
        let message = "every non-null value (9 of 9) is \"jane.doe@example.com\"";
        let scrubbed = masking.scrub(Some("email"), message);
        assert_eq!(scrubbed, "every non-null value (9 of 9) is \"j***@e***.com\"");
        // The minimum is known too; other columns' messages are left alone.
        assert!(!masking.scrub(Some("email"), "min aaron@example.org").contains("aaron@"));
        assert_eq!(masking.scrub(Some("country"), "is \"France\""), "is \"France\"");
        assert_eq!(masking.scrub(None, message), message);
    }

    #[test]
    fn messages_and_drift_categories_of_other_columns_hide_what_is_written_inside() {
        let mut report = fixture::rich_report(0);
        report.risk = None;
        let profile = report.profile.as_mut().unwrap();
        let mut memo = profile.columns[0].clone();
        memo.name = "memo".into();
        memo.data_type = "VARCHAR".into();
        memo.semantic_type = "text".into();
        memo.pii = None;
        let quoted = "call john at john.doe@example.com or DE89370400440532013000";
        memo.top_values = vec![crate::domain::ValueCount { value: Some(quoted.into()), count: 100 }];
        memo.min = Some(quoted.into());
        memo.max = Some(quoted.into());
        profile.columns.push(memo);
        let masking = Masking::of(&report);
        assert_eq!(masking.kind("memo"), None);
        // The profiler's CONSTANT_COLUMN quotes the single value of a column not found personal.
        let message = format!("every non-null value (100 of 100) is {quoted:?}");
        assert_eq!(
            masking.scrub(Some("memo"), &message),
            "every non-null value (100 of 100) is \"call john at j***@e***.com or DE****************3000\""
        );
        // Drift categories of a column with no text profile (a drift-only run, a column of
        // numbers now and of notes in the baseline): the personal data inside is masked,
        // numbers are shown.
        // Quoted as the alert quotes it, escapes and all.
        let noted = "Ask \"Jane\":\tjane@x.com";
        let mut with_quotes = report.clone();
        let memo =
            with_quotes.profile.as_mut().unwrap().columns.iter_mut().find(|c| c.name == "memo").unwrap();
        memo.top_values = vec![crate::domain::ValueCount { value: Some(noted.into()), count: 100 }];
        let message = format!("every non-null value (100 of 100) is {noted:?}");
        let scrubbed = Masking::of(&with_quotes).scrub(Some("memo"), &message);
        assert!(!scrubbed.contains("jane@x.com"), "{scrubbed}");
        assert!(scrubbed.contains("j***@x***.com"), "{scrubbed}");
        assert_eq!(masking.category("info", "reach me at someone1@example.org"), "reach me at s***@e***.org");
        assert_eq!(masking.category("info", "1234567890"), "1234567890");
        assert_eq!(masking.category("info", "n/a"), "n/a");
        assert_eq!(masking.category("memo", quoted), "call john at j***@e***.com or DE****************3000");
    }
}
