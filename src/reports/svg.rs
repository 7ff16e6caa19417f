//! Inline SVG charts for the HTML report. Every chart is an `<svg class="chart …" role="img"
//! aria-label="…">` with a `viewBox`, so it scales to its container; every text from data is
//! escaped; bars carry a `<title>` tooltip.

use std::fmt::Write as _;

use super::html::esc;
use super::{fmt_bound, fmt_int, fmt_num, fmt_share, truncate};
use crate::domain::{DriftBin, HistogramBin, ValueCount};

macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

/// A coordinate with at most one decimal.
fn c(x: f64) -> String {
    if !x.is_finite() {
        return "0".into();
    }
    let text = format!("{:.1}", x);
    match text.strip_suffix(".0") {
        Some("-0") => "0".into(),
        Some(int) => int.to_string(),
        None => text,
    }
}

/// A ring gauge for a 0–100 score: `class` colours the arc (`good`, `fair`, `poor`…).
pub(super) fn gauge(score: f64, caption: &str, class: &str, label: &str) -> String {
    let score = if score.is_finite() { score.clamp(0.0, 100.0) } else { 0.0 };
    let r = 50.0;
    let circumference = 2.0 * std::f64::consts::PI * r;
    let arc = circumference * score / 100.0;
    let mut out = String::with_capacity(700);
    w!(
        out,
        r#"<svg class="chart gauge {class}" viewBox="0 0 120 120" role="img" aria-label="{}">"#,
        esc(label)
    );
    w!(out, r#"<circle class="track" cx="60" cy="60" r="{r}"/>"#);
    w!(
        out,
        r#"<circle class="arc" cx="60" cy="60" r="{r}" stroke-dasharray="{} {}" transform="rotate(-90 60 60)"/>"#,
        c(arc),
        c(circumference)
    );
    w!(
        out,
        r#"<text class="gauge-value" x="60" y="62">{}</text>"#,
        esc(&fmt_num((score * 10.0).round() / 10.0))
    );
    w!(out, r#"<text class="gauge-caption" x="60" y="82">{}</text>"#, esc(caption));
    out.push_str("</svg>");
    out
}

/// Equal-width histogram bars; bounds shown as dates for DATE and TIMESTAMP columns.
pub(super) fn histogram(column: &str, data_type: &str, bins: &[HistogramBin]) -> String {
    let (width, left, right, top, bottom) = (320.0, 2.0, 318.0, 16.0, 104.0);
    let max = bins.iter().map(|b| b.count).max().unwrap_or(0).max(1) as f64;
    let (lo, hi) = match (bins.first(), bins.last()) {
        (Some(first), Some(last)) => (first.lower, last.upper),
        _ => (0.0, 0.0),
    };
    let label = format!(
        "Histogram of {column}: {} bins from {} to {}",
        bins.len(),
        fmt_bound(data_type, lo),
        fmt_bound(data_type, hi)
    );
    let mut out = String::with_capacity(300 + bins.len() * 110);
    w!(
        out,
        r#"<svg class="chart histogram" viewBox="0 0 {width} 130" role="img" aria-label="{}">"#,
        esc(&label)
    );
    w!(out, r#"<text class="muted" x="{left}" y="10">max {}</text>"#, fmt_int(max as u64));
    let slot = (right - left) / bins.len().max(1) as f64;
    let gap = (slot * 0.15).min(2.0);
    for (i, bin) in bins.iter().enumerate() {
        let h = if bin.count == 0 { 0.0 } else { ((bin.count as f64 / max) * (bottom - top)).max(1.0) };
        w!(
            out,
            r#"<rect class="bar" x="{}" y="{}" width="{}" height="{}"><title>{} – {}: {}</title></rect>"#,
            c(left + slot * i as f64 + gap / 2.0),
            c(bottom - h),
            c(slot - gap),
            c(h),
            esc(&fmt_bound(data_type, bin.lower)),
            esc(&fmt_bound(data_type, bin.upper)),
            fmt_int(bin.count)
        );
    }
    w!(out, r#"<line class="axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/>"#);
    w!(out, r#"<text class="tick" x="{left}" y="120">{}</text>"#, esc(&fmt_bound(data_type, lo)));
    w!(out, r#"<text class="tick end" x="{right}" y="120">{}</text>"#, esc(&fmt_bound(data_type, hi)));
    out.push_str("</svg>");
    out
}

/// Horizontal bars of the most frequent values, as a share of `row_count`. `show` turns a
/// value into what may be displayed (masking personal data).
pub(super) fn top_values(
    column: &str,
    values: &[ValueCount],
    row_count: u64,
    show: &dyn Fn(&str) -> String,
) -> String {
    let values = &values[..values.len().min(20)];
    let (row_h, bar_x, bar_w, width) = (20.0, 112.0, 124.0, 320.0);
    let max = values.iter().map(|v| v.count).max().unwrap_or(0).max(1) as f64;
    let total = row_count.max(1) as f64;
    let height = row_h * values.len() as f64 + 2.0;
    let mut out = String::with_capacity(300 + values.len() * 320);
    w!(
        out,
        r#"<svg class="chart top-values" viewBox="0 0 {width} {}" role="img" aria-label="{}">"#,
        c(height),
        esc(&format!("Top {} values of {column}", values.len()))
    );
    for (i, value) in values.iter().enumerate() {
        let y = row_h * i as f64;
        let (text, class) = match &value.value {
            Some(v) => (show(v), "label"),
            None => ("(null)".to_string(), "label null"),
        };
        let share = value.count as f64 / total;
        w!(
            out,
            r#"<g><title>{}: {} ({})</title><text class="{class}" x="0" y="{}">{}</text>"#,
            esc(&text),
            fmt_int(value.count),
            fmt_share(share),
            c(y + 14.0),
            esc(&truncate(&text, 18))
        );
        w!(out, r#"<rect class="track" x="{bar_x}" y="{}" width="{bar_w}" height="12" rx="2"/>"#, c(y + 4.0));
        w!(
            out,
            r#"<rect class="bar" x="{bar_x}" y="{}" width="{}" height="12" rx="2"/>"#,
            c(y + 4.0),
            c((value.count as f64 / max * bar_w).max(if value.count > 0 { 1.0 } else { 0.0 }))
        );
        w!(
            out,
            r#"<text class="tick end" x="{width}" y="{}">{} · {}</text></g>"#,
            c(y + 14.0),
            fmt_int(value.count),
            fmt_share(share)
        );
    }
    out.push_str("</svg>");
    out
}

/// Paired bars of each shared bin's baseline and current share. `show` masks category labels.
pub(super) fn drift_bins(column: &str, bins: &[DriftBin], show: &dyn Fn(&str) -> String) -> String {
    let bins = &bins[..bins.len().min(60)];
    let (row_h, bar_x, bar_w, width, top) = (24.0, 112.0, 120.0, 320.0, 20.0);
    let max =
        bins.iter().flat_map(|b| [b.baseline, b.current]).filter(|x| x.is_finite()).fold(0.0_f64, f64::max);
    let max = if max > 0.0 { max } else { 1.0 };
    let share = |x: f64| if x.is_finite() { x.max(0.0) } else { 0.0 };
    let height = top + row_h * bins.len() as f64;
    let mut out = String::with_capacity(400 + bins.len() * 420);
    w!(
        out,
        r#"<svg class="chart drift-bins" viewBox="0 0 {width} {}" role="img" aria-label="{}">"#,
        c(height),
        esc(&format!("Baseline and current shares of {column} over {} bins", bins.len()))
    );
    out.push_str(r#"<rect class="baseline" x="0" y="3" width="10" height="8" rx="1"/><text class="tick" x="14" y="11">Baseline</text>"#);
    out.push_str(r#"<rect class="current" x="72" y="3" width="10" height="8" rx="1"/><text class="tick" x="86" y="11">Current</text>"#);
    for (i, bin) in bins.iter().enumerate() {
        let y = top + row_h * i as f64;
        let label = if bin.label == "(other)" { bin.label.clone() } else { show(&bin.label) };
        let (b, cur) = (share(bin.baseline), share(bin.current));
        w!(
            out,
            r#"<g><title>{}: baseline {}, current {}</title><text class="label" x="0" y="{}">{}</text>"#,
            esc(&label),
            fmt_share(b),
            fmt_share(cur),
            c(y + 14.0),
            esc(&truncate(&label, 18))
        );
        w!(
            out,
            r#"<rect class="baseline" x="{bar_x}" y="{}" width="{}" height="8" rx="1"/>"#,
            c(y + 2.0),
            c(b / max * bar_w)
        );
        w!(
            out,
            r#"<rect class="current" x="{bar_x}" y="{}" width="{}" height="8" rx="1"/>"#,
            c(y + 11.0),
            c(cur / max * bar_w)
        );
        w!(
            out,
            r#"<text class="tick end" x="{width}" y="{}">{} → {}</text></g>"#,
            c(y + 14.0),
            fmt_share(b),
            fmt_share(cur)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_are_short() {
        assert_eq!(c(12.0), "12");
        assert_eq!(c(12.34), "12.3");
        assert_eq!(c(-0.01), "0");
        assert_eq!(c(f64::NAN), "0");
    }

    #[test]
    fn charts_survive_odd_input() {
        let empty = histogram("x", "DOUBLE", &[]);
        assert!(empty.starts_with("<svg class=\"chart histogram\"") && !empty.contains("NaN"));
        let bins = [HistogramBin { lower: f64::NAN, upper: f64::INFINITY, count: 0 }];
        assert!(!histogram("x", "DATE", &bins).contains("NaN"));
        let odd = [DriftBin { label: "<b>".into(), baseline: f64::NAN, current: 2.0 }];
        let svg = drift_bins("x", &odd, &|v| v.to_string());
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>") && !svg.contains("NaN"));
        let values = [ValueCount { value: None, count: 3 }];
        assert!(top_values("x", &values, 0, &|v| v.to_string()).contains("(null)"));
        assert!(gauge(f64::NAN, "/ 100", "good", "Score").contains(">0<"));
    }
}
