//! What a prompt may carry about a dataset: the report's numbers and findings, with every
//! value of a column that holds personal data masked, and no rows beyond a small masked
//! sample. Everything a model is told comes through here.

use serde_json::{Map, Value, json};

use crate::domain::{ColumnProfile, Report};
use crate::reports::Masking;

/// Columns a prompt describes at most (the rest are counted, not listed).
const MAX_COLUMNS: usize = 80;
/// Alerts a prompt lists at most.
const MAX_ALERTS: usize = 50;
/// Top values a prompt lists per column.
const TOP_VALUES: usize = 5;

/// Personal data to mask in what is sent to a model.
pub struct Privacy {
    masking: Masking,
    /// Whether the profiler or the risk scorer looked at every column's values. Without that,
    /// only headers tell personal data apart, which is not enough to let rows out.
    values_checked: bool,
}

impl Privacy {
    pub fn of(report: Option<&Report>) -> Privacy {
        Privacy::with_known(report, &std::collections::HashMap::new())
    }

    /// [`Privacy::of`] with the columns other runs on the same version found personal
    /// (column → kind, [`crate::jobs::Jobs::personal_columns`]) masked too.
    pub fn with_known(report: Option<&Report>, known: &std::collections::HashMap<String, String>) -> Privacy {
        let empty = Report { profile: None, agents: Vec::new(), drift: None, risk: None, cleanse: None };
        let values_checked = report.is_some_and(|r| r.profile.is_some() || r.risk.is_some());
        Privacy { masking: Masking::with_known(report.unwrap_or(&empty), known), values_checked }
    }

    /// Rows (samples, query results) may reach a prompt only when the values of every column
    /// were checked for personal data.
    pub fn rows_allowed(&self) -> bool {
        self.values_checked
    }

    /// The kind of personal data `column` holds: found by the agents, else named by its
    /// header (`email`, `phone`…) — a column the report does not cover is masked by its name.
    pub fn kind(&self, column: &str) -> Option<String> {
        self.masking
            .kind(column)
            .map(String::from)
            .or_else(|| crate::engine::pii::header_kind(column).map(String::from))
    }

    /// `value` of `column` as a prompt may show it: masked as its column's kind, or with the
    /// personal data written inside it masked ([`crate::domain::mask_embedded`]).
    pub fn value(&self, column: &str, value: &str) -> String {
        match self.kind(column) {
            Some(kind) => crate::domain::mask(&kind, value),
            None => crate::domain::mask_embedded(value).into_owned(),
        }
    }

    /// A statistic of `column` that is (or is near) one of its values — a median, a quartile,
    /// a mean — as a prompt may show it: masked, as text, when written out it holds what
    /// [`Privacy::value`] masks in the column's own values (a median of phone numbers stored
    /// as integers is one of those numbers), else the number.
    fn number(&self, column: &str, x: f64) -> Value {
        // Its whole part decides (nine digits and more: an identifier's): a mean's long
        // fraction, `50.333333333333336`, is no phone number.
        if !x.is_finite() || x.abs() < 1e8 {
            return json!(x);
        }
        let written = x.to_string();
        let whole = written.split('.').next().unwrap_or(&written);
        let shown = self.value(column, whole);
        if shown == whole { json!(x) } else { json!(written.replacen(whole, &shown, 1)) }
    }

    /// Such a statistic written for an answer in words (which goes back to a model as history):
    /// masked as [`Privacy::number`] masks it, else as reports write numbers (`1,234.5`).
    pub fn statistic(&self, column: &str, x: f64) -> String {
        match self.number(column, x) {
            Value::String(masked) => masked,
            _ => crate::reports::fmt_num(x),
        }
    }

    /// Free text about `column` with the column's raw values masked.
    pub fn scrub(&self, column: Option<&str>, text: &str) -> String {
        self.masking.scrub(column, text)
    }

    /// A JSON row (a preview row) with personal values masked.
    pub fn row(&self, row: &Value) -> Value {
        match row {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = match (v, self.kind(k)) {
                            (Value::String(s), None) => {
                                Value::from(crate::domain::mask_embedded(s).into_owned())
                            }
                            // A struct's fields and a list's items (a JSON file's nested
                            // records) are masked as the SQL view masks their text.
                            (Value::Array(_) | Value::Object(_), None) => nested(v),
                            (Value::Null, _) | (_, None) => v.clone(),
                            (Value::String(s), Some(kind)) => Value::from(crate::domain::mask(&kind, s)),
                            (other, Some(kind)) => {
                                Value::from(crate::domain::mask(&kind, &other.to_string()))
                            }
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// One column's profile for a prompt.
    pub fn column(&self, c: &ColumnProfile) -> Value {
        let mut out = Map::new();
        out.insert("name".into(), json!(c.name));
        out.insert("type".into(), json!(c.data_type));
        out.insert("semanticType".into(), json!(c.semantic_type));
        out.insert("nullCount".into(), json!(c.null_count));
        out.insert("nullPercent".into(), json!(c.null_percent));
        out.insert("distinctCount".into(), json!(c.distinct_count));
        out.insert("uniquePercent".into(), json!(c.unique_percent));
        let personal = self.kind(&c.name);
        if let Some(kind) = &personal {
            out.insert("personalData".into(), json!(kind));
        }
        let bound = |v: &Option<String>| v.as_deref().map(|v| self.value(&c.name, v));
        out.insert("min".into(), json!(bound(&c.min)));
        out.insert("max".into(), json!(bound(&c.max)));
        // Numeric summaries of a personal column (dates of birth, postcodes) reveal it too.
        if personal.is_none() {
            for (key, value, a_value) in [
                ("mean", c.mean, true),
                ("stddev", c.stddev, false),
                ("median", c.median, true),
                ("q25", c.q25, true),
                ("q75", c.q75, true),
                ("skewness", c.skewness, false),
                ("kurtosis", c.kurtosis, false),
            ] {
                if let Some(x) = value {
                    out.insert(key.into(), if a_value { self.number(&c.name, x) } else { json!(x) });
                }
            }
        }
        for (key, value) in [
            ("zeros", c.zeros),
            ("negatives", c.negatives),
            ("outlierCount", c.outlier_count),
            ("minLength", c.min_length),
            ("maxLength", c.max_length),
        ] {
            if let Some(x) = value {
                out.insert(key.into(), json!(x));
            }
        }
        out.insert("invalidCount".into(), json!(c.invalid_count));
        out.insert("untrimmedCount".into(), json!(c.untrimmed_count));
        let top: Vec<Value> = c
            .top_values
            .iter()
            .take(TOP_VALUES)
            .map(|v| json!({ "value": v.value.as_deref().map(|x| self.value(&c.name, x)), "count": v.count }))
            .collect();
        out.insert("topValues".into(), Value::Array(top));
        Value::Object(out)
    }

    /// Every alert of the report, masked.
    pub fn alerts(&self, report: &Report) -> Vec<Value> {
        report
            .agents
            .iter()
            .flat_map(|a| a.alerts.iter().map(move |f| (a, f)))
            .map(|(agent, f)| {
                json!({
                    "agent": agent.agent_id,
                    "code": f.code,
                    "severity": f.severity,
                    "column": f.column,
                    "message": self.scrub(f.column.as_deref(), &f.message),
                })
            })
            .collect()
    }

    /// The report as a prompt may carry it: profile numbers, alerts, each agent's summary
    /// metrics and recommendations, drift and risk in brief. Values are masked.
    pub fn report(&self, report: &Report, dataset: &str) -> Value {
        let mut out = Map::new();
        out.insert("dataset".into(), json!(crate::domain::mask_embedded(dataset)));
        if let Some(p) = &report.profile {
            out.insert(
                "profile".into(),
                json!({
                    "rowCount": p.row_count,
                    "columnCount": p.column_count,
                    "duplicateRowCount": p.duplicate_row_count,
                    "quality": {
                        "score": p.quality.score,
                        "grade": p.quality.grade,
                        "completeness": p.quality.completeness,
                        "validity": p.quality.validity,
                        "uniqueness": p.quality.uniqueness,
                        "consistency": p.quality.consistency,
                    },
                    "columns": p.columns.iter().take(MAX_COLUMNS).map(|c| self.column(c)).collect::<Vec<_>>(),
                    "columnsNotListed": p.columns.len().saturating_sub(MAX_COLUMNS),
                }),
            );
        }
        // Critical alerts first; a prompt lists at most MAX_ALERTS of them and counts them all.
        let mut alerts = self.alerts(report);
        alerts.sort_by_key(|a| a["severity"] != "critical");
        out.insert("alertCount".into(), json!(alerts.len()));
        alerts.truncate(MAX_ALERTS);
        out.insert("alerts".into(), Value::Array(alerts));
        let agents: Vec<Value> = report
            .agents
            .iter()
            .map(|a| {
                json!({
                    "agentId": a.agent_id,
                    "status": a.status,
                    "summaryMetrics": self.metrics(&a.summary_metrics),
                    "recommendations": a.recommendations.iter()
                        .map(|r| self.scrub(r.column.as_deref(), &r.message)).collect::<Vec<_>>(),
                })
            })
            .collect();
        out.insert("agents".into(), Value::Array(agents));
        if let Some(drift) = &report.drift {
            out.insert(
                "drift".into(),
                json!({
                    "driftedCount": drift.drifted_count,
                    "rowCountChange": drift.row_count_change,
                    "driftedColumns": drift.columns.iter().filter(|c| c.verdict == "drift").map(|c| &c.column).collect::<Vec<_>>(),
                }),
            );
        }
        if let Some(risk) = &report.risk {
            out.insert(
                "risk".into(),
                json!({
                    "riskScore": risk.risk_score,
                    "riskLevel": risk.risk_level,
                    "personalColumns": risk.columns.iter()
                        .map(|c| json!({ "column": c.column, "kind": c.kind, "share": c.share }))
                        .collect::<Vec<_>>(),
                }),
            );
        }
        Value::Object(out)
    }

    /// An agent's summary metrics as a prompt may carry them: the scalar ones only. Lists and
    /// nested details (drift bins labelled with category values, test definitions, risk
    /// examples) can hold raw values; the report's brief `drift` and `risk` sections above
    /// carry what a summary needs of them.
    fn metrics(&self, metrics: &Value) -> Value {
        match metrics {
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter(|(_, v)| match v {
                        Value::String(s) => s.chars().count() <= 200,
                        Value::Number(_) | Value::Bool(_) | Value::Null => true,
                        Value::Array(_) | Value::Object(_) => false,
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            _ => Value::Object(Map::new()),
        }
    }
}

/// A value inside a struct or list of a column no rule found personal, with the personal data
/// written in it masked ([`crate::domain::mask_embedded`]): text, and numbers whose digits
/// make a long run (a mobile number stored as a number in a JSON record), as the co-pilot's SQL
/// view masks a struct's text.
fn nested(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::from(crate::domain::mask_embedded(s).into_owned()),
        Value::Number(n) => {
            let written = n.to_string();
            match crate::domain::mask_embedded(&written) {
                std::borrow::Cow::Borrowed(_) => value.clone(),
                std::borrow::Cow::Owned(masked) => Value::from(masked),
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(nested).collect()),
        Value::Object(fields) => Value::Object(fields.iter().map(|(k, v)| (k.clone(), nested(v))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Profile, Quality, ValueCount};

    fn column(name: &str, values: &[&str]) -> ColumnProfile {
        let mut c: ColumnProfile = serde_json::from_value(json!({
            "name": name, "data_type": "VARCHAR", "semantic_type": "text", "null_count": 0, "null_percent": 0.0,
            "distinct_count": 3, "unique_percent": 100.0, "min": null, "max": null, "mean": null, "stddev": null,
            "median": null, "q25": null, "q75": null, "skewness": null, "kurtosis": null, "zeros": null,
            "negatives": null, "min_length": null, "max_length": null, "mean_length": null, "outlier_count": null,
            "invalid_count": 0, "untrimmed_count": 0, "top_values": [], "histogram": [], "pii": null,
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        c.top_values = values.iter().map(|v| ValueCount { value: Some(v.to_string()), count: 1 }).collect();
        c.min = values.first().map(|v| v.to_string());
        c
    }

    #[test]
    fn personal_values_never_reach_a_prompt() {
        let mut email = column("contact", &["ann.lee@example.com", "bo@example.org"]);
        email.pii = Some("email".into());
        let city = column("city", &["Paris", "Lyon"]);
        let report = Report {
            profile: Some(Profile {
                row_count: 2,
                column_count: 2,
                duplicate_row_count: 0,
                quality: Quality {
                    score: 90.0,
                    grade: "A".into(),
                    completeness: 100.0,
                    validity: 90.0,
                    uniqueness: 100.0,
                    consistency: 100.0,
                },
                columns: vec![email, city],
                correlations: Vec::new(),
                alerts: Vec::new(),
            }),
            agents: Vec::new(),
            drift: None,
            risk: None,
            cleanse: None,
        };
        let privacy = Privacy::of(Some(&report));
        let text = privacy.report(&report, "people.csv").to_string();
        assert!(!text.contains("ann.lee@example.com") && !text.contains("bo@example.org"), "{text}");
        assert!(text.contains("Paris"), "{text}");
        // A column the report does not cover is masked by its header.
        let row = privacy.row(&json!({ "phone_number": "+1 415 555 2671", "city": "Lyon" }));
        assert_ne!(row["phone_number"], "+1 415 555 2671");
        assert_eq!(row["city"], "Lyon");
        // Personal data written inside a column no agent found personal is masked too.
        let note = "Reached Maria at maria.garcia@mailhost.com / +44 20 7946 0010";
        let row = privacy.row(&json!({ "notes": note }));
        assert_eq!(row["notes"], "Reached Maria at m***@m***.com / +** ** **** **10");
        let notes = column("notes", &[note]);
        let text = privacy.column(&notes).to_string();
        assert!(!text.contains("maria.garcia") && !text.contains("7946"), "{text}");
        // Numbers stored as integers that no rule recognised: their values are masked as
        // long digit runs, and so are the statistics that are values of theirs.
        let mut numbers = column("contact_no", &["4155550123", "4155550187"]);
        numbers.data_type = "BIGINT".into();
        numbers.max = Some("4155550187".into());
        numbers.median = Some(4155550155.0);
        numbers.q25 = Some(4155550139.0);
        numbers.q75 = Some(4155550171.0);
        numbers.mean = Some(4155550155.5);
        numbers.stddev = Some(32.0);
        let text = privacy.column(&numbers).to_string();
        for clear in ["415555", "4.15555"] {
            assert!(!text.contains(clear), "{text}");
        }
        assert!(text.contains("\"stddev\":32.0"), "{text}");
        // Amounts keep their statistics.
        let mut amounts = column("amount", &["12.5", "80"]);
        amounts.data_type = "DOUBLE".into();
        amounts.median = Some(41.25);
        let text = privacy.column(&amounts).to_string();
        assert!(text.contains("\"median\":41.25"), "{text}");
        amounts.mean = Some(50.333333333333336);
        amounts.median = Some(1234567.89);
        let text = privacy.column(&amounts).to_string();
        assert!(
            text.contains("\"mean\":50.333333333333336") && text.contains("\"median\":1234567.89"),
            "{text}"
        );
        // So are the statistics written in an answer in words (it goes back as history).
        assert!(!privacy.statistic("contact_no", 4155550136.0).contains("4155"));
        assert_eq!(privacy.statistic("amount", 1234.5), crate::reports::fmt_num(1234.5));
        // Records nested in a column (a JSON file's structs and lists) are masked inside.
        let row = privacy.row(&json!({
            "customer": { "contact": "zoe.k0@nested-mail.net", "mobile": 4915112345600_i64, "card": "5500 0000 0000 1000", "visits": 3 },
            "tags": ["ssn 300-44-7000", "vip"],
        }));
        let text = row.to_string();
        for clear in ["zoe.k0", "49151123", "5500 0000", "300-44-7000"] {
            assert!(!text.contains(clear), "{clear}: {text}");
        }
        assert_eq!(row["customer"]["visits"], 3, "{text}");
        assert_eq!(row["tags"][1], "vip", "{text}");
    }
}
