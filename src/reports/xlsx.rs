//! The Excel rendering: a Summary sheet, a Columns sheet (with a profile), Drift and PII sheets
//! (when present), then one sheet per agent. Values of personal-data columns are masked: top
//! values, minimums and maximums, drift categories and values quoted in messages; their median
//! and quartiles (often values themselves) are left out. Unlike the HTML page, the workbook
//! keeps every histogram bin, drift category and top value.
//!
//! The sheets are small, so they are built in memory (the crate's `constant_memory` feature
//! only matters for worksheets created with `*_with_constant_memory`, which stream rows to a
//! temporary file and cannot go back to a row; none is used here).

use std::collections::HashSet;

use rust_xlsxwriter::{ColNum, Color, Format, FormatAlign, FormatBorder, RowNum, Workbook, Worksheet};

use super::{
    Masking, ReportMeta, agent_title, flatten_metrics, fmt_time, json_text, key_metrics, metric_label,
    truncate,
};
use crate::domain::{AgentResult, DriftReport, Finding, Profile, Report, RiskReport};

/// Excel's limit on a cell's text, in UTF-16 units (an emoji counts two), with a margin.
const MAX_CELL_UNITS: usize = 32_000;
/// Row-level issues written per agent (they are capped by the agents already).
const MAX_ROW_ISSUES: usize = 10_000;

/// `text` cut to what an Excel cell holds ([`MAX_CELL_UNITS`] UTF-16 units), ending in `…`
/// when cut.
fn cell_text(text: &str) -> String {
    if text.encode_utf16().count() <= MAX_CELL_UNITS {
        return text.to_string();
    }
    let mut units = 0;
    let mut out: String = text
        .chars()
        .take_while(|c| {
            units += c.len_utf16();
            units < MAX_CELL_UNITS
        })
        .collect();
    out.push('…');
    out
}

struct Formats {
    title: Format,
    section: Format,
    header: Format,
    key: Format,
    int: Format,
    dec: Format,
    pct: Format,
    share: Format,
    text: Format,
}

impl Formats {
    fn new() -> Formats {
        let top = |f: Format| f.set_align(FormatAlign::Top);
        Formats {
            title: Format::new().set_bold().set_font_size(14).set_font_color(Color::RGB(0x1F2A48)),
            section: Format::new().set_bold().set_font_size(12).set_font_color(Color::RGB(0x3B5BDB)),
            header: Format::new()
                .set_bold()
                .set_background_color(Color::RGB(0xE8ECF4))
                .set_border_bottom(FormatBorder::Thin)
                .set_border_bottom_color(Color::RGB(0xB8C0CC)),
            key: top(Format::new().set_bold()),
            int: top(Format::new().set_num_format("#,##0")),
            dec: top(Format::new().set_num_format("#,##0.000")),
            pct: top(Format::new().set_num_format("0.0")),
            share: top(Format::new().set_num_format("0.0%")),
            text: top(Format::new()),
        }
    }
}

/// A worksheet being written, remembering each column's widest text for the column widths.
struct Sheet<'f> {
    ws: Worksheet,
    f: &'f Formats,
    widths: Vec<usize>,
    row: RowNum,
}

impl<'f> Sheet<'f> {
    fn new(name: &str, f: &'f Formats) -> anyhow::Result<Sheet<'f>> {
        let mut ws = Worksheet::new();
        ws.set_name(name)?;
        Ok(Sheet { ws, f, widths: Vec::new(), row: 0 })
    }

    fn seen(&mut self, col: ColNum, chars: usize) {
        let i = usize::from(col);
        if self.widths.len() <= i {
            self.widths.resize(i + 1, 0);
        }
        self.widths[i] = self.widths[i].max(chars);
    }

    fn text_with(&mut self, col: ColNum, text: &str, format: &Format) -> anyhow::Result<()> {
        let text = cell_text(text);
        self.seen(col, text.chars().count());
        self.ws.write_string_with_format(self.row, col, text, format)?;
        Ok(())
    }

    fn text(&mut self, col: ColNum, text: &str) -> anyhow::Result<()> {
        let f = self.f;
        self.text_with(col, text, &f.text)
    }

    fn num(&mut self, col: ColNum, x: f64, format: &Format) -> anyhow::Result<()> {
        if !x.is_finite() {
            return self.text(
                col,
                if x.is_nan() {
                    "NaN"
                } else if x > 0.0 {
                    "inf"
                } else {
                    "-inf"
                },
            );
        }
        self.seen(col, format!("{x:.3}").len() + 2);
        self.ws.write_number_with_format(self.row, col, x, format)?;
        Ok(())
    }

    fn int(&mut self, col: ColNum, n: u64) -> anyhow::Result<()> {
        let f = self.f;
        self.num(col, n as f64, &f.int)
    }

    fn dec(&mut self, col: ColNum, x: Option<f64>) -> anyhow::Result<()> {
        let f = self.f;
        match x {
            Some(x) => self.num(col, x, &f.dec),
            None => Ok(()),
        }
    }

    fn opt_int(&mut self, col: ColNum, n: Option<u64>) -> anyhow::Result<()> {
        match n {
            Some(n) => self.int(col, n),
            None => Ok(()),
        }
    }

    /// A JSON value: numbers as numbers, the rest as text.
    fn json(&mut self, col: ColNum, value: &serde_json::Value) -> anyhow::Result<()> {
        let f = self.f;
        match value {
            serde_json::Value::Number(n) => match (n.as_u64(), n.as_f64()) {
                (Some(u), _) => self.int(col, u),
                (None, Some(x)) if x.fract() == 0.0 => self.num(col, x, &f.int),
                (None, Some(x)) => self.num(col, x, &f.dec),
                _ => self.text(col, &n.to_string()),
            },
            serde_json::Value::Null => Ok(()),
            other => self.text(col, &json_text(other)),
        }
    }

    fn title(&mut self, text: &str) -> anyhow::Result<()> {
        let f = self.f;
        let text = cell_text(text);
        // A title spills over the next cells: it does not widen its column.
        self.ws.write_string_with_format(self.row, 0, text, &f.title)?;
        self.ws.set_row_height(self.row, 22)?;
        self.row += 1;
        Ok(())
    }

    fn section(&mut self, text: &str) -> anyhow::Result<()> {
        let f = self.f;
        self.ws.write_string_with_format(self.row, 0, cell_text(text), &f.section)?;
        self.row += 1;
        Ok(())
    }

    fn header(&mut self, names: &[&str]) -> anyhow::Result<()> {
        let f = self.f;
        for (i, name) in names.iter().enumerate() {
            let col = ColNum::try_from(i)?;
            self.text_with(col, name, &f.header)?;
        }
        self.row += 1;
        Ok(())
    }

    /// A bold key and a text value.
    fn pair(&mut self, key: &str, value: &str) -> anyhow::Result<()> {
        let f = self.f;
        self.text_with(0, key, &f.key)?;
        self.text(1, value)?;
        self.row += 1;
        Ok(())
    }

    /// A bold key and a number.
    fn pair_num(&mut self, key: &str, value: f64, format: &Format) -> anyhow::Result<()> {
        let f = self.f;
        self.text_with(0, key, &f.key)?;
        self.num(1, value, format)?;
        self.row += 1;
        Ok(())
    }

    fn next(&mut self) {
        self.row += 1;
    }

    fn finish(mut self, freeze_rows: RowNum, freeze_cols: ColNum) -> anyhow::Result<Worksheet> {
        for (i, chars) in self.widths.iter().enumerate() {
            let col = ColNum::try_from(i)?;
            self.ws.set_column_width(col, (*chars as f64 + 2.0).clamp(8.0, 70.0))?;
        }
        if freeze_rows > 0 || freeze_cols > 0 {
            self.ws.set_freeze_panes(freeze_rows, freeze_cols)?;
        }
        Ok(self.ws)
    }
}

/// Excel's rules for sheet names: 1–31 UTF-16 units, none of `[]:*?/\`, no apostrophe at
/// either end, unique regardless of case ("History" is reserved).
struct SheetNames {
    taken: HashSet<String>,
}

impl SheetNames {
    fn new() -> SheetNames {
        SheetNames { taken: HashSet::from(["history".to_string()]) }
    }

    fn fit(s: &str, max_units: usize) -> String {
        let mut out = String::new();
        let mut units = 0;
        for c in s.chars() {
            let c =
                if matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\') || c.is_control() { '-' } else { c };
            if units + c.len_utf16() > max_units {
                break;
            }
            units += c.len_utf16();
            out.push(c);
        }
        out.trim().trim_matches('\'').trim().to_string()
    }

    fn claim(&mut self, wanted: &str) -> String {
        let base = Self::fit(wanted, 31);
        let base = if base.is_empty() { "Sheet".to_string() } else { base };
        let mut name = base.clone();
        let mut n = 2;
        while self.taken.contains(&name.to_lowercase()) {
            let suffix = format!(" ({n})");
            name = format!("{}{suffix}", Self::fit(&base, 31 - suffix.len()));
            n += 1;
        }
        self.taken.insert(name.to_lowercase());
        name
    }
}

pub(super) fn render(meta: &ReportMeta, report: &Report) -> anyhow::Result<Vec<u8>> {
    let f = Formats::new();
    let masking = Masking::with_known(report, &meta.personal);
    let mut names = SheetNames::new();
    let mut workbook = Workbook::new();

    workbook.push_worksheet(summary(&mut names, &f, meta, report)?);
    if let Some(profile) = &report.profile {
        workbook.push_worksheet(columns(&mut names, &f, profile, &masking)?);
    }
    if let Some(drift) = &report.drift {
        workbook.push_worksheet(drift_sheet(&mut names, &f, drift, &masking)?);
    }
    if let Some(risk) = &report.risk {
        workbook.push_worksheet(pii_sheet(&mut names, &f, risk)?);
    }
    for agent in &report.agents {
        workbook.push_worksheet(agent_sheet(&mut names, &f, agent, &masking)?);
    }
    let properties = rust_xlsxwriter::DocProperties::new()
        .set_title(format!("Data quality report – {}", meta.dataset_name))
        .set_company("Agensium");
    workbook.set_properties(&properties);
    Ok(workbook.save_to_buffer()?)
}

fn summary(
    names: &mut SheetNames,
    f: &Formats,
    meta: &ReportMeta,
    report: &Report,
) -> anyhow::Result<Worksheet> {
    let mut s = Sheet::new(&names.claim("Summary"), f)?;
    s.title(&format!("Data quality report – {}", meta.dataset_name))?;
    s.next();
    s.header(&["Field", "Value"])?;
    s.pair("Dataset", &meta.dataset_name)?;
    if let Some(baseline) = &meta.baseline_name {
        s.pair("Baseline", baseline)?;
    }
    s.pair("Job", &meta.job_id)?;
    s.pair("Tool", &meta.tool_id)?;
    s.pair("Created", &fmt_time(&meta.created_at))?;
    if let Some(finished) = &meta.finished_at {
        s.pair("Finished", &fmt_time(finished))?;
    }
    if let Some(profile) = &report.profile {
        let q = &profile.quality;
        s.pair_num("Quality score", q.score, &f.pct)?;
        s.pair("Grade", &q.grade)?;
        s.pair_num("Completeness (%)", q.completeness, &f.pct)?;
        s.pair_num("Validity (%)", q.validity, &f.pct)?;
        s.pair_num("Uniqueness (%)", q.uniqueness, &f.pct)?;
        s.pair_num("Consistency (%)", q.consistency, &f.pct)?;
        s.pair_num("Rows", profile.row_count as f64, &f.int)?;
        s.pair_num("Columns", profile.column_count as f64, &f.int)?;
        s.pair_num("Duplicate rows", profile.duplicate_row_count as f64, &f.int)?;
    }
    if report.profile.is_some() || !report.agents.is_empty() {
        // Every agent's, as the summary counts them.
        s.pair_num("Alerts", super::all_alerts(report).len() as f64, &f.int)?;
    }
    if let Some(drift) = &report.drift {
        s.pair_num("Baseline rows", drift.baseline_row_count as f64, &f.int)?;
        s.pair_num("Row count change", drift.row_count_change as f64, &f.int)?;
        s.pair_num("Drifted columns", drift.drifted_count as f64, &f.int)?;
    }
    if let Some(risk) = &report.risk {
        s.pair_num("Risk score", risk.risk_score, &f.pct)?;
        s.pair("Risk level", &risk.risk_level)?;
        s.pair_num("Personal-data columns", risk.columns.len() as f64, &f.int)?;
    }
    if !report.agents.is_empty() {
        s.next();
        s.section("Agents")?;
        s.header(&[
            "Agent",
            "Status",
            "Time (ms)",
            "Alerts",
            "Issues",
            "Recommendations",
            "Row-level issues",
            "Key metrics",
        ])?;
        for agent in &report.agents {
            s.text(0, &format!("{} ({})", agent_title(&agent.agent_id), agent.agent_id))?;
            s.text(1, &agent.status)?;
            s.num(2, agent.execution_time_ms, &f.int)?;
            s.int(3, agent.alerts.len() as u64)?;
            s.int(4, agent.issues.len() as u64)?;
            s.int(5, agent.recommendations.len() as u64)?;
            s.int(6, agent.row_level_issue_count.max(agent.row_level_issues.len() as u64))?;
            let metrics: Vec<String> = key_metrics(&agent.summary_metrics, 8)
                .into_iter()
                .map(|(k, v)| format!("{}: {}", metric_label(&k), json_text(&v)))
                .collect();
            s.text(7, &truncate(&metrics.join("; "), 300))?;
            s.next();
        }
    }
    s.finish(1, 0)
}

fn columns(
    names: &mut SheetNames,
    f: &Formats,
    profile: &Profile,
    masking: &Masking,
) -> anyhow::Result<Worksheet> {
    let mut s = Sheet::new(&names.claim("Columns"), f)?;
    s.header(&[
        "Column",
        "Data type",
        "Semantic type",
        "Personal data",
        "Nulls",
        "Null %",
        "Distinct",
        "Unique %",
        "Min",
        "Max",
        "Mean",
        "Std dev",
        "Median",
        "Q25",
        "Q75",
        "Skewness",
        "Kurtosis",
        "Zeros",
        "Negatives",
        "Outliers",
        "Min length",
        "Max length",
        "Mean length",
        "Invalid",
        "Untrimmed",
        "Top values",
    ])?;
    for c in &profile.columns {
        s.text(0, &c.name)?;
        s.text(1, &c.data_type)?;
        s.text(2, &c.semantic_type)?;
        s.text(3, masking.kind(&c.name).map(|k| c.pii.as_deref().unwrap_or(k)).unwrap_or(""))?;
        s.int(4, c.null_count)?;
        s.num(5, c.null_percent, &f.pct)?;
        s.int(6, c.distinct_count)?;
        s.num(7, c.unique_percent, &f.pct)?;
        for (col, bound) in [(8, c.min.as_deref()), (9, c.max.as_deref())] {
            let Some(shown) = masking.bound(c, bound) else { continue };
            match shown.parse::<f64>() {
                Ok(x)
                    if c.mean.is_some()
                        && masking.kind(&c.name).is_none()
                        && x.is_finite()
                        && exact_in_excel(&shown) =>
                {
                    s.num(col, x, &f.dec)?
                }
                _ => s.text(col, &truncate(&shown, 100))?,
            }
        }
        // The median and quartiles of personal data are often values of it.
        let personal = masking.kind(&c.name).is_some();
        let unless_personal = |x: Option<f64>| x.filter(|_| !personal);
        for (col, x) in [
            (10, unless_personal(c.mean)),
            (11, c.stddev),
            (12, unless_personal(c.median)),
            (13, unless_personal(c.q25)),
            (14, unless_personal(c.q75)),
            (15, c.skewness),
            (16, c.kurtosis),
        ] {
            s.dec(col, x)?;
        }
        s.opt_int(17, c.zeros)?;
        s.opt_int(18, c.negatives)?;
        s.opt_int(19, c.outlier_count)?;
        s.opt_int(20, c.min_length)?;
        s.opt_int(21, c.max_length)?;
        s.dec(22, c.mean_length)?;
        s.int(23, c.invalid_count)?;
        s.int(24, c.untrimmed_count)?;
        let top: Vec<String> = c
            .top_values
            .iter()
            .map(|v| {
                let value = match &v.value {
                    Some(value) => truncate(&masking.value(&c.name, value), 60),
                    None => "(null)".into(),
                };
                format!("{value} ({})", v.count)
            })
            .collect();
        // Keep the column readable: the widest cell sets the width (capped anyway).
        s.text(25, &truncate(&top.join("; "), 1000))?;
        s.next();
    }
    s.finish(1, 1)
}

fn drift_sheet(
    names: &mut SheetNames,
    f: &Formats,
    drift: &DriftReport,
    masking: &Masking,
) -> anyhow::Result<Worksheet> {
    let mut s = Sheet::new(&names.claim("Drift"), f)?;
    s.header(&[
        "Column",
        "Kind",
        "Test",
        "Baseline n",
        "Current n",
        "Statistic",
        "p-value",
        "Degrees of freedom",
        "PSI",
        "JS divergence",
        "Verdict",
    ])?;
    for c in &drift.columns {
        s.text(0, &c.column)?;
        s.text(1, &c.kind)?;
        s.text(2, &c.test)?;
        s.int(3, c.baseline_count)?;
        s.int(4, c.current_count)?;
        s.dec(5, c.statistic)?;
        if let Some(p) = c.p_value {
            s.num(6, p, &f.text)?;
        }
        s.opt_int(7, c.degrees_of_freedom)?;
        s.dec(8, c.psi)?;
        s.dec(9, c.js_divergence)?;
        s.text(10, &c.verdict)?;
        s.next();
    }
    s.next();
    s.section("Row count")?;
    s.pair_num("Baseline rows", drift.baseline_row_count as f64, &f.int)?;
    s.pair_num("Current rows", drift.current_row_count as f64, &f.int)?;
    s.pair_num("Change", drift.row_count_change as f64, &f.int)?;
    if let Some(pct) = drift.row_count_change_percent {
        s.pair_num("Change (%)", pct, &f.pct)?;
    }
    s.pair_num("Drifted columns", drift.drifted_count as f64, &f.int)?;

    s.next();
    s.section("Schema changes")?;
    let schema = &drift.schema;
    if schema.added.is_empty() && schema.removed.is_empty() && schema.retyped.is_empty() {
        s.text(0, "None")?;
        s.next();
    } else {
        s.header(&["Change", "Column", "Baseline type", "Current type"])?;
        for c in &schema.added {
            s.text(0, "added")?;
            s.text(1, &c.name)?;
            s.text(3, &c.data_type)?;
            s.next();
        }
        for c in &schema.removed {
            s.text(0, "removed")?;
            s.text(1, &c.name)?;
            s.text(2, &c.data_type)?;
            s.next();
        }
        for c in &schema.retyped {
            s.text(0, "retyped")?;
            s.text(1, &c.name)?;
            s.text(2, &c.baseline_type)?;
            s.text(3, &c.current_type)?;
            s.next();
        }
    }

    if drift.columns.iter().any(|c| !c.bins.is_empty()) {
        s.next();
        s.section("Distributions (share of non-null values)")?;
        s.header(&["Column", "Bin or category", "Baseline share", "Current share"])?;
        for c in &drift.columns {
            for bin in &c.bins {
                s.text(0, &c.column)?;
                let label = if bin.label == "(other)" {
                    bin.label.clone()
                } else if c.kind == "numeric" {
                    masking.value(&c.column, &bin.label)
                } else {
                    masking.category(&c.column, &bin.label)
                };
                s.text(1, &truncate(&label, 100))?;
                s.num(2, bin.baseline, &f.share)?;
                s.num(3, bin.current, &f.share)?;
                s.next();
            }
        }
    }
    s.finish(1, 0)
}

fn pii_sheet(names: &mut SheetNames, f: &Formats, risk: &RiskReport) -> anyhow::Result<Worksheet> {
    let mut s = Sheet::new(&names.claim("PII"), f)?;
    s.header(&[
        "Column",
        "Kind",
        "Sensitivity",
        "Matches",
        "Non-null",
        "Share",
        "Header names it",
        "Examples (masked)",
    ])?;
    for c in &risk.columns {
        s.text(0, &c.column)?;
        s.text(1, &c.kind)?;
        s.text(2, &c.sensitivity)?;
        s.int(3, c.match_count)?;
        s.int(4, c.non_null_count)?;
        s.num(5, c.share, &f.share)?;
        s.text(6, if c.header_evidence { "yes" } else { "no" })?;
        s.text(7, &c.examples.join("; "))?;
        s.next();
    }
    if risk.columns.is_empty() {
        s.text(0, "No personal data found")?;
        s.next();
    }
    s.next();
    s.section("Risk")?;
    s.pair_num("Risk score", risk.risk_score, &f.pct)?;
    s.pair("Risk level", &risk.risk_level)?;
    if !risk.regulations.is_empty() {
        s.next();
        s.section("Regulations")?;
        s.header(&["Regulation", "Applies", "Columns", "Reasons"])?;
        for r in &risk.regulations {
            s.text(0, &r.name)?;
            s.text(1, if r.applies { "yes" } else { "no" })?;
            s.text(2, &r.columns.join(", "))?;
            s.text(3, &r.reasons.join("; "))?;
            s.next();
        }
    }
    s.finish(1, 0)
}

fn findings(s: &mut Sheet<'_>, title: &str, list: &[Finding], masking: &Masking) -> anyhow::Result<()> {
    s.next();
    s.section(&format!("{title} ({})", list.len()))?;
    if list.is_empty() {
        s.text(0, "None")?;
        s.next();
        return Ok(());
    }
    s.header(&["Severity", "Code", "Column", "Message"])?;
    for finding in list {
        s.text(0, &finding.severity)?;
        s.text(1, &finding.code)?;
        s.text(2, finding.column.as_deref().unwrap_or(""))?;
        s.text(3, &masking.scrub(finding.column.as_deref(), &finding.message))?;
        s.next();
    }
    Ok(())
}

fn agent_sheet(
    names: &mut SheetNames,
    f: &Formats,
    agent: &AgentResult,
    masking: &Masking,
) -> anyhow::Result<Worksheet> {
    let mut s = Sheet::new(&names.claim(&agent.agent_id), f)?;
    s.header(&["Metric", "Value"])?;
    s.pair("Agent", &agent_title(&agent.agent_id))?;
    s.pair("Status", &agent.status)?;
    s.pair_num("Execution time (ms)", agent.execution_time_ms, &f.int)?;
    for (key, value) in flatten_metrics(&agent.summary_metrics) {
        let fk = &f.key;
        s.text_with(0, &metric_label(&key), fk)?;
        s.json(1, &value)?;
        s.next();
    }
    findings(&mut s, "Alerts", &agent.alerts, masking)?;
    findings(&mut s, "Issues", &agent.issues, masking)?;
    findings(&mut s, "Recommendations", &agent.recommendations, masking)?;

    let total = agent.row_level_issue_count.max(agent.row_level_issues.len() as u64);
    s.next();
    let shown = agent.row_level_issues.len().min(MAX_ROW_ISSUES);
    s.section(&format!("Row-level issues ({shown} of {total})"))?;
    if shown == 0 {
        s.text(0, "None")?;
        s.next();
    } else {
        s.header(&["Row", "Column", "Code", "Message"])?;
        for issue in &agent.row_level_issues[..shown] {
            s.int(0, issue.row)?;
            s.text(1, issue.column.as_deref().unwrap_or(""))?;
            s.text(2, &issue.code)?;
            s.text(3, &masking.scrub(issue.column.as_deref(), &issue.message))?;
            s.next();
        }
    }

    let params = flatten_metrics(&agent.parameters);
    if !params.is_empty() {
        s.next();
        s.section("Parameters")?;
        for (key, value) in params {
            let fk = &f.key;
            s.text_with(0, &key, fk)?;
            s.json(1, &value)?;
            s.next();
        }
    }
    s.finish(1, 0)
}

/// Whether a number written `text` keeps its value as an Excel number: at most 15 significant
/// digits (Excel's precision). A 64-bit integer's extreme or a DECIMAL(19,2) is written as text
/// instead of rounded (`99999999999999999.99` shown as 100000000000000000).
fn exact_in_excel(text: &str) -> bool {
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    digits.trim_start_matches('0').trim_end_matches('0').len() <= 15
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};

    use super::SheetNames;
    use crate::domain::Report;
    use crate::reports::{ReportFormat, fixture, render};

    fn open(bytes: Vec<u8>) -> Xlsx<Cursor<Vec<u8>>> {
        open_workbook_from_rs(Cursor::new(bytes)).unwrap()
    }

    fn cell_texts(range: &calamine::Range<Data>) -> Vec<String> {
        range.cells().map(|(_, _, d)| d.to_string()).collect()
    }

    #[test]
    fn text_past_excels_limit_in_utf16_units_is_cut() {
        // 20,000 emoji are 40,000 UTF-16 units: Excel's limit (32,767) counts those.
        let mut report = fixture::rich_report(2);
        let long = "😀".repeat(20_000);
        report.profile.as_mut().unwrap().columns[0].name = long;
        let bytes = render(ReportFormat::Xlsx, &fixture::rich_meta(), &report).unwrap();
        let mut book = open(bytes);
        let columns = book.worksheet_range("Columns").unwrap();
        let cut = cell_texts(&columns).into_iter().find(|t| t.starts_with('😀')).unwrap();
        assert!(cut.ends_with('…') && cut.encode_utf16().count() <= 32_767, "{}", cut.len());
    }

    #[test]
    fn workbook_has_every_sheet_and_the_numbers() {
        let report = fixture::rich_report(2);
        let bytes = render(ReportFormat::Xlsx, &fixture::rich_meta(), &report).unwrap();
        assert!(bytes.starts_with(b"PK"));
        let mut book = open(bytes);
        assert_eq!(
            book.sheet_names(),
            [
                "Summary",
                "Columns",
                "Drift",
                "PII",
                "unified-profiler",
                "drift-detector",
                "score-risk",
                "test-coverage-agent",
                "readiness-rater"
            ]
        );

        let summary = book.worksheet_range("Summary").unwrap();
        assert_eq!(
            summary.get_value((0, 0)),
            Some(&Data::String("Data quality report – customers.csv".into()))
        );
        assert_eq!(summary.get_value((2, 0)), Some(&Data::String("Field".into())));
        let texts = cell_texts(&summary);
        for part in [
            "Quality score",
            "Grade",
            "B",
            "Completeness (%)",
            "Consistency (%)",
            "Duplicate rows",
            "Risk level",
        ] {
            assert!(texts.iter().any(|t| t == part), "{part}");
        }
        let row_of = |range: &calamine::Range<Data>, key: &str| {
            range
                .rows()
                .find(|r| r.first().map(|d| d.to_string()) == Some(key.to_string()))
                .map(|r| r.to_vec())
        };
        assert_eq!(row_of(&summary, "Quality score").unwrap()[1], Data::Float(82.4));
        assert_eq!(row_of(&summary, "Rows").unwrap()[1], Data::Float(5000.0));
        let agents = row_of(&summary, "Risk scorer (score-risk)").unwrap();
        assert_eq!(agents[1], Data::String("success".into()));
        assert!(agents[7].to_string().contains("Risk score: 78"));

        let columns = book.worksheet_range("Columns").unwrap();
        assert_eq!(columns.get_value((0, 0)), Some(&Data::String("Column".into())));
        assert_eq!(columns.height(), 1 + report.profile.as_ref().unwrap().columns.len());
        let amount = row_of(&columns, "amount").unwrap();
        assert_eq!(amount[1], Data::String("DOUBLE".into()));
        assert_eq!(amount[4], Data::Float(12.0));
        assert_eq!(amount[10], Data::Float(1234.567));
        assert_eq!(amount[8], Data::Float(-15.5));
        assert!(row_of(&columns, fixture::SCRIPT_COLUMN).is_some(), "names are written as they are");

        let drift = book.worksheet_range("Drift").unwrap();
        let amount = row_of(&drift, "amount").unwrap();
        assert_eq!(amount[10], Data::String("drift".into()));
        assert_eq!(amount[6], Data::Float(1e-12));
        let texts = cell_texts(&drift);
        assert!(texts.iter().any(|t| t == "loyalty_tier") && texts.iter().any(|t| t == "retyped"));

        let pii = book.worksheet_range("PII").unwrap();
        assert_eq!(row_of(&pii, "ssn").unwrap()[7], Data::String("***-**-6789; ***-**-4321".into()));
        assert!(cell_texts(&pii).iter().any(|t| t == "GDPR"));

        let coverage = book.worksheet_range("test-coverage-agent").unwrap();
        let texts = cell_texts(&coverage);
        assert!(texts.iter().any(|t| t == "Rules checked"));
        assert!(texts.iter().any(|t| t == "Row-level issues (30 of 1234)"));
        assert!(texts.iter().any(|t| t == "NEGATIVE_AMOUNT"));
        let profiler = book.worksheet_range("unified-profiler").unwrap();
        let texts = cell_texts(&profiler);
        for part in ["Alerts (7)", "Issues (2)", "Recommendations (2)", "HIGH_NULLS", "Parameters"] {
            assert!(texts.iter().any(|t| t == part), "{part}");
        }
    }

    #[test]
    fn bounds_beyond_excels_precision_are_text() {
        for exact in ["12.5", "-0.001", "123456789012345", "1e300", "1000000000000000000000", "-2.5E-7"] {
            assert!(super::exact_in_excel(exact), "{exact}");
        }
        for rounded in
            ["-9223372036854775808", "18446744073709551615", "99999999999999999.99", "0.1234567890123456"]
        {
            assert!(!super::exact_in_excel(rounded), "{rounded}");
        }
    }

    #[test]
    fn workbook_masks_personal_data() {
        let bytes = render(ReportFormat::Xlsx, &fixture::rich_meta(), &fixture::rich_report(0)).unwrap();
        let mut book = open(bytes);
        let mut all = Vec::new();
        for name in book.sheet_names() {
            all.extend(cell_texts(&book.worksheet_range(&name).unwrap()));
        }
        let all = all.join("\n");
        for raw in fixture::RAW_PII.iter().chain(&["aaron@example.org", "000-12-3456"]) {
            assert!(!all.contains(raw), "{raw} leaked");
        }
        assert!(all.contains("j***@e***.com (3)"));
        assert!(all.contains("United Kingdom (2100)"));
    }

    #[test]
    fn empty_report_and_odd_agent_ids_make_a_valid_workbook() {
        let mut report = Report::default();
        for id in ["a/b:c*d?[e]", "A/B:C*D?[E]", "'quoted'", "x".repeat(40).as_str(), "summary", ""] {
            let mut agent = fixture::rich_report(0).agents.remove(0);
            agent.agent_id = id.to_string();
            agent.execution_time_ms = f64::NAN;
            agent.issues[0].message =
                format!("control \u{0}\u{7}\u{1b} characters and {}", "long ".repeat(10_000));
            report.agents.push(agent);
        }
        let bytes = render(ReportFormat::Xlsx, &fixture::rich_meta(), &report).unwrap();
        let book = open(bytes);
        let names = book.sheet_names();
        assert_eq!(names.len(), 7);
        assert_eq!(names[0], "Summary");
        assert_eq!(names[1], "a-b-c-d--e-");
        assert_eq!(names[2], "A-B-C-D--E- (2)");
        assert_eq!(names[3], "quoted");
        assert_eq!(names[4].chars().count(), 31);
        assert_eq!(names[5], "summary (2)");
        assert_eq!(names[6], "Sheet");
    }

    #[test]
    fn sheet_names_are_unique_and_short() {
        let mut names = SheetNames::new();
        assert_eq!(names.claim("History"), "History (2)");
        let long = "é".repeat(40);
        let first = names.claim(&long);
        let second = names.claim(&long);
        assert_eq!(first.chars().count(), 31);
        assert_ne!(first, second);
        assert!(second.encode_utf16().count() <= 31 && second.ends_with(" (2)"));
        let emoji = names.claim(&"😀".repeat(20));
        assert!(emoji.encode_utf16().count() <= 31);
    }

    #[test]
    fn workbook_masks_drift_only_reports_and_personal_quantiles() {
        let report = crate::reports::tests::drift_only_report();
        let mut book = open(render(ReportFormat::Xlsx, &fixture::rich_meta(), &report).unwrap());
        let texts = cell_texts(&book.worksheet_range("Drift").unwrap()).join("\n");
        for raw in fixture::RAW_PII {
            assert!(!texts.contains(raw), "{raw} leaked");
        }
        assert!(texts.contains("j***@e***.com") && texts.contains("United Kingdom"));

        let mut report = fixture::rich_report(0);
        let ssn = report.profile.as_mut().unwrap().columns.iter_mut().find(|c| c.name == "ssn").unwrap();
        (ssn.mean, ssn.median, ssn.q25, ssn.q75, ssn.stddev) =
            (Some(5e8), Some(512_345_678.0), Some(3e8), Some(7e8), Some(1.5e8));
        let mut book = open(render(ReportFormat::Xlsx, &fixture::rich_meta(), &report).unwrap());
        let columns = book.worksheet_range("Columns").unwrap();
        let row = columns.rows().find(|r| r[0] == "ssn").unwrap().to_vec();
        assert_eq!(row[11], Data::Float(1.5e8), "the spread is shown");
        for col in [10, 12, 13, 14] {
            assert_eq!(row[col], Data::Empty, "column {col}");
        }
    }
}
