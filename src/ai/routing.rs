//! Next tools after a run: one or two suggestions, each a tool of the registry with the
//! agents to run, a confidence from the evidence in the report, and the reason.

use serde_json::Value;

use crate::domain::{DatasetId, Job, Report};
use crate::jobs::cleanse;
use crate::jobs::registry::{self, DRIFT_DETECTOR, PROFILE_TOOL, READINESS_RATER, SCORE_RISK, TEST_COVERAGE};

/// A suggested next run.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSuggestion {
    /// Always the id of a tool of the registry.
    pub tool_id: String,
    /// Agents of that tool to run (empty: the tool's default selection).
    pub agents: Vec<String>,
    /// 0–1.
    pub confidence: f64,
    pub reason: String,
}

/// Which datasets a suggestion is run on, for the job it follows: `(dataset, baseline)`.
/// After a job that published a new version (a cleanse), that version, with the original
/// as the baseline of a drift comparison; else the job's own dataset, which a drift
/// comparison takes as the baseline of a version yet to come (`dataset` is then `None`).
pub fn targets(job: &Job, suggestion: &ToolSuggestion) -> (Option<DatasetId>, Option<DatasetId>) {
    let drift = suggestion.agents.iter().any(|a| a == DRIFT_DETECTOR);
    match (job.output_dataset_id, drift) {
        (Some(output), true) => (Some(output), Some(job.dataset_id)),
        (Some(output), false) => (Some(output), None),
        (None, true) => (None, Some(job.dataset_id)),
        (None, false) => (Some(job.dataset_id), None),
    }
}

/// Whether a tool of this id exists (a model's suggestion is dropped otherwise).
pub fn known_tool(id: &str) -> bool {
    registry::tool(id).is_some()
}

fn ran(report: &Report, agent: &str) -> bool {
    report.agents.iter().any(|a| a.agent_id == agent)
}

/// The rule-based routing. Each rule weighs the evidence the report holds for it; the two
/// strongest are kept.
pub fn rule_based(report: &Report) -> Vec<ToolSuggestion> {
    let mut out = Vec::new();
    let profile = report.profile.as_ref();
    let suggest_tool = |tool: &str, agents: &[&str], confidence: f64, reason: String| ToolSuggestion {
        tool_id: tool.to_string(),
        agents: agents.iter().map(|a| a.to_string()).collect(),
        confidence: (confidence * 100.0).round() / 100.0,
        reason,
    };
    let suggest = |agents: &[&str], confidence: f64, reason: String| {
        suggest_tool(PROFILE_TOOL, agents, confidence, reason)
    };

    // A cleanse: its output is a new version, worth profiling to see what the cleanse achieved.
    let cleaned = report.cleanse.as_ref().is_some_and(|c| c.output_dataset_id.is_some());
    if cleaned {
        out.push(suggest(
            &[registry::UNIFIED_PROFILER, READINESS_RATER],
            0.8,
            "Profile the cleaned version (the job's output) to see its quality score and readiness after the \
             cleanse."
                .into(),
        ));
    }
    // Problems a cleanse fixes: duplicate rows, nulls, stray whitespace, invalid values, outliers.
    if let Some(p) = profile {
        let sum = |f: fn(&crate::domain::ColumnProfile) -> u64| p.columns.iter().map(f).sum::<u64>();
        let mut agents = vec![cleanse::PREVIEWER];
        if sum(|c| c.invalid_count) > 0 {
            agents.extend([cleanse::QUARANTINE, cleanse::TYPE_FIXER]);
        }
        if sum(|c| c.untrimmed_count) > 0 {
            agents.push(cleanse::STANDARDIZER);
        }
        if p.duplicate_row_count > 0 {
            agents.push(cleanse::DEDUPLICATOR);
        }
        if sum(|c| c.null_count) > 0 {
            agents.push(cleanse::NULL_HANDLER);
        }
        if sum(|c| c.outlier_count.unwrap_or(0)) > 0 {
            agents.push(cleanse::OUTLIER_REMOVER);
        }
        // A dataset with a column the cleanse keeps for itself cannot be cleaned as it is.
        let reserved = p.columns.iter().any(|c| crate::engine::cleanse::is_reserved_column(&c.name));
        if agents.len() > 1 && p.quality.score < 100.0 && !reserved {
            agents.push(cleanse::WRITEBACK);
            out.push(suggest_tool(
                cleanse::CLEAN_TOOL,
                &agents,
                (0.35 + 2.0 * (100.0 - p.quality.score) / 100.0).min(0.9),
                format!(
                    "The quality score is {} of 100 with {} duplicate rows; clean-my-data fixes what the profile \
                     found into a new version (the original is kept) — preview its plan first.",
                    crate::reports::fmt_num(p.quality.score),
                    p.duplicate_row_count
                ),
            ));
        }
    }

    // Personal data hinted by the profile but never scored: the more columns, the surer.
    if !ran(report, SCORE_RISK) {
        let hinted = profile.map_or(0, |p| p.columns.iter().filter(|c| c.pii.is_some()).count());
        if hinted > 0 {
            out.push(suggest(
                &[SCORE_RISK],
                (0.6 + 0.1 * hinted as f64).min(0.95),
                format!(
                    "The profile flags {hinted} column(s) as likely personal data; score-risk validates them and \
                     says which regulations apply."
                ),
            ));
        }
    }
    // A low quality score with no data tests: tests pin the problems down to rows.
    if !ran(report, TEST_COVERAGE)
        && let Some(p) = profile
        && p.quality.score < 90.0
    {
        // With the readiness rater only when it did not run either.
        let rated = ran(report, READINESS_RATER);
        let agents: &[&str] = if rated { &[TEST_COVERAGE] } else { &[TEST_COVERAGE, READINESS_RATER] };
        out.push(suggest(
            agents,
            (0.5 + (90.0 - p.quality.score) / 100.0).min(0.9),
            format!(
                "The quality score is {} of 100; test-coverage-agent suggests and runs data tests that list the \
                 failing rows{}.",
                crate::reports::fmt_num(p.quality.score),
                if rated { "" } else { ", and readiness-rater gives a verdict" }
            ),
        ));
    }
    // Drift: nothing was compared yet. After a cleanse, its output against the original;
    // else this version as the baseline of the next.
    if cleaned {
        out.push(suggest(
            &[DRIFT_DETECTOR],
            0.4,
            "Compare the cleaned version with the original (drift-detector, the original as the baseline) to see \
             which columns' distributions the cleanse changed."
                .into(),
        ));
    } else if report.cleanse.is_some() {
        // A cleanse that published nothing leaves nothing new to compare.
    } else if !ran(report, DRIFT_DETECTOR) {
        out.push(suggest(
            &[DRIFT_DETECTOR],
            0.4,
            "No baseline was compared: when the next version arrives, run drift-detector with this dataset as the \
             baseline to catch distribution and schema changes."
                .into(),
        ));
    } else if let Some(drift) = &report.drift
        && drift.drifted_count > 0
        && let recheck = [SCORE_RISK, TEST_COVERAGE, READINESS_RATER]
            .into_iter()
            .filter(|a| !ran(report, a))
            .collect::<Vec<_>>()
        && !recheck.is_empty()
    {
        out.push(suggest(
            &recheck,
            (0.5 + 0.05 * drift.drifted_count as f64).min(0.9),
            format!(
                "{} column(s) drifted from the baseline; re-check the new version with {}.",
                drift.drifted_count,
                recheck.join(", ")
            ),
        ));
    }
    if out.is_empty() {
        // Nothing stands out: keep watching the data as new versions arrive.
        out.push(suggest(
            &[DRIFT_DETECTOR, READINESS_RATER],
            0.3,
            "No check flags a problem: compare each new version with this one (drift-detector) and re-rate its \
             readiness."
                .into(),
        ));
    }
    out.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    out.truncate(2);
    out
}

/// Reads a model's routing answer (`{"suggestions": [{toolId, agents, confidence, reason}]}`),
/// keeping only tools and agents of the registry, confidences in 0–1, at most two.
pub fn parse_model_answer(text: &str) -> Option<Vec<ToolSuggestion>> {
    let json = extract_json(text)?;
    let items = json.get("suggestions").and_then(Value::as_array).or_else(|| json.as_array())?;
    let mut out = Vec::new();
    for item in items {
        let Some(tool_id) = item.get("toolId").and_then(Value::as_str) else { continue };
        let Some(tool) = registry::tool(tool_id) else { continue };
        // Agents the registry does not know make the suggestion the model's invention: it is
        // dropped whole rather than run with what is left (an empty list cannot be run).
        let named: Vec<&str> = item
            .get("agents")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if named.iter().any(|id| !tool.agents.iter().any(|spec| spec.id == *id)) {
            continue;
        }
        // None named: every agent of the tool, as a run that names none.
        let agents: Vec<String> = if named.is_empty() {
            tool.agents.iter().map(|spec| spec.id.to_string()).collect()
        } else {
            named.iter().map(|id| id.to_string()).collect()
        };
        if out.iter().any(|s: &ToolSuggestion| s.tool_id == tool.id && s.agents == agents) {
            continue;
        }
        let Some(confidence) = item.get("confidence").and_then(Value::as_f64) else { continue };
        let reason = item.get("reason").and_then(Value::as_str).unwrap_or("").trim().to_string();
        if reason.is_empty() || !confidence.is_finite() {
            continue;
        }
        out.push(ToolSuggestion {
            tool_id: tool.id.to_string(),
            agents,
            confidence: confidence.clamp(0.0, 1.0),
            reason,
        });
        if out.len() == 2 {
            break;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The JSON value in a model's text: the whole text, or the first fenced or braced block.
pub fn extract_json(text: &str) -> Option<Value> {
    let text = text.trim();
    if let Ok(value) = serde_json::from_str(text) {
        return Some(value);
    }
    let start = text.find(['{', '['])?;
    let end = text.rfind(['}', ']'])?;
    (end > start).then(|| serde_json::from_str(&text[start..=end]).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_a_cleanse_fixes_route_to_clean_my_data_and_a_cleanse_to_a_profile() {
        let mut report = crate::reports::fixture::rich_report(0);
        let profile = report.profile.as_mut().unwrap();
        profile.quality.score = 80.0;
        profile.duplicate_row_count = 5;
        profile.columns[0].null_count = 3;
        let next = rule_based(&report);
        let clean = next.iter().find(|s| s.tool_id == cleanse::CLEAN_TOOL).expect("a cleanse is suggested");
        assert_eq!(clean.confidence, 0.75);
        for agent in [cleanse::PREVIEWER, cleanse::DEDUPLICATOR, cleanse::NULL_HANDLER, cleanse::WRITEBACK] {
            assert!(clean.agents.iter().any(|a| a == agent), "{agent}: {clean:?}");
        }
        assert!(
            clean.reason.contains("80 of 100") && clean.reason.contains("5 duplicate rows"),
            "{}",
            clean.reason
        );
        crate::jobs::registry::check_run(cleanse::CLEAN_TOOL, Some(&clean.agents), None, false)
            .expect("the suggestion is a valid run");
        // Not for a dataset the cleanse refuses (a column named like its own).
        let mut reserved = report.clone();
        reserved.profile.as_mut().unwrap().columns[1].name = "file_row_number".into();
        assert!(rule_based(&reserved).iter().all(|s| s.tool_id != cleanse::CLEAN_TOOL));

        // A cleanse that published a version: profile it, and compare it with the original.
        let manifest = crate::domain::CleanseManifest {
            output_dataset_id: Some("0191e0a0-0000-7000-8000-000000000001".into()),
            ..Default::default()
        };
        let cleansed = Report { cleanse: Some(manifest), ..Report::default() };
        let next = rule_based(&cleansed);
        assert_eq!(next[0].tool_id, PROFILE_TOOL);
        assert_eq!(next[0].agents, [registry::UNIFIED_PROFILER, READINESS_RATER]);
        assert_eq!(next[0].confidence, 0.8);
        assert_eq!(next[1].agents, [DRIFT_DETECTOR]);
        assert!(next[1].reason.contains("the original as the baseline"), "{}", next[1].reason);
        // One that published nothing has no cleaned version to profile.
        let unpublished = Report { cleanse: Some(Default::default()), ..Report::default() };
        let next = rule_based(&unpublished);
        assert!(next.iter().all(|s| !s.reason.contains("cleaned version")), "{next:?}");
    }

    #[test]
    fn after_drift_only_the_agents_that_did_not_run_are_suggested_again() {
        let mut report = crate::reports::fixture::rich_report(0);
        (report.profile, report.cleanse) = (None, None);
        assert!(report.drift.as_ref().is_some_and(|d| d.drifted_count > 0));
        assert!(rule_based(&report).iter().all(|s| !s.reason.contains("drifted")), "every one ran");
        report.agents.retain(|a| a.agent_id != SCORE_RISK);
        let next = rule_based(&report);
        let recheck = next.iter().find(|s| s.reason.contains("drifted")).expect("a re-check");
        assert_eq!(recheck.agents, [SCORE_RISK]);
        assert!(recheck.reason.ends_with("re-check the new version with score-risk."), "{}", recheck.reason);
    }

    #[test]
    fn an_agent_that_ran_is_not_suggested_again() {
        // The readiness rater ran, the test agent did not, and the score is low.
        let mut report = crate::reports::fixture::rich_report(0);
        report.agents.retain(|a| a.agent_id != TEST_COVERAGE);
        assert!(ran(&report, READINESS_RATER));
        report.profile.as_mut().unwrap().quality.score = 60.0;
        report.cleanse = None;
        let next = rule_based(&report);
        let tests =
            next.iter().find(|s| s.agents.iter().any(|a| a == TEST_COVERAGE)).expect("tests suggested");
        assert_eq!(tests.agents, [TEST_COVERAGE], "{tests:?}");
        assert!(!tests.reason.contains("readiness-rater"), "{}", tests.reason);
        // Neither ran: both are suggested.
        report.agents.retain(|a| a.agent_id != READINESS_RATER);
        let next = rule_based(&report);
        let tests =
            next.iter().find(|s| s.agents.iter().any(|a| a == TEST_COVERAGE)).expect("tests suggested");
        assert_eq!(tests.agents, [TEST_COVERAGE, READINESS_RATER], "{tests:?}");
    }

    #[test]
    fn a_models_suggestions_keep_only_registry_tools_and_agents() {
        let text = r#"Here you go: {"suggestions": [
            {"toolId": "launch-rockets", "confidence": 0.99, "reason": "fun"},
            {"toolId": "profile-my-data", "agents": ["score-risk", "delete-everything"], "confidence": 0.9, "reason": "invented"},
            {"toolId": "profile-my-data", "agents": ["score-risk"], "confidence": 1.7, "reason": "PII"},
            {"toolId": "profile-my-data", "agents": ["score-risk"], "confidence": 0.5, "reason": "again"},
            {"toolId": "profile-my-data", "confidence": "high", "reason": "no number"},
            {"toolId": "clean-my-data", "confidence": 0.4, "reason": "no agents named"}
        ]}"#;
        let parsed = parse_model_answer(text).unwrap_or_default();
        assert_eq!(parsed.len(), 2, "{parsed:?}");
        assert_eq!(parsed[0].tool_id, "profile-my-data");
        assert_eq!(parsed[0].agents, ["score-risk"]);
        assert_eq!(parsed[0].confidence, 1.0);
        assert_eq!(parsed[1].tool_id, "clean-my-data");
        let every: Vec<&str> = registry::tool("clean-my-data").unwrap().agents.iter().map(|a| a.id).collect();
        assert_eq!(parsed[1].agents, every);
        assert_eq!(parse_model_answer("not json at all"), None);
        assert_eq!(
            parse_model_answer(r#"{"suggestions": [{"toolId": "nope", "confidence": 0.5, "reason": "x"}]}"#),
            None
        );
    }
}
