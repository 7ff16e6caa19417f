//! The co-pilot without a language model: questions answered from the stored report by
//! recognising what is asked (nulls, top values, personal data, quality score, duplicates,
//! rows and columns, one statistic of a column, alerts) and which column it is about. It says
//! plainly when it cannot answer.

use super::facts::Privacy;
use crate::domain::{ColumnProfile, Profile, Report};
use crate::reports::{fmt_num, fmt_pct};

/// An answer and the statistics it rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub text: String,
    pub sources: Vec<String>,
}

/// What the co-pilot knows without a model.
pub struct Facts<'a> {
    pub dataset_name: &'a str,
    /// The report of the job the question is about (the dataset's latest profile).
    pub report: Option<&'a Report>,
    /// Which job the report comes from, for the sources.
    pub job_id: Option<String>,
    /// From the dataset's metadata, known even without a profile.
    pub row_count: u64,
    pub columns: &'a [String],
    /// Personal values are shown masked, as in the reports (and a stored answer may later
    /// reach a model as conversation history).
    pub privacy: &'a Privacy,
    /// The conversation's earlier questions, oldest first: a follow-up ("and the median?",
    /// "what about age?") takes the column or the topic it leaves out from the last one
    /// that had it.
    pub earlier: &'a [&'a str],
}

/// What the question asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    Nulls,
    TopValues,
    Personal,
    Quality,
    Duplicates,
    Distinct,
    Statistic(Stat),
    RowCount,
    Columns,
    Alerts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stat {
    Mean,
    Median,
    Min,
    Max,
    Stddev,
}

fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// What `question` asks. With `column` (a header the question names), words about one column
/// (a statistic, distinct values) win over words that are also names (`score`, `grade`):
/// "average score" asks for the mean of the column `score`.
fn intent(question: &str, column: Option<&str>) -> Option<Intent> {
    let named: Vec<String> = column.map(|c| words(&c.replace(['_', '-'], " "))).unwrap_or_default();
    let w: Vec<String> = words(question).into_iter().filter(|x| !named.contains(x)).collect();
    let has = |options: &[&str]| options.iter().any(|o| w.iter().any(|x| x == o));
    let phrase = |p: &str| question.to_lowercase().contains(p);
    if has(&["null", "nulls", "missing", "empty", "blank", "blanks"]) {
        Some(Intent::Nulls)
    } else if phrase("top value") || phrase("most common") || phrase("most frequent") || has(&["frequent"]) {
        Some(Intent::TopValues)
    } else if column.is_some()
        && let Some(stat) = statistic(&has)
    {
        Some(stat)
    } else if has(&["pii", "personal", "sensitive", "gdpr", "privacy", "private"]) {
        Some(Intent::Personal)
    } else if has(&["quality", "score", "grade"]) {
        Some(Intent::Quality)
    } else if has(&["duplicate", "duplicates", "duplicated", "dupes"]) {
        Some(Intent::Duplicates)
    } else if let Some(stat) = statistic(&has) {
        Some(stat)
    } else if has(&["alert", "alerts", "issue", "issues", "problem", "problems", "wrong"]) {
        Some(Intent::Alerts)
    } else if has(&["rows", "records", "size", "long", "big"]) {
        Some(Intent::RowCount)
    } else if has(&["columns", "fields", "schema", "headers"]) {
        Some(Intent::Columns)
    } else {
        None
    }
}

/// A question about one statistic of a column.
fn statistic(has: &dyn Fn(&[&str]) -> bool) -> Option<Intent> {
    if has(&["distinct", "unique", "cardinality"]) {
        Some(Intent::Distinct)
    } else if has(&["mean", "average", "avg"]) {
        Some(Intent::Statistic(Stat::Mean))
    } else if has(&["median"]) {
        Some(Intent::Statistic(Stat::Median))
    } else if has(&["minimum", "min", "smallest", "lowest", "earliest"]) {
        Some(Intent::Statistic(Stat::Min))
    } else if has(&["maximum", "max", "largest", "highest", "latest"]) {
        Some(Intent::Statistic(Stat::Max))
    } else if has(&["stddev", "deviation", "std", "spread"]) {
        Some(Intent::Statistic(Stat::Stddev))
    } else {
        None
    }
}

/// The column the question names: the longest header found in it, compared case-insensitively
/// and with `_`/`-` read as spaces; quoted names (`"Order ID"`, `` `x` ``) count too.
fn column_in<'c>(question: &str, columns: &'c [String]) -> Option<&'c String> {
    let norm = |s: &str| {
        let w = words(&s.replace(['_', '-'], " "));
        format!(" {} ", w.join(" "))
    };
    let q = norm(question);
    columns
        .iter()
        .filter(|c| {
            let c_norm = norm(c);
            let quoted = ['"', '\'', '`'].iter().any(|q| question.contains(&format!("{q}{c}{q}")));
            // A column named like a common word (`a`, `in`, `of`) only when quoted.
            let word = COMMON_WORDS.contains(&c_norm.trim());
            (c_norm.trim() != "" && !word && q.contains(&c_norm)) || quoted
        })
        .max_by_key(|c| c.len())
}

/// Words a question is made of whatever it asks: a column so named must be quoted.
const COMMON_WORDS: &[&str] = &[
    "a", "an", "the", "in", "of", "is", "it", "to", "and", "or", "on", "at", "for", "by", "be", "are", "do",
    "does", "how", "what", "which", "many", "much", "i", "me", "my", "there", "this", "that", "with",
];

/// Words that narrow a question to some rows or relate columns (`age over 50`, `excluding
/// outliers`, `correlated with`): the stored statistics cannot answer such a question, and
/// answering the broader one instead would mislead.
const QUALIFIERS: &[&str] = &[
    "over",
    "under",
    "above",
    "below",
    "than",
    "between",
    "where",
    "whose",
    "excluding",
    "exclude",
    "except",
    "without",
    "group",
    "grouped",
    "correlated",
    "correlation",
    "correlate",
    "versus",
    "vs",
    "compared",
    "compare",
    "after",
    "before",
    "since",
    "until",
    "among",
    "within",
];

/// Words that narrow a question only when a column's name follows (`average age by country`,
/// `nulls per country`; not `nulls per column`, `the score by the readiness rater`).
const BEFORE_A_COLUMN: &[&str] = &["by", "per", "each", "every", "for"];

/// The first word of `question` that narrows it to some rows or relates columns (see
/// [`QUALIFIERS`]), none of them part of the column it names.
fn qualifier(question: &str, named: Option<&String>, names: &[String]) -> Option<String> {
    let w = words(question);
    let own: Vec<String> = named.map(|c| words(c)).unwrap_or_default();
    let starts_a_column = |i: usize| {
        let rest = format!(" {} ", w[i + 1..].join(" "));
        names.iter().any(|n| {
            let n = words(&n.replace(['_', '-'], " ")).join(" ");
            !n.is_empty() && !COMMON_WORDS.contains(&n.as_str()) && rest.starts_with(&format!(" {n} "))
        })
    };
    w.iter()
        .enumerate()
        .find(|(i, word)| {
            !own.contains(word)
                && (QUALIFIERS.contains(&word.as_str())
                    || (BEFORE_A_COLUMN.contains(&word.as_str()) && starts_a_column(*i)))
        })
        .map(|(_, word)| word.clone())
}

const HELP: &str = "I can answer from the stored profile: nulls or distinct values in a column, its top values, \
     mean, median, min, max or standard deviation, which columns hold personal data, the quality score, duplicate \
     rows, the row count, the columns, and the alerts.";

/// Whether a question reads as a follow-up of the one before (`and the median?`, `what about
/// age?`, `median?`): only such a question takes what it leaves out from the earlier ones.
fn follow_up(question: &str) -> bool {
    let w = words(question);
    let first = |n: usize| w.iter().take(n).map(String::as_str).collect::<Vec<_>>();
    matches!(first(1).as_slice(), ["and" | "also" | "same"])
        || matches!(first(2).as_slice(), ["what" | "how", "about"] | ["and", _])
        || w.len() <= 2
}

/// Whether the answer to this intent is about one column.
fn about_a_column(intent: Intent) -> bool {
    matches!(intent, Intent::Nulls | Intent::TopValues | Intent::Distinct | Intent::Statistic(_))
}

/// The intent and column a question asks about, what it leaves out taken from the earlier
/// questions it follows.
fn understood<'c>(
    question: &str,
    earlier: &[&str],
    names: &'c [String],
) -> (Option<Intent>, Option<&'c String>) {
    let named = column_in(question, names);
    let asked = intent(question, named.map(String::as_str));
    match (asked, named) {
        _ if !follow_up(question) => (asked, named),
        // A column without a topic ("what about age?"): the last topic about a column.
        (None, Some(column)) => {
            let topic = earlier.iter().rev().find_map(|q| {
                intent(q, column_in(q, names).map(String::as_str)).filter(|i| about_a_column(*i))
            });
            (topic, Some(column))
        }
        // A topic about a column without one ("and the median?"): the last column named.
        (Some(topic), None) if about_a_column(topic) => {
            (Some(topic), earlier.iter().rev().find_map(|q| column_in(q, names)))
        }
        other => other,
    }
}

/// Answers `question` from what is stored, or says why it cannot.
pub fn answer(question: &str, facts: &Facts<'_>) -> Reply {
    let from_job = facts.job_id.as_deref().map(|id| format!(" (job {id})")).unwrap_or_default();
    let profile = facts.report.and_then(|r| r.profile.as_ref());
    let names: Vec<String> = profile
        .map_or_else(|| facts.columns.to_vec(), |p| p.columns.iter().map(|c| c.name.clone()).collect());
    let (intent, named) = understood(question, facts.earlier, &names);
    if let (Some(_), Some(word)) = (intent, qualifier(question, named, &names)) {
        return Reply {
            text: format!(
                "I cannot answer that without a language model: \"{word}\" narrows the question to some rows or \
                 relates columns, and the stored profile holds each column's statistics over all its rows only. {HELP}"
            ),
            sources: Vec::new(),
        };
    }
    let Some(intent) = intent else {
        return Reply {
            text: format!("I cannot answer that without a language model. {HELP}"),
            sources: Vec::new(),
        };
    };
    let Some(report) = facts.report else {
        return no_profile(intent, facts);
    };
    let column = named.and_then(|name| profile.and_then(|p| p.columns.iter().find(|c| &c.name == name)));
    let source = |what: &str| format!("profile{from_job}: {what}");
    let needs_column = |what: &str| Reply {
        text: format!(
            "Which column? I could not find one named in the question. {what} The columns are: {}.",
            names.join(", ")
        ),
        sources: Vec::new(),
    };
    let no_profile_here = || Reply {
        text:
            "The report has no profile (the unified profiler did not run), so I cannot answer that from it."
                .to_string(),
        sources: Vec::new(),
    };

    match intent {
        Intent::Personal => personal(report, &from_job),
        Intent::Alerts => {
            // Alerts (the profiling agents') and issues (the cleansing agents') alike.
            let alerts: Vec<_> =
                report.agents.iter().flat_map(|a| a.alerts.iter().chain(a.issues.iter())).collect();
            if alerts.is_empty() {
                return Reply {
                    text: "The report has no alerts or issues.".into(),
                    sources: vec![format!("alerts and issues{from_job}: 0")],
                };
            }
            let mut text = format!("The report has {} alert(s) or issue(s):", alerts.len());
            for alert in alerts.iter().take(20) {
                let message = facts.privacy.scrub(alert.column.as_deref(), &alert.message);
                match alert.column.as_deref() {
                    Some(column) => text.push_str(&format!("\n- [{}] {column}: {message}", alert.severity)),
                    None => text.push_str(&format!("\n- [{}] {message}", alert.severity)),
                }
            }
            Reply { text, sources: vec![format!("alerts and issues{from_job}: {}", alerts.len())] }
        }
        Intent::Columns => {
            let text = match profile {
                Some(p) => format!(
                    "{} has {} columns: {}.",
                    facts.dataset_name,
                    p.column_count,
                    p.columns
                        .iter()
                        .map(|c| format!("{} ({})", c.name, c.semantic_type))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => format!("{} has {} columns: {}.", facts.dataset_name, names.len(), names.join(", ")),
            };
            Reply { text, sources: vec![source("columns")] }
        }
        Intent::RowCount | Intent::Quality | Intent::Duplicates => {
            let Some(p) = profile else {
                // A cleanse's report has its own row counts.
                if intent == Intent::RowCount
                    && let Some(c) = &report.cleanse
                {
                    return Reply {
                        text: format!(
                            "The cleanse read {} rows and kept {}: {} removed, {} quarantined.",
                            c.rows_in, c.rows_out, c.rows_removed, c.rows_quarantined
                        ),
                        sources: vec![format!(
                            "cleanse{from_job}: rowsIn, rowsOut, rowsRemoved, rowsQuarantined"
                        )],
                    };
                }
                return no_profile_here();
            };
            profile_answer(intent, p, facts.dataset_name, &source)
        }
        Intent::Nulls | Intent::TopValues | Intent::Distinct | Intent::Statistic(_) => {
            let Some(p) = profile else { return no_profile_here() };
            match column {
                Some(c) => column_answer(intent, c, facts.privacy, &source),
                None if intent == Intent::Nulls => {
                    let with: Vec<_> = p.columns.iter().filter(|c| c.null_count > 0).collect();
                    let text = if with.is_empty() {
                        "No column has nulls.".to_string()
                    } else {
                        let list: Vec<String> = with
                            .iter()
                            .map(|c| format!("{} ({}, {})", c.name, c.null_count, fmt_pct(c.null_percent)))
                            .collect();
                        format!("{} column(s) have nulls: {}.", with.len(), list.join(", "))
                    };
                    Reply { text, sources: vec![source("nullCount of every column")] }
                }
                None => needs_column(""),
            }
        }
    }
}

fn profile_answer(intent: Intent, p: &Profile, dataset_name: &str, source: &dyn Fn(&str) -> String) -> Reply {
    match intent {
        Intent::RowCount => Reply {
            text: format!("{dataset_name} has {} rows and {} columns.", p.row_count, p.column_count),
            sources: vec![source("rowCount, columnCount")],
        },
        Intent::Quality => {
            let q = &p.quality;
            Reply {
                text: format!(
                    "The quality score is {} of 100 (grade {}): completeness {}, validity {}, uniqueness {}, \
                     consistency {}.",
                    fmt_num(q.score),
                    q.grade,
                    fmt_num(q.completeness),
                    fmt_num(q.validity),
                    fmt_num(q.uniqueness),
                    fmt_num(q.consistency)
                ),
                sources: vec![source("quality")],
            }
        }
        _ => Reply {
            text: format!(
                "{} row(s) are exact duplicates of an earlier row, out of {}.",
                p.duplicate_row_count, p.row_count
            ),
            sources: vec![source("duplicateRowCount")],
        },
    }
}

fn column_answer(
    intent: Intent,
    c: &ColumnProfile,
    privacy: &Privacy,
    source: &dyn Fn(&str) -> String,
) -> Reply {
    let name = &c.name;
    match intent {
        Intent::Nulls => Reply {
            text: format!("{name} has {} null(s) ({} of its values).", c.null_count, fmt_pct(c.null_percent)),
            sources: vec![source(&format!("{name}.nullCount"))],
        },
        Intent::Distinct => Reply {
            text: format!(
                "{name} has {} distinct value(s) ({} unique).",
                c.distinct_count,
                fmt_pct(c.unique_percent)
            ),
            sources: vec![source(&format!("{name}.distinctCount"))],
        },
        Intent::TopValues => {
            if c.top_values.is_empty() {
                return Reply {
                    text: format!("The profile stored no top values for {name}."),
                    sources: Vec::new(),
                };
            }
            let list: Vec<String> = c
                .top_values
                .iter()
                .take(10)
                .map(|v| match v.value.as_deref() {
                    Some(value) => format!("{} ({})", privacy.value(name, value), v.count),
                    None => format!("null ({})", v.count),
                })
                .collect();
            Reply {
                text: format!("The most frequent values of {name} are: {}.", list.join(", ")),
                sources: vec![source(&format!("{name}.topValues"))],
            }
        }
        Intent::Statistic(stat) => {
            let (label, value) = match stat {
                // Numeric summaries of personal data (dates of birth, postcodes) reveal it too.
                Stat::Mean | Stat::Median | Stat::Stddev if privacy.kind(name).is_some() => {
                    return Reply {
                        text: format!("{name} holds personal data; its statistics are not shown."),
                        sources: Vec::new(),
                    };
                }
                // (A median of phone numbers stored as integers is one of them: masked as the
                // prompts' facts mask it, since this answer goes to a model as history.)
                Stat::Mean => ("mean", c.mean.map(|x| privacy.statistic(name, x))),
                Stat::Median => ("median", c.median.map(|x| privacy.statistic(name, x))),
                Stat::Stddev => ("standard deviation", c.stddev.map(fmt_num)),
                Stat::Min => ("minimum", c.min.as_deref().map(|v| privacy.value(name, v))),
                Stat::Max => ("maximum", c.max.as_deref().map(|v| privacy.value(name, v))),
            };
            match value {
                Some(v) => Reply {
                    text: format!("The {label} of {name} is {v}."),
                    sources: vec![source(&format!("{name}.{label}"))],
                },
                None => Reply {
                    text: format!("{name} has no {label} (it is {} with no numeric values).", c.data_type),
                    sources: vec![source(&format!("{name}.{label}"))],
                },
            }
        }
        _ => Reply { text: HELP.into(), sources: Vec::new() },
    }
}

fn personal(report: &Report, from_job: &str) -> Reply {
    if let Some(risk) = &report.risk {
        if risk.columns.is_empty() {
            return Reply {
                text: "The risk scorer found no personal data.".into(),
                sources: vec![format!("score-risk{from_job}")],
            };
        }
        let list: Vec<String> = risk
            .columns
            .iter()
            .map(|c| format!("{} ({}, {} of values)", c.column, c.kind, fmt_pct(c.share * 100.0)))
            .collect();
        return Reply {
            text: format!(
                "{} column(s) hold personal data: {}. The risk is {} (score {}).",
                risk.columns.len(),
                list.join(", "),
                risk.risk_level,
                fmt_num(risk.risk_score)
            ),
            sources: vec![format!("score-risk{from_job}: columns, riskScore")],
        };
    }
    match &report.profile {
        Some(p) => {
            let flagged: Vec<String> = p
                .columns
                .iter()
                .filter_map(|c| c.pii.as_ref().map(|k| format!("{} ({k})", c.name)))
                .collect();
            let text = if flagged.is_empty() {
                "The profiler flagged no column as likely personal data (the risk scorer did not run; run score-risk \
                 for a validated scan)."
                    .to_string()
            } else {
                format!(
                    "The profiler flags {} column(s) as likely personal data: {}. The risk scorer did not run; run \
                     score-risk for a validated scan.",
                    flagged.len(),
                    flagged.join(", ")
                )
            };
            Reply { text, sources: vec![format!("profile{from_job}: pii hints")] }
        }
        None => Reply {
            text: "Neither the risk scorer nor the profiler ran in this job, so I cannot say.".into(),
            sources: Vec::new(),
        },
    }
}

fn no_profile(intent: Intent, facts: &Facts<'_>) -> Reply {
    let metadata = "dataset metadata".to_string();
    match intent {
        Intent::RowCount => Reply {
            text: format!(
                "{} has {} rows and {} columns.",
                facts.dataset_name,
                facts.row_count,
                facts.columns.len()
            ),
            sources: vec![metadata],
        },
        Intent::Columns => Reply {
            text: format!(
                "{} has {} columns: {}.",
                facts.dataset_name,
                facts.columns.len(),
                facts.columns.join(", ")
            ),
            sources: vec![metadata],
        },
        _ => Reply {
            text: format!(
                "{} has no completed profile yet, so I have no statistics to answer from. Run the profile-my-data \
                 tool on it, then ask again.",
                facts.dataset_name
            ),
            sources: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_are_understood() {
        assert_eq!(intent("How many nulls in email?", Some("email")), Some(Intent::Nulls));
        assert_eq!(intent("What are the top values of country", Some("country")), Some(Intent::TopValues));
        assert_eq!(intent("Which columns contain PII?", None), Some(Intent::Personal));
        assert_eq!(intent("what is the quality score", None), Some(Intent::Quality));
        assert_eq!(intent("How many duplicate rows are there?", None), Some(Intent::Duplicates));
        assert_eq!(intent("average age?", Some("age")), Some(Intent::Statistic(Stat::Mean)));
        assert_eq!(intent("Write me a poem about the sea", None), None);
        // A column named like a topic: the statistic wins.
        assert_eq!(intent("average score?", Some("score")), Some(Intent::Statistic(Stat::Mean)));
        assert_eq!(intent("max grade", Some("grade")), Some(Intent::Statistic(Stat::Max)));
    }

    #[test]
    fn columns_are_found_by_name_spaces_or_quotes() {
        let columns: Vec<String> = ["id", "signup_date", "Order ID", "date"].map(String::from).to_vec();
        assert_eq!(column_in("nulls in signup date?", &columns).map(String::as_str), Some("signup_date"));
        assert_eq!(column_in("top values of \"Order ID\"", &columns).map(String::as_str), Some("Order ID"));
        assert_eq!(column_in("the latest date", &columns).map(String::as_str), Some("date"));
        assert_eq!(column_in("nothing here", &columns), None);
        // "id" inside another word is not the column.
        assert_eq!(column_in("is it valid", &columns), None);
    }

    #[test]
    fn a_follow_up_takes_what_it_leaves_out_from_the_questions_before() {
        let columns: Vec<String> = ["age", "email", "city"].map(String::from).to_vec();
        let ask = |q: &str, earlier: &[&str]| {
            let (intent, column) = understood(q, earlier, &columns);
            (intent, column.map(String::as_str))
        };
        let median = Some(Intent::Statistic(Stat::Median));
        // The column of the last question that named one.
        assert_eq!(ask("and the median?", &["How many nulls in age?"]), (median, Some("age")));
        assert_eq!(
            ask("median?", &["nulls in email", "What is the quality score?"]),
            (median, Some("email"))
        );
        // The topic of the last question about a column.
        assert_eq!(
            ask("what about city?", &["nulls in age?", "average age?"]),
            (Some(Intent::Statistic(Stat::Mean)), Some("city"))
        );
        assert_eq!(ask("and email?", &["top values of city"]), (Some(Intent::TopValues), Some("email")));
        // A question that stands alone is read alone.
        assert_eq!(
            ask("How many nulls are there in the file?", &["average age?"]),
            (Some(Intent::Nulls), None)
        );
        assert_eq!(ask("and nulls?", &["average age?"]), (Some(Intent::Nulls), Some("age")));
        assert_eq!(ask("median of city", &["average age?"]), (median, Some("city")));
        assert_eq!(ask("what is the quality score", &["average age?"]), (Some(Intent::Quality), None));
        assert_eq!(ask("the median?", &[]), (median, None));
        assert_eq!(ask("what about city?", &["what is the quality score"]), (None, Some("city")));
        // A question that does not read as a follow-up takes nothing from the ones before.
        assert_eq!(
            ask("how many distinct countries are there?", &["what is the median of age"]),
            (Some(Intent::Distinct), None)
        );
        assert_eq!(
            ask("which city has the most customers?", &["what is the min of age"]),
            (None, Some("city"))
        );
    }

    #[test]
    fn questions_narrowed_to_some_rows_are_not_answered_for_all_of_them() {
        let columns: Vec<String> = ["age", "country", "amount", "a", "b"].map(String::from).to_vec();
        let privacy = Privacy::with_known(None, &Default::default());
        let facts = Facts {
            dataset_name: "customers.csv",
            report: None,
            job_id: None,
            row_count: 10,
            columns: &columns,
            privacy: &privacy,
            earlier: &[],
        };
        for question in [
            "how many rows have age over 50?",
            "what is the average age of customers by country?",
            "what is the mean amount excluding outliers?",
            "is age correlated with amount?",
            "how many nulls per country?",
        ] {
            let reply = answer(question, &facts);
            assert!(reply.text.starts_with("I cannot answer that"), "{question}: {}", reply.text);
        }
        // Words that narrow a question only before a column's name.
        for question in [
            "How many nulls per column?",
            "how many missing values in each column?",
            "what is the quality score by the readiness rater?",
            "tell me more about the quality score",
            "what is the average amount for customers?",
        ] {
            assert_eq!(qualifier(question, None, &columns), None, "{question}");
        }
        assert_eq!(qualifier("mean amount for each country", None, &columns).as_deref(), Some("each"));
        // A column named like a common word is not read into every question.
        assert_eq!(column_in("how many nulls does a typical column have?", &columns), None);
        assert_eq!(column_in("nulls in \"a\"", &columns).map(String::as_str), Some("a"));
        assert_eq!(column_in("nulls in b", &columns).map(String::as_str), Some("b"));
    }
}
