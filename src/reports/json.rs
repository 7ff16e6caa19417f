//! The JSON rendering: the job's metadata and the report exactly as stored. Nothing is masked:
//! it is the full report for its owner (raw top values, minimums and maximums of personal-data
//! columns included), unlike the workbook and the page.

use serde_json::json;

use super::ReportMeta;
use crate::domain::Report;

pub(super) fn render(meta: &ReportMeta, report: &Report) -> anyhow::Result<Vec<u8>> {
    let document = json!({
        "job": {
            "id": meta.job_id,
            "toolId": meta.tool_id,
            "dataset": meta.dataset_name,
            "baseline": meta.baseline_name,
            "createdAt": meta.created_at,
            "finishedAt": meta.finished_at,
        },
        "report": report,
    });
    let mut bytes = serde_json::to_vec_pretty(&document)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// A cleanse's manifest with the job's metadata; an error for a report without one.
pub(super) fn render_manifest(meta: &ReportMeta, report: &Report) -> anyhow::Result<Vec<u8>> {
    let Some(manifest) = &report.cleanse else { anyhow::bail!("the report has no cleanse manifest") };
    let document = json!({
        "job": {
            "id": meta.job_id,
            "toolId": meta.tool_id,
            "dataset": meta.dataset_name,
            "createdAt": meta.created_at,
            "finishedAt": meta.finished_at,
        },
        "manifest": manifest,
    });
    let mut bytes = serde_json::to_vec_pretty(&document)?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use crate::domain::Report;
    use crate::reports::{ReportFormat, fixture, render};

    fn assert_close(path: &str, a: &serde_json::Value, b: &serde_json::Value) {
        use serde_json::Value;
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                assert!((x - y).abs() <= 1e-12 * x.abs().max(y.abs()), "{path}: {x} != {y}");
            }
            (Value::Array(xs), Value::Array(ys)) => {
                assert_eq!(xs.len(), ys.len(), "{path}");
                for (i, (x, y)) in xs.iter().zip(ys).enumerate() {
                    assert_close(&format!("{path}[{i}]"), x, y);
                }
            }
            (Value::Object(xs), Value::Object(ys)) => {
                assert_eq!(xs.keys().collect::<Vec<_>>(), ys.keys().collect::<Vec<_>>(), "{path}");
                for (k, x) in xs {
                    assert_close(&format!("{path}.{k}"), x, &ys[k]);
                }
            }
            _ => assert_eq!(a, b, "{path}"),
        }
    }

    #[test]
    fn json_round_trips_the_report() {
        let report = fixture::rich_report(2);
        let meta = fixture::rich_meta();
        let bytes = render(ReportFormat::Json, &meta, &report).unwrap();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.contains("\n  \"job\": {"), "pretty-printed");
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["job"]["id"], meta.job_id);
        assert_eq!(value["job"]["toolId"], "profile-my-data");
        assert_eq!(value["job"]["dataset"], "customers.csv");
        assert_eq!(value["job"]["baseline"], "customers-2024-q1.csv");
        assert_eq!(value["job"]["createdAt"], "2024-06-01T12:00:00Z");
        assert_eq!(value["job"]["finishedAt"], "2024-06-01T12:01:03Z");
        let back: Report = serde_json::from_value(value["report"].clone()).unwrap();
        // serde_json's float parsing may be one ulp off: compare numbers with a tolerance.
        assert_close(
            "report",
            &serde_json::to_value(&back).unwrap(),
            &serde_json::to_value(&report).unwrap(),
        );

        let empty = render(
            ReportFormat::Json,
            &crate::reports::ReportMeta { finished_at: None, baseline_name: None, ..meta },
            &Report::default(),
        )
        .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&empty).unwrap();
        assert!(value["job"]["finishedAt"].is_null() && value["job"]["baseline"].is_null());
        assert_eq!(serde_json::from_value::<Report>(value["report"].clone()).unwrap(), Report::default());
    }
}
