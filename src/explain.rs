//! Explaining a report in words: the rule-based executive summary (what the server says when
//! no language model is configured), and the grounding check every summary must pass — each
//! number it states must be one the report holds, so nothing in it is invented.

use std::fmt::Write;

use serde_json::Value;

use crate::domain::{Finding, Report};
use crate::jobs::registry::{DRIFT_DETECTOR, READINESS_RATER, SCORE_RISK, TEST_COVERAGE};

/// An executive summary and who wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Four sections: Executive Summary, Technical Findings, Recommended Actions, Next Steps.
    pub text: String,
    /// `rule-based`, or the model's name.
    pub model: String,
}

fn metric<'a>(report: &'a Report, agent: &str, key: &str) -> Option<&'a Value> {
    report.agents.iter().find(|a| a.agent_id == agent).and_then(|a| a.summary_metrics.get(key))
}

/// A number as the summary writes it: integers whole, others to one decimal.
fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { format!("{x:.1}") }
}

/// The rule-based summary of a report: every sentence comes from a number or a finding in it.
pub fn rule_based(report: &Report, dataset: &str) -> Summary {
    let mut text = String::new();
    let mut line = |s: String| {
        let _ = writeln!(text, "{s}");
    };

    line("## Executive Summary".into());
    match &report.profile {
        Some(p) => line(format!(
            "{dataset} has {} rows and {} columns. Its quality score is {} of 100 (grade {}).",
            number(p.row_count as f64),
            number(p.column_count as f64),
            number(p.quality.score),
            p.quality.grade
        )),
        None => line(format!("{dataset} was checked by {} agent(s).", number(report.agents.len() as f64))),
    }
    if let Some(verdict) = metric(report, READINESS_RATER, "verdict").and_then(Value::as_str) {
        let score = metric(report, READINESS_RATER, "readinessScore").and_then(Value::as_f64).unwrap_or(0.0);
        line(format!("Readiness: {verdict} (score {}).", number(score)));
    }
    if let Some(risk) = &report.risk {
        if risk.columns.is_empty() {
            line("No personal data was found.".into());
        } else {
            line(format!(
                "{} column(s) hold personal data; the risk is {} (score {}).",
                number(risk.columns.len() as f64),
                risk.risk_level,
                number(risk.risk_score)
            ));
        }
    }
    if let Some(drift) = &report.drift {
        line(format!(
            "Against the baseline, {} column(s) drifted and the row count changed by {}.",
            number(drift.drifted_count as f64),
            number(drift.row_count_change as f64)
        ));
    }
    if let Some(cleanse) = &report.cleanse {
        line(format!(
            "The cleanse kept {} of {} rows: {} removed, {} quarantined.",
            number(cleanse.rows_out as f64),
            number(cleanse.rows_in as f64),
            number(cleanse.rows_removed as f64),
            number(cleanse.rows_quarantined as f64)
        ));
        let failed: Vec<&str> =
            cleanse.checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect();
        if failed.is_empty() {
            line("Every integrity check passed.".into());
        } else {
            line(format!("Integrity checks failed: {}.", failed.join(", ")));
        }
    }

    line(String::new());
    line("## Technical Findings".into());
    if let Some(p) = &report.profile {
        let q = &p.quality;
        line(format!(
            "- Completeness {}, validity {}, uniqueness {}, consistency {} (each of 100).",
            number(q.completeness),
            number(q.validity),
            number(q.uniqueness),
            number(q.consistency)
        ));
        if p.duplicate_row_count > 0 {
            line(format!("- {} duplicate row(s).", number(p.duplicate_row_count as f64)));
        }
    }
    let alerts: Vec<_> = report.agents.iter().flat_map(|a| a.alerts.iter()).collect();
    let critical = alerts.iter().filter(|a| a.severity == "critical").count();
    line(format!(
        "- {} alert(s), {} of them critical.",
        number(alerts.len() as f64),
        number(critical as f64)
    ));
    for alert in alerts.iter().filter(|a| a.severity == "critical").take(5) {
        line(format!("- {}: {}", alert.code, alert.column.as_deref().unwrap_or("dataset")));
    }
    // Issues are what the cleansing agents found (invalid e-mails, unparseable dates…): named
    // by code and column, as alerts are (their messages quote counts the report keeps elsewhere).
    let issues = distinct_issues(report);
    if !issues.is_empty() {
        line(format!("- {} issue(s):", number(issues.len() as f64)));
        for issue in issues.iter().take(8) {
            line(format!("  - {}: {}", issue.code, issue.column.as_deref().unwrap_or("dataset")));
        }
    }
    if let Some(score) = metric(report, TEST_COVERAGE, "testScore").and_then(Value::as_f64) {
        let failed = metric(report, TEST_COVERAGE, "failedTests").and_then(Value::as_f64).unwrap_or(0.0);
        line(format!("- Data tests score {} of 100; {} test(s) failed.", number(score), number(failed)));
    }

    line(String::new());
    line("## Recommended Actions".into());
    // The risk scorer's first (its actions weigh each column's sensitivity), then the other
    // agents' in their order; one action about personal data per column.
    let mut seen = std::collections::BTreeSet::new();
    let mut personal = std::collections::BTreeSet::new();
    let by_risk_first = report
        .agents
        .iter()
        .filter(|a| a.agent_id == SCORE_RISK)
        .chain(report.agents.iter().filter(|a| a.agent_id != SCORE_RISK));
    let recommendations: Vec<_> = by_risk_first
        .flat_map(|a| a.recommendations.iter())
        .filter(|r| seen.insert((r.code.clone(), r.column.clone())))
        .filter(|r| !PERSONAL_ACTIONS.contains(&r.code.as_str()) || personal.insert(r.column.clone()))
        .take(8)
        .collect();
    if recommendations.is_empty() && issues.is_empty() && alerts.is_empty() {
        line("- Nothing needs fixing.".into());
    } else if recommendations.is_empty() {
        line("- Review the findings above.".into());
    }
    for r in recommendations {
        line(format!("- {}", r.message));
    }

    line(String::new());
    line("## Next Steps".into());
    let ran = |id: &str| report.agents.iter().any(|a| a.agent_id == id);
    if !ran(DRIFT_DETECTOR) {
        line("- Profile the next version with this one as its baseline to watch for drift.".into());
    }
    if ran(SCORE_RISK) && report.risk.as_ref().is_some_and(|r| !r.columns.is_empty()) {
        line("- Decide who may see the columns of personal data before sharing the file.".into());
    }
    if let Some(cleanse) = &report.cleanse {
        line(
            match (&cleanse.output_dataset_id, &cleanse.quarantine_dataset_id) {
                (Some(_), Some(_)) => {
                    "- Profile the cleaned version to confirm its quality, and review the quarantined rows."
                }
                (Some(_), None) => "- Profile the cleaned version to confirm its quality.",
                (None, _) => {
                    "- Nothing was published: run the plan with cleanse-writeback once it does what you want."
                }
            }
            .into(),
        );
    } else if alerts.iter().all(|a| PERSONAL_ALERTS.contains(&a.code.as_str()))
        && issues.iter().all(|i| i.code == "REGULATION")
    {
        // (Personal data is not for a cleanse to fix: the step above says who may see it.)
        line("- Keep the current checks as tests for the next versions.".into());
    } else {
        line("- Clean the data (Clean My Data), then profile the cleaned version again.".into());
    }
    Summary { text, model: "rule-based".into() }
}

/// Recommendations about how to protect a column of personal data (the profiler's, the risk
/// scorer's by sensitivity): the summary gives one per column.
const PERSONAL_ACTIONS: [&str; 4] = ["ENCRYPT_OR_DROP", "MASK_OR_RESTRICT", "GENERALISE", "PROTECT_PII"];

/// Alerts that say a column holds personal data.
const PERSONAL_ALERTS: [&str; 2] = ["LIKELY_PII", "PII_DETECTED"];

/// Numbers written in `text` (`1,234`, `-5`, `98.4`, `1e-3`, `５`), as they read. A number
/// that cannot be checked is given as a token that reads as no number (so it is never
/// grounded): one with a letter suffix (`12k`, `450M`, `9999USD` — ordinals `4217th` are their
/// number), and the number words above ten ([`NUMBER_WORDS`]: `forty-two`, `twelve hundred`).
/// Invisible characters are read as absent: `4\u{200B}217` shows as 4217, and is read so.
pub(crate) fn numbers_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Decimal digits of other scripts (full-width, Arabic-Indic, Devanagari…) read as ASCII.
    let chars: Vec<char> = text.chars().filter(|c| !invisible(*c)).map(ascii_digit).collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_alphabetic() && (i == 0 || !chars[i - 1].is_alphanumeric()) {
            let word: String = chars[i..].iter().take_while(|c| c.is_alphabetic()).collect();
            // (A word inside a name, `twenty_day_avg` or `sales_million`, is the name's.)
            let end = i + word.chars().count();
            let in_name = (i > 0 && chars[i - 1] == '_')
                || chars.get(end).is_some_and(|c| *c == '_' || c.is_alphanumeric());
            if !in_name && NUMBER_WORDS.contains(&word.to_lowercase().as_str()) {
                out.push(word.clone());
            }
            i += word.chars().count();
            continue;
        }
        if chars[i].is_numeric() && !chars[i].is_ascii_digit() {
            // A numeric character of no decimal script (`½`, `²`, `Ⅳ`).
            out.push(chars[i].to_string());
            i += 1;
            continue;
        }
        // (A digit after a letter is part of a name, `v2`, `Q4` — except after a letter of a
        // script written without spaces: `共有4217行` states 4217.)
        // A `_` or `.` before it joins it to a name only after a letter or digit (`q_4`, `v1.2`):
        // `_9876_` (Markdown's italics), `...4217` and ` .5` state numbers.
        // (Underscores: the run of them, `__9876__` as `_9876_`; `col__2` is a name.)
        let underscored = |k: usize| {
            let mut m = k;
            while m > 0 && chars[m - 1] == '_' {
                m -= 1;
            }
            m > 0 && chars[m - 1].is_alphanumeric()
        };
        let joined =
            |k: usize| k > 0 && (chars[k - 1].is_alphanumeric() || matches!(chars[k - 1], '_' | '.'));
        let starts = chars[i].is_ascii_digit()
            && (i == 0
                || unspaced(chars[i - 1])
                || !(chars[i - 1].is_alphanumeric()
                    || (chars[i - 1] == '_' && underscored(i - 1))
                    || (chars[i - 1] == '.' && i >= 2 && chars[i - 2].is_alphanumeric())));
        // A lone point before the digits is the number's: ` .42` is 0.42.
        let leading_point = i > 0 && chars[i - 1] == '.' && !joined(i - 1);
        if !starts {
            i += 1;
            continue;
        }
        // A minus sign (the hyphen, or Unicode's minus `−`) before the number, or before its
        // currency symbol (`-$262.37`).
        let minus = |c: char| c == '-' || c == '\u{2212}';
        // (Before a leading point: `-.5`.)
        let at = if leading_point { i - 1 } else { i };
        let sign = if at > 0 && CURRENCY_SIGNS.contains(&chars[at - 1]) {
            at.checked_sub(2)
        } else {
            at.checked_sub(1)
        };
        let negative = sign.is_some_and(|k| {
            minus(chars[k]) && (k == 0 || chars[k - 1].is_whitespace() || chars[k - 1] == '(')
        });
        let mut j = i;
        while j < chars.len()
            && (chars[j].is_ascii_digit()
                || (matches!(chars[j], ',' | '.') && j + 1 < chars.len() && chars[j + 1].is_ascii_digit())
                || (GROUP_SEPARATORS.contains(&chars[j]) && group_follows(&chars[j + 1..])))
        {
            j += 1;
        }
        // An exponent: `5e6`, `1e-3`.
        if j + 1 < chars.len() && matches!(chars[j], 'e' | 'E') {
            let sign = usize::from(matches!(chars[j + 1], '+' | '-'));
            if chars.get(j + 1 + sign).is_some_and(char::is_ascii_digit) {
                j += 1 + sign;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
            }
        }
        let token: String =
            chars[i..j].iter().filter(|c| **c != ',' && !GROUP_SEPARATORS.contains(c)).collect();
        let token = if leading_point { format!("0.{token}") } else { token };
        let token = if negative { format!("-{token}") } else { token };
        // A short hexadecimal literal (`0x1068`) states a figure (4217) that is not checked; a
        // long one (a wallet address, a hash) is a name.
        if token == "0"
            && matches!(chars.get(j), Some('x' | 'X'))
            && chars.get(j + 1).is_some_and(char::is_ascii_hexdigit)
        {
            let end = j + 1 + chars[j + 1..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
            if end - j - 1 <= 16 && !chars.get(end).is_some_and(|c| c.is_alphanumeric() || *c == '_') {
                out.push(chars[i..end].iter().collect());
            }
            i = end;
            continue;
        }
        // A suffix glued to the number: an ordinal is the number; a unit or multiplier
        // (`12k`, `450M`, `9999USD`) states a figure that cannot be checked.
        // (A letter of a script without spaces is the next word, `4217行`, unless it
        // multiplies the number: `4217万` is 42 million, a figure not checked.)
        let suffix: String = match chars.get(j) {
            Some(c) if CJK_MULTIPLIERS.contains(c) => c.to_string(),
            _ => chars[j..].iter().take_while(|c| c.is_alphabetic() && !unspaced(**c)).collect(),
        };
        let after = chars.get(j + suffix.chars().count());
        if !suffix.is_empty() && after.is_some_and(|c| *c == '_' || c.is_ascii_digit()) {
            // An identifier that starts with digits (`2fa_enabled`, `3d_model2`): a name.
            i = j + suffix.chars().count();
            continue;
        }
        if suffix.is_empty() || ["st", "nd", "rd", "th"].contains(&suffix.to_lowercase().as_str()) {
            out.push(token);
        } else {
            out.push(format!("{token}{suffix}"));
        }
        i = j + suffix.chars().count();
    }
    out
}

/// Currency symbols a sign may come before: `-$262.37` is -262.37.
const CURRENCY_SIGNS: [char; 9] = ['$', '€', '£', '¥', '₹', '₩', '₽', '₺', '¢'];

/// Characters that separate groups of three digits in a number as some languages write it
/// (`1\u{A0}200`, `1\u{202F}200`, `1'200`, `1’200`): read as one number, 1200 — as two, 1 and
/// 200, each could be grounded on its own. (A plain space is not among them: `1 200` as well
/// reads as a list.)
const GROUP_SEPARATORS: [char; 5] = ['\u{A0}', '\u{202F}', '\u{2009}', '\'', '\u{2019}'];

/// Whether `rest` starts with a group of exactly three digits.
fn group_follows(rest: &[char]) -> bool {
    rest.len() >= 3
        && rest[..3].iter().all(char::is_ascii_digit)
        && !rest.get(3).is_some_and(char::is_ascii_digit)
}

/// Chinese, Japanese and Korean characters that multiply the number before them (ten, a
/// hundred, a thousand, ten thousand, a hundred million, a trillion).
const CJK_MULTIPLIERS: [char; 13] =
    ['十', '百', '千', '万', '萬', '亿', '億', '兆', '십', '백', '천', '만', '억'];

/// Whether `c` is a letter of a script written without spaces between words (Chinese,
/// Japanese, Thai, Lao, Khmer, Myanmar), or Korean, whose particles attach to numbers: a digit
/// next to one is not part of a name.
fn unspaced(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF | 0x1000..=0x109F | 0x1780..=0x17FF | 0x3005..=0x3007 | 0x3040..=0x30FF
        | 0x31F0..=0x31FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF
        | 0xFF66..=0xFF9F | 0x20000..=0x3FFFF)
}

/// Number words that state a figure no source is looked up for (up to ten, a number needs
/// none): the model must write such figures in digits, which are checked.
const NUMBER_WORDS: [&str; 24] = [
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
    "thousand",
    "million",
    "billion",
    "trillion",
    "dozen",
    "dozens",
];

/// Whether `c` is a character a reader does not see between two digits: zero-width spaces
/// and joiners, the soft hyphen, direction marks and overrides, the combining grapheme joiner,
/// variation selectors and the byte-order mark.
fn invisible(c: char) -> bool {
    crate::domain::is_bidi_control(c)
        || matches!(c, '\u{AD}' | '\u{34F}' | '\u{180E}' | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}')
        // Combining marks, drawn on the character before them: `4̲2̲1̲7̲` (underlined digits)
        // and keycaps `4⃣2⃣` are the numbers 4217 and 42.
        || matches!(c, '\u{300}'..='\u{36F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}')
}

/// `c` as an ASCII digit when it is a decimal digit of another script, else itself.
fn ascii_digit(c: char) -> char {
    // The zero of each block of ten decimal digits (Unicode's Nd) a text is likely to hold.
    const ZEROS: [u32; 22] = [
        0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66,
        0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0xFF10, 0x1D7CE,
    ];
    let code = c as u32;
    ZEROS
        .iter()
        .find(|zero| (**zero..**zero + 10).contains(&code))
        .and_then(|zero| char::from_digit(code - zero, 10))
        .unwrap_or(c)
}

/// Every number the report holds: its values, and the lengths of its lists (counts of
/// alerts, columns, tests).
fn report_numbers(value: &Value, out: &mut Vec<f64>) {
    match value {
        Value::Number(n) => out.extend(n.as_f64()),
        Value::Array(items) => {
            out.push(items.len() as f64);
            items.iter().for_each(|v| report_numbers(v, out));
        }
        Value::Object(map) => map.values().for_each(|v| report_numbers(v, out)),
        // Text the report holds (messages, dates, masked examples) states numbers too.
        Value::String(s) => {
            out.extend(s.parse::<f64>().ok());
            out.extend(numbers_in(s).iter().filter_map(|t| t.parse::<f64>().ok()));
        }
        _ => {}
    }
}

/// Checks that every number `text` states is one `report` holds, rounded as written (`98.4`
/// matches 98.43…; `3` matches 3 or 2.6). Small ordinals a text needs without the report
/// (section and list numbers up to 10, "100" as in "of 100") always pass. Returns the numbers
/// that do not come from the report.
pub fn ungrounded(text: &str, report: &Report) -> Vec<String> {
    ungrounded_among(text, Some(report), &[])
}

/// Every agent's issues, an issue another agent already reported (same code and column: the
/// rows that could not be read, say) once; one agent's own issues all (a risk scorer's
/// regulations share a code).
fn distinct_issues(report: &Report) -> Vec<&Finding> {
    let mut first = std::collections::BTreeMap::new();
    report
        .agents
        .iter()
        .enumerate()
        .flat_map(|(n, a)| a.issues.iter().map(move |i| (n, i)))
        .filter(|(n, i)| *first.entry((i.code.as_str(), i.column.as_deref())).or_insert(*n) == *n)
        .map(|(_, i)| i)
        .collect()
}

/// Like [`ungrounded`], with more sources than the report: the results of the queries and
/// lookups an answer rests on (any JSON: its numbers and list lengths count).
pub fn ungrounded_among(text: &str, report: Option<&Report>, extra: &[Value]) -> Vec<String> {
    let mut known = Vec::new();
    if let Some(report) = report {
        report_numbers(&serde_json::to_value(report).unwrap_or(Value::Null), &mut known);
        // Sums the summary states: alerts over every agent, and the critical ones among them.
        let alerts: Vec<_> = report.agents.iter().flat_map(|a| a.alerts.iter()).collect();
        known.push(alerts.len() as f64);
        known.push(alerts.iter().filter(|a| a.severity == "critical").count() as f64);
        known.push(report.agents.iter().map(|a| a.issues.len()).sum::<usize>() as f64);
        known.push(distinct_issues(report).len() as f64);
    }
    for value in extra {
        report_numbers(value, &mut known);
    }
    numbers_in(text)
        .into_iter()
        .filter(|token| {
            let Ok(x) = token.parse::<f64>() else { return true };
            if (0.0..=10.0).contains(&x) && x.fract() == 0.0 || x == 100.0 {
                return false;
            }
            let decimals = token.split_once('.').map_or(0, |(_, d)| d.len() as i32);
            let scale = 10f64.powi(decimals);
            !known.iter().any(|y| ((y * scale).round() - x * scale).abs() < 0.5)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AgentResult, Finding, Profile, Quality};
    use serde_json::json;

    fn report() -> Report {
        let profile = Profile {
            row_count: 12_345,
            column_count: 7,
            duplicate_row_count: 12,
            quality: Quality {
                score: 87.26,
                grade: "B".into(),
                completeness: 98.43,
                validity: 91.0,
                uniqueness: 99.9,
                consistency: 97.5,
            },
            columns: Vec::new(),
            correlations: Vec::new(),
            alerts: Vec::new(),
        };
        let agent = |id: &str, metrics: Value, alerts: Vec<Finding>| AgentResult {
            agent_id: id.into(),
            status: "success".into(),
            execution_time_ms: 12.0,
            summary_metrics: metrics,
            alerts,
            issues: Vec::new(),
            recommendations: vec![Finding {
                code: "IMPUTE_OR_DROP".into(),
                severity: "info".into(),
                column: Some("age".into()),
                message: "Impute the missing values of age or drop the column".into(),
            }],
            row_level_issues: Vec::new(),
            row_level_issue_count: 0,
            parameters: json!({}),
        };
        let critical = Finding {
            code: "TEST_FAILED".into(),
            severity: "critical".into(),
            column: Some("id".into()),
            message: "id is not unique".into(),
        };
        Report {
            profile: Some(profile),
            agents: vec![
                agent("unified-profiler", json!({ "qualityScore": 87.26 }), Vec::new()),
                agent(TEST_COVERAGE, json!({ "testScore": 64.5, "failedTests": 2 }), vec![critical]),
                agent(
                    READINESS_RATER,
                    json!({ "verdict": "NEEDS_REVIEW", "readinessScore": 71.93 }),
                    Vec::new(),
                ),
            ],
            drift: None,
            risk: None,
            cleanse: None,
        }
    }

    #[test]
    fn the_rule_based_summary_has_four_sections_and_only_the_reports_numbers() {
        let report = report();
        let summary = rule_based(&report, "sales.csv");
        assert_eq!(summary.model, "rule-based");
        for section in
            ["## Executive Summary", "## Technical Findings", "## Recommended Actions", "## Next Steps"]
        {
            assert!(summary.text.contains(section), "{}", summary.text);
        }
        for fact in [
            "12345 rows",
            "87.3 of 100 (grade B)",
            "Readiness: NEEDS_REVIEW (score 71.9)",
            "12 duplicate",
            "64.5 of 100; 2 test(s) failed",
            "TEST_FAILED: id",
        ] {
            assert!(summary.text.contains(fact), "{fact} missing from {}", summary.text);
        }
        assert_eq!(ungrounded(&summary.text, &report), Vec::<String>::new(), "{}", summary.text);
    }

    #[test]
    fn a_cleanse_summary_says_what_the_cleanse_found_and_did() {
        // It said "0 alert(s)… Nothing needs fixing" over a cleanse that found 90 invalid values.
        use crate::domain::{CleanseManifest, IntegrityCheck};
        let finding = |code: &str, column: &str| Finding {
            code: code.into(),
            severity: "warning".into(),
            column: Some(column.into()),
            message: format!("values of {column} are not valid"),
        };
        let mut agent = report().agents.remove(0);
        agent.agent_id = "field-standardization".into();
        agent.alerts = Vec::new();
        agent.recommendations = Vec::new();
        agent.issues = vec![finding("INVALID_EMAIL", "email"), finding("INVALID_PHONE", "phone")];
        // Another agent found one of them too: the summary names it once.
        let mut other = agent.clone();
        other.agent_id = "type-fixer".into();
        other.issues = vec![finding("INVALID_EMAIL", "email")];
        let check = |name: &str, passed| IntegrityCheck { name: name.into(), passed, message: String::new() };
        let report = Report {
            profile: None,
            agents: vec![agent, other],
            drift: None,
            risk: None,
            cleanse: Some(CleanseManifest {
                output_dataset_id: Some("0191e0a0-0000-7000-8000-000000000001".into()),
                rows_in: 203,
                rows_out: 201,
                rows_removed: 2,
                checks: vec![check("row_accounting", true), check("types", true)],
                ..CleanseManifest::default()
            }),
        };
        let summary = rule_based(&report, "dirty.csv");
        for fact in [
            "The cleanse kept 201 of 203 rows: 2 removed, 0 quarantined.",
            "Every integrity check passed.",
            "2 issue(s):",
            "INVALID_EMAIL: email",
            "INVALID_PHONE: phone",
            "Review the findings above.",
            "Profile the cleaned version",
        ] {
            assert!(summary.text.contains(fact), "{fact} missing from {}", summary.text);
        }
        assert!(!summary.text.contains("Nothing needs fixing"), "{}", summary.text);
        assert_eq!(summary.text.matches("INVALID_EMAIL").count(), 1, "{}", summary.text);
        assert_eq!(ungrounded(&summary.text, &report), Vec::<String>::new(), "{}", summary.text);
    }

    #[test]
    fn personal_data_gets_one_action_per_column_the_risk_scorers_first() {
        let finding = |code: &str, severity: &str, column: Option<&str>, message: &str| Finding {
            code: code.into(),
            severity: severity.into(),
            column: column.map(Into::into),
            message: message.into(),
        };
        let mut report = report();
        report.agents.truncate(1);
        let profiler = &mut report.agents[0];
        profiler.recommendations = (0..9)
            .map(|i| {
                finding(
                    "PROTECT_PII",
                    "info",
                    Some(&format!("c{i}")),
                    &format!("c{i} likely holds personal data"),
                )
            })
            .collect();
        profiler.alerts =
            vec![finding("LIKELY_PII", "warning", Some("card"), "card likely holds personal data")];
        let mut risk = profiler.clone();
        risk.agent_id = SCORE_RISK.into();
        risk.alerts = vec![finding("PII_DETECTED", "critical", Some("card"), "card holds card numbers")];
        risk.issues = vec![
            finding("REGULATION", "warning", None, "GDPR applies"),
            finding("REGULATION", "warning", None, "CCPA applies"),
        ];
        risk.recommendations =
            vec![finding("ENCRYPT_OR_DROP", "info", Some("c3"), "c3: encrypt or tokenise it")];
        report.agents.push(risk);
        let text = rule_based(&report, "people.csv").text;
        let actions =
            text.split("## Recommended Actions").nth(1).unwrap().split("## Next Steps").next().unwrap();
        assert!(actions.trim_start().starts_with("- c3: encrypt or tokenise it"), "{actions}");
        assert!(!actions.contains("c3 likely holds"), "one action per column: {actions}");
        // Both regulations are issues of one agent: both counted.
        assert!(text.contains("- 2 issue(s):"), "{text}");
        // Personal data alone is not for a cleanse.
        assert!(!text.contains("Clean the data"), "{text}");
        assert_eq!(ungrounded(&text, &report), Vec::<String>::new(), "{text}");
    }

    #[test]
    fn invented_numbers_are_caught() {
        let report = report();
        assert_eq!(ungrounded("Quality is 87.3 of 100 and 12,345 rows.", &report), Vec::<String>::new());
        assert_eq!(ungrounded("Quality is 93.1 with 4,321 rows.", &report), ["93.1", "4321"]);
        assert_eq!(ungrounded("Readiness 71.93 vs 71.94.", &report), ["71.94"]);
        // Names with digits are not figures; small ordinals and "of 100" need no source.
        assert_eq!(ungrounded("Columns col2 and utf8; step 3 of 100.", &report), Vec::<String>::new());
        assert_eq!(ungrounded("A loss of -12 rows.", &report), ["-12"]);
    }

    #[test]
    fn numbers_are_read_as_written() {
        assert_eq!(numbers_in("1,234.5 and 7, then v2 and 3.14."), ["1234.5", "7", "3.14"]);
        assert_eq!(numbers_in("(-4) x-5"), ["-4", "5"]);
        // Before a currency symbol, and Unicode's minus sign.
        assert_eq!(numbers_in("Min amount is -$262.37, then −262.37 and $5"), ["-262.37", "-262.37", "5"]);
        assert_eq!(numbers_in("5e6 rows, 1e-3 and 2E+2"), ["5e6", "1e-3", "2E+2"]);
        assert_eq!(numbers_in("the 4217th row, the 1st"), ["4217", "1"]);
        assert_eq!(numbers_in("４２１７ and ٤٢١٧"), ["4217", "4217"]);
        assert_eq!(numbers_in("4\u{200B}217 and 1\u{AD}2\u{2060}3"), ["4217", "123"]);
        // Chinese, Japanese and Korean write numbers against their words.
        assert_eq!(numbers_in("数据集共有4217行。"), ["4217"]);
        assert_eq!(numbers_in("データは４２１７件"), ["4217"]);
        assert_eq!(numbers_in("총4217개의 행"), ["4217"]);
        assert_eq!(numbers_in("共有4217万行, 1.2億 and 3천"), ["4217万", "1.2億", "3천"]);
        // Groups of three digits after a (narrow) no-break space, a thin space or an apostrophe.
        assert_eq!(
            numbers_in("1\u{202F}200 rows, 1\u{A0}200, 1'200, 1’200 and 12\u{2009}345\u{2009}678"),
            ["1200", "1200", "1200", "1200", "12345678"]
        );
        assert_eq!(numbers_in("the 1990's, '20' and 1'2"), ["1990", "20", "1", "2"]);
        assert_eq!(numbers_in("٤\u{61C}٢١٧ and 4\u{FE0F}2"), ["4217", "42"]);
        // Column names that start with digits are names; so are names holding number words.
        assert!(numbers_in("2fa_enabled and 3d_model2 are flags").is_empty());
        assert!(numbers_in("twenty_day_avg, sales_million and top_dozen2").is_empty());
        assert_eq!(numbers_in("forty-two and Twelve."), ["forty", "Twelve"]);
        // After an ellipsis, a lone point, Markdown's underscores; underlined digits and keycaps;
        // a hexadecimal literal. Names stay names (`q_4`, `v1.2`, `col__2`).
        assert_eq!(numbers_in("Rows: ...9876 and 40...4217"), ["9876", "40", "4217"]);
        assert_eq!(numbers_in("Only .4217 are valid"), ["0.4217"]);
        assert_eq!(numbers_in("Row count: _9876_ rows"), ["9876"]);
        assert_eq!(numbers_in("4\u{332}2\u{332}1\u{332}7\u{332} and 4\u{20E3}2\u{20E3}"), ["4217", "42"]);
        assert_eq!(numbers_in("about 0x1068 rows"), ["0x1068"]);
        assert_eq!(numbers_in("Row count: __9876__ rows, mean -.5"), ["9876", "-0.5"]);
        assert!(numbers_in("top sender is 0x742d35Cc6634C0532925a3b844Bc454e4438f44e").is_empty());
        assert!(numbers_in("q_4, v1.2 and col__2").is_empty(), "{:?}", numbers_in("q_4, v1.2 and col__2"));
    }

    #[test]
    fn numbers_that_cannot_be_checked_are_never_grounded() {
        let report = report();
        for invented in [
            "There are 12k rows.",
            "Revenue was 450M.",
            "About 5e6 rows.",
            "It cost $9999USD.",
            "The 4217th row.",
            "About 0x1068 rows.",
            "There are ４２１７ rows.",
            "There are ٤٢١٧ rows.",
            "Four thousand two hundred rows.",
            "Nearly ½ of them.",
            "There are 4\u{200B}217 rows.",
            "Forty-two hundred rows.",
            "Forty-two rows are null.",
            "Twelve columns are empty.",
            "A dozen rows repeat.",
        ] {
            assert!(!ungrounded(invented, &report).is_empty(), "{invented}");
        }
        // What the report holds still passes, however written.
        assert!(ungrounded("It has １２,３４５ rows.", &report).is_empty());
        assert!(ungrounded("Step 3 of 100; 2nd run.", &report).is_empty());
    }
}
