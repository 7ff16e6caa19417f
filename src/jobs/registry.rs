//! The tool registry: every tool, its agents and their typed parameters, and the one
//! function that checks a run request against it.
//!
//! A frontend renders its forms from this registry (`tools`, `tool(id)`), so the registry is
//! also the validation: an unknown tool, agent or parameter, or a value of the wrong type,
//! is refused with `BAD_USER_INPUT` naming the path (`unified-profiler.top_n_values`) and
//! what is allowed, before any job exists.

use serde_json::{Map, Value, json};

use crate::domain::ProfileParams;
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
    Integer { min: i64, max: i64 },
    Number { min: f64, max: f64 },
    Boolean,
    Choice(&'static [&'static str]),
}

impl ParameterSpec {
    /// The type name a form uses: integer, number, boolean or enum.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            ParameterKind::Integer { .. } => "integer",
            ParameterKind::Number { .. } => "number",
            ParameterKind::Boolean => "boolean",
            ParameterKind::Choice(_) => "enum",
        }
    }

    /// The allowed values, for parameters with a fixed set.
    pub fn allowed(&self) -> Option<Vec<Value>> {
        match self.kind {
            ParameterKind::Boolean => Some(vec![json!(true), json!(false)]),
            ParameterKind::Choice(values) => Some(values.iter().map(|v| json!(v)).collect()),
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
        match self.kind {
            ParameterKind::Integer { min, max } => match value.as_i64() {
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
        }
    }
}

/// The id of the profiling tool and of its profiler agent.
pub const PROFILE_TOOL: &str = "profile-my-data";
pub const UNIFIED_PROFILER: &str = "unified-profiler";

/// Every tool, in the order a frontend lists them.
pub fn tools() -> Vec<ToolSpec> {
    let defaults = ProfileParams::default();
    vec![ToolSpec {
        id: PROFILE_TOOL,
        name: "Profile My Data",
        description: "Profiles every column of a dataset inside the engine: types, nulls, distinct values, \
                      statistics, top values, histograms, outliers, duplicates, correlations, a quality \
                      score with its components, and alerts.",
        file_requirements: json!({
            "formats": ["csv", "tsv", "xlsx", "json", "ndjson", "parquet"],
            "baseline": "optional",
        }),
        agents: vec![AgentSpec {
            id: UNIFIED_PROFILER,
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
        }],
    }]
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
pub fn check_run(
    tool_id: &str,
    agents: Option<&[String]>,
    parameters: Option<&Value>,
) -> Result<CheckedRun, AppError> {
    let known = tools();
    let Some(tool) = known.iter().find(|t| t.id == tool_id) else {
        let ids: Vec<Value> = known.iter().map(|t| json!(t.id)).collect();
        return Err(AppError::bad_input("toolId", format!("unknown tool {tool_id:?}"))
            .with("allowed", Value::Array(ids)));
    };
    let allowed_agents = || Value::Array(tool.agents.iter().map(|a| json!(a.id)).collect());
    let selected: Vec<&AgentSpec> = match agents {
        None => tool.agents.iter().collect(),
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
            // The tool's order, each agent once.
            tool.agents.iter().filter(|a| ids.iter().any(|id| id == a.id)).collect()
        }
    };

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
    fn defaults_fill_every_parameter_and_parse_as_profile_params() {
        let run = check_run(PROFILE_TOOL, None, None).unwrap();
        assert_eq!(run.agents, [UNIFIED_PROFILER]);
        let params: ProfileParams = serde_json::from_value(run.parameters[UNIFIED_PROFILER].clone()).unwrap();
        assert_eq!(params, ProfileParams::default());
    }

    #[test]
    fn given_values_are_checked_and_kept() {
        let given = json!({ "unified-profiler": { "top_n_values": 3, "outlier_iqr_multiplier": 3 } });
        let run = check_run(PROFILE_TOOL, None, Some(&given)).unwrap();
        assert_eq!(run.parameters[UNIFIED_PROFILER]["top_n_values"], 3);
        assert_eq!(run.parameters[UNIFIED_PROFILER]["outlier_iqr_multiplier"], 3.0);
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
            let error = check_run(PROFILE_TOOL, None, Some(&given)).unwrap_err();
            assert_eq!(error.code(), ErrorCode::BadUserInput, "{given}");
            assert_eq!(field(&error), path, "{given}");
        }
        let error = check_run("no-such-tool", None, None).unwrap_err();
        assert_eq!(ext(&error, "allowed"), json!([PROFILE_TOOL]));
        let error = check_run(PROFILE_TOOL, Some(&["drifter".to_string()]), None).unwrap_err();
        assert_eq!(ext(&error, "allowed"), json!([UNIFIED_PROFILER]));
        let error =
            check_run(PROFILE_TOOL, None, Some(&json!({ "unified-profiler": { "top_n_values": -1 } })))
                .unwrap_err();
        assert_eq!(
            (ext(&error, "minimum").as_f64(), ext(&error, "maximum").as_f64()),
            (Some(1.0), Some(100.0))
        );
    }
}
