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

/// A filled `w` × `h` box at (`x`, `y`) as a path: shorter than a `<rect>`, which matters at
/// thousands of bars.
fn bar_path(class: &str, x: f64, y: f64, w: f64, h: f64) -> String {
    format!(r#"<path class="{class}" d="M{} {}h{}v{}h-{}z"/>"#, c(x), c(y), c(w), c(h), c(w))
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

/// The most bars a histogram draws: more bins are merged, adjacent ones summed.
pub(super) const MAX_HISTOGRAM_BARS: usize = 50;
/// The most bars a drift chart draws: more bins or categories are merged or pooled.
pub(super) const MAX_DRIFT_BARS: usize = 20;
/// The most values a top-values chart draws.
pub(super) const MAX_TOP_VALUES: usize = 20;
/// The most characters of a value or category a tooltip shows.
const MAX_TOOLTIP_CHARS: usize = 100;

/// `bins` merged into at most `max` bars: runs of adjacent bins (all of the same length but
/// the last) become one bar from the first's lower to the last's upper edge, their counts summed.
pub(super) fn merge_histogram(bins: &[HistogramBin], max: usize) -> Vec<HistogramBin> {
    let max = max.max(1);
    if bins.len() <= max {
        return bins.to_vec();
    }
    let run = bins.len().div_ceil(max);
    bins.chunks(run)
        .map(|chunk| HistogramBin {
            lower: chunk[0].lower,
            upper: chunk[chunk.len() - 1].upper,
            count: chunk.iter().fold(0u64, |sum, b| sum.saturating_add(b.count)),
        })
        .collect()
}

/// Equal-width histogram bars; bounds shown as dates for DATE and TIMESTAMP columns. With
/// `hide_bounds` (columns of personal data) no bin edge is printed: the axis ticks, tooltips
/// and label give counts only. More than [`MAX_HISTOGRAM_BARS`] bins are merged.
pub(super) fn histogram(column: &str, data_type: &str, bins: &[HistogramBin], hide_bounds: bool) -> String {
    let merged = merge_histogram(bins, MAX_HISTOGRAM_BARS);
    let shown = &merged[..];
    let (width, left, right, top, bottom) = (320.0, 2.0, 318.0, 16.0, 104.0);
    let max = shown.iter().map(|b| b.count).max().unwrap_or(0).max(1) as f64;
    let (lo, hi) = match (shown.first(), shown.last()) {
        (Some(first), Some(last)) => (first.lower, last.upper),
        _ => (0.0, 0.0),
    };
    let mut label = if hide_bounds {
        format!("Histogram of {column}: {} bins, bounds hidden (personal data)", bins.len())
    } else {
        format!(
            "Histogram of {column}: {} bins from {} to {}",
            bins.len(),
            fmt_bound(data_type, lo),
            fmt_bound(data_type, hi)
        )
    };
    if shown.len() < bins.len() {
        let _ = write!(label, ", merged into {} bars", shown.len());
    }
    let mut out = String::with_capacity(300 + shown.len() * 110);
    w!(
        out,
        r#"<svg class="chart histogram" viewBox="0 0 {width} 130" role="img" aria-label="{}">"#,
        esc(&label)
    );
    w!(out, r#"<text class="muted" x="{left}" y="10">max {}</text>"#, fmt_int(max as u64));
    let slot = (right - left) / shown.len().max(1) as f64;
    let gap = (slot * 0.15).min(2.0);
    for (i, bin) in shown.iter().enumerate() {
        let h = if bin.count == 0 { 0.0 } else { ((bin.count as f64 / max) * (bottom - top)).max(1.0) };
        let tip = if hide_bounds {
            format!("Bar {} of {}: {}", i + 1, shown.len(), fmt_int(bin.count))
        } else {
            format!(
                "{} – {}: {}",
                fmt_bound(data_type, bin.lower),
                fmt_bound(data_type, bin.upper),
                fmt_int(bin.count)
            )
        };
        w!(
            out,
            r#"<rect class="bar" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>"#,
            c(left + slot * i as f64 + gap / 2.0),
            c(bottom - h),
            c(slot - gap),
            c(h),
            esc(&tip)
        );
    }
    w!(out, r#"<line class="axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/>"#);
    if hide_bounds {
        w!(out, r#"<text class="tick" x="{left}" y="120">bounds hidden</text>"#);
    } else {
        w!(out, r#"<text class="tick" x="{left}" y="120">{}</text>"#, esc(&fmt_bound(data_type, lo)));
        w!(out, r#"<text class="tick end" x="{right}" y="120">{}</text>"#, esc(&fmt_bound(data_type, hi)));
    }
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
    let all = values.len();
    let values = &values[..values.len().min(MAX_TOP_VALUES)];
    let (row_h, bar_x, bar_w, width) = (20.0, 112.0, 124.0, 320.0);
    let max = values.iter().map(|v| v.count).max().unwrap_or(0).max(1) as f64;
    let total = row_count.max(1) as f64;
    let height = row_h * values.len() as f64 + 2.0;
    let mut out = String::with_capacity(300 + values.len() * 320);
    w!(
        out,
        r#"<svg class="chart top-values" viewBox="0 0 {width} {}" role="img" aria-label="{}">"#,
        c(height),
        esc(&if values.len() < all {
            format!("Top {} values of {column} (of the {all} listed; the rest are not drawn)", values.len())
        } else {
            format!("Top {} values of {column}", values.len())
        })
    );
    // One path for every row's track keeps the chart small (a rect each would double it).
    if !values.is_empty() {
        out.push_str(r#"<path class="track" d=""#);
        for i in 0..values.len() {
            w!(out, "M{bar_x} {}h{bar_w}v12h-{bar_w}z", c(row_h * i as f64 + 4.0));
        }
        out.push_str(r#""/>"#);
    }
    for (i, value) in values.iter().enumerate() {
        let y = row_h * i as f64;
        let (text, class) = match &value.value {
            Some(v) => (show(v), "label"),
            None => ("(null)".to_string(), "label null"),
        };
        let share = value.count as f64 / total;
        w!(
            out,
            r#"<g><title>{}: {} ({})</title><text class="{class}" y="{}">{}</text>"#,
            esc(&truncate(&text, MAX_TOOLTIP_CHARS)),
            fmt_int(value.count),
            fmt_share(share),
            c(y + 14.0),
            esc(&truncate(&text, 18))
        );
        let w = (value.count as f64 / max * bar_w).max(if value.count > 0 { 1.0 } else { 0.0 });
        out.push_str(&bar_path("bar", bar_x, y + 4.0, w, 12.0));
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

/// The label of pooled categories, as the drift detector names it.
const OTHER: &str = "(other)";

/// A drift share as a number to add: non-finite or negative shares count as none.
fn share_of(x: f64) -> f64 {
    if x.is_finite() { x.max(0.0) } else { 0.0 }
}

/// `[a, b)` and `[c, d]` as `[a, d]`: the range of a run of adjacent numeric bins.
fn span(first: &str, last: &str) -> String {
    match (first.split_once(", "), last.rsplit_once(", ")) {
        (Some((lower, _)), Some((_, upper))) if lower.starts_with(['[', '(']) => format!("{lower}, {upper}"),
        _ => format!("{first} – {last}"),
    }
}

/// At most `max` drift bars, and what was merged or pooled (for the chart's caption). Numeric
/// bins are ordered: runs of adjacent bins are merged (shares summed, edges spanning the run).
/// Categories keep the `max − 1` largest by the larger of their two shares, in their order;
/// the rest (with any `(other)` already there) are pooled into one `(other)` bar.
pub(super) fn cap_drift_bins(
    bins: &[DriftBin],
    numeric: bool,
    max: usize,
) -> (Vec<DriftBin>, Option<String>) {
    let max = max.max(2);
    if bins.len() <= max {
        return (bins.to_vec(), None);
    }
    if numeric {
        let run = bins.len().div_ceil(max);
        let merged: Vec<DriftBin> = bins
            .chunks(run)
            .map(|chunk| DriftBin {
                label: span(&chunk[0].label, &chunk[chunk.len() - 1].label),
                baseline: chunk.iter().map(|b| share_of(b.baseline)).sum(),
                current: chunk.iter().map(|b| share_of(b.current)).sum(),
            })
            .collect();
        let note = format!("{} bins merged into {} bars", bins.len(), merged.len());
        return (merged, Some(note));
    }
    let mut ranked: Vec<usize> = (0..bins.len()).filter(|&i| bins[i].label != OTHER).collect();
    let larger = |i: usize| share_of(bins[i].baseline).max(share_of(bins[i].current));
    ranked.sort_by(|&a, &b| larger(b).total_cmp(&larger(a)).then(a.cmp(&b)));
    ranked.truncate(max - 1);
    ranked.sort_unstable();
    let mut kept: Vec<DriftBin> = ranked.iter().map(|&i| bins[i].clone()).collect();
    let mut other = DriftBin { label: OTHER.into(), baseline: 0.0, current: 0.0 };
    let mut pooled = 0;
    for (i, bin) in bins.iter().enumerate() {
        if ranked.binary_search(&i).is_err() {
            other.baseline += share_of(bin.baseline);
            other.current += share_of(bin.current);
            pooled += 1;
        }
    }
    kept.push(other);
    let note =
        format!("{} of {} bars shown; {pooled} smaller categories pooled as (other)", kept.len(), bins.len());
    (kept, Some(note))
}

/// Paired bars of each shared bin's baseline and current share. `show` masks category labels.
/// More than [`MAX_DRIFT_BARS`] bins or categories are merged or pooled (see [`cap_drift_bins`]).
pub(super) fn drift_bins(
    column: &str,
    numeric: bool,
    bins: &[DriftBin],
    show: &dyn Fn(&str) -> String,
) -> String {
    let (capped, note) = cap_drift_bins(bins, numeric, MAX_DRIFT_BARS);
    let bins = &capped[..];
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
        esc(&match &note {
            Some(note) => format!("Baseline and current shares of {column}: {note}"),
            None => format!("Baseline and current shares of {column} over {} bins", bins.len()),
        })
    );
    out.push_str(r#"<rect class="baseline" x="0" y="3" width="10" height="8" rx="1"/><text class="tick" x="14" y="11">Baseline</text>"#);
    out.push_str(r#"<rect class="current" x="72" y="3" width="10" height="8" rx="1"/><text class="tick" x="86" y="11">Current</text>"#);
    for (i, bin) in bins.iter().enumerate() {
        let y = top + row_h * i as f64;
        let label = if bin.label == OTHER { bin.label.clone() } else { show(&bin.label) };
        let (b, cur) = (share(bin.baseline), share(bin.current));
        w!(
            out,
            r#"<g><title>{}: baseline {}, current {}</title><text class="label" y="{}">{}</text>"#,
            esc(&truncate(&label, MAX_TOOLTIP_CHARS)),
            fmt_share(b),
            fmt_share(cur),
            c(y + 14.0),
            esc(&truncate(&label, 18))
        );
        out.push_str(&bar_path("baseline", bar_x, y + 2.0, b / max * bar_w, 8.0));
        out.push_str(&bar_path("current", bar_x, y + 11.0, cur / max * bar_w, 8.0));
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
        let empty = histogram("x", "DOUBLE", &[], false);
        assert!(empty.starts_with("<svg class=\"chart histogram\"") && !empty.contains("NaN"));
        let bins = [HistogramBin { lower: f64::NAN, upper: f64::INFINITY, count: 0 }];
        assert!(!histogram("x", "DATE", &bins, false).contains("NaN"));
        let odd = [DriftBin { label: "<b>".into(), baseline: f64::NAN, current: 2.0 }];
        let svg = drift_bins("x", false, &odd, &|v| v.to_string());
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>") && !svg.contains("NaN"));
        let values = [ValueCount { value: None, count: 3 }];
        assert!(top_values("x", &values, 0, &|v| v.to_string()).contains("(null)"));
        assert!(gauge(f64::NAN, "/ 100", "good", "Score").contains(">0<"));
    }

    fn drift_bin(label: &str, baseline: f64, current: f64) -> DriftBin {
        DriftBin { label: label.into(), baseline, current }
    }

    #[test]
    fn histograms_merge_to_at_most_fifty_bars_keeping_edges() {
        let bins: Vec<HistogramBin> =
            (0..200).map(|i| HistogramBin { lower: i as f64, upper: (i + 1) as f64, count: i }).collect();
        let merged = merge_histogram(&bins, MAX_HISTOGRAM_BARS);
        assert_eq!(merged.len(), 50);
        for (i, bar) in merged.iter().enumerate() {
            assert_eq!((bar.lower, bar.upper), ((4 * i) as f64, (4 * i + 4) as f64));
            assert_eq!(bar.count, (4 * i as u64..4 * i as u64 + 4).sum::<u64>());
        }
        // 120 bins: runs of 3, 40 bars; 51 bins: runs of 2, 26 bars, the last a single bin.
        assert_eq!(merge_histogram(&bins[..120], 50).len(), 40);
        let odd = merge_histogram(&bins[..51], 50);
        assert_eq!((odd.len(), odd[25].lower, odd[25].upper, odd[25].count), (26, 50.0, 51.0, 50));
        assert_eq!(merge_histogram(&bins[..50], 50), bins[..50].to_vec());

        let svg = histogram("x", "DOUBLE", &bins, false);
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 50);
        assert!(svg.contains("200 bins from 0 to 200, merged into 50 bars"), "{svg}");
        assert!(svg.contains("<title>0 – 4: 6</title>") && svg.contains("<title>196 – 200: 790</title>"));
    }

    #[test]
    fn personal_histograms_hide_their_bounds() {
        // Dates of birth from 1950-01-01 to 2005-12-31, and SSNs stored as integers.
        let dob = [
            HistogramBin { lower: -631_152_000.0, upper: 500_000_000.0, count: 7 },
            HistogramBin { lower: 500_000_000.0, upper: 1_136_000_000.0, count: 3 },
        ];
        let svg = histogram("dob", "DATE", &dob, true);
        assert!(!svg.contains("1950") && !svg.contains("2005") && !svg.contains("1985"), "{svg}");
        assert!(svg.contains("bounds hidden") && svg.contains("<title>Bar 1 of 2: 7</title>"));
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 2);
        let ssn = [HistogramBin { lower: 123_456_789.0, upper: 987_654_321.0, count: 10 }];
        let svg = histogram("ssn", "BIGINT", &ssn, true);
        assert!(!svg.contains("123,456") && !svg.contains("987,654") && !svg.contains("6,789"), "{svg}");
        // Unmasked, the same bounds are shown.
        assert!(histogram("ssn", "BIGINT", &ssn, false).contains("123,456,789"));
    }

    #[test]
    fn drift_charts_pool_small_categories_into_other() {
        // 50 categories, most frequent first, then (other); "late" is small at baseline but
        // large now, so the larger of its shares keeps it.
        let mut bins: Vec<DriftBin> =
            (0..50).map(|i| drift_bin(&format!("cat{i:02}"), 0.018 - i as f64 * 0.0003, 0.01)).collect();
        bins[45] = drift_bin("late", 0.0001, 0.2);
        bins.push(drift_bin("(other)", 0.05, 0.04));
        let (capped, note) = cap_drift_bins(&bins, false, MAX_DRIFT_BARS);
        assert_eq!(capped.len(), 20);
        let labels: Vec<&str> = capped.iter().map(|b| b.label.as_str()).collect();
        let mut expected: Vec<String> = (0..18).map(|i| format!("cat{i:02}")).collect();
        expected.push("late".into());
        expected.push("(other)".into());
        assert_eq!(labels, expected);
        let total = |bins: &[DriftBin], f: fn(&DriftBin) -> f64| bins.iter().map(f).sum::<f64>();
        assert!((total(&capped, |b| b.baseline) - total(&bins, |b| b.baseline)).abs() < 1e-9);
        assert!((total(&capped, |b| b.current) - total(&bins, |b| b.current)).abs() < 1e-9);
        assert_eq!(note.as_deref(), Some("20 of 51 bars shown; 32 smaller categories pooled as (other)"));
        let svg = drift_bins("x", false, &bins, &|v| v.to_string());
        assert_eq!(svg.matches("<path class=\"current\"").count(), 20);
        assert!(svg.contains("pooled as (other)") && !svg.contains("cat30"));

        // Few enough: unchanged.
        let (same, note) = cap_drift_bins(&bins[..20], false, MAX_DRIFT_BARS);
        assert_eq!((same, note), (bins[..20].to_vec(), None));
    }

    #[test]
    fn numeric_drift_bins_merge_adjacent_ranges() {
        let mut bins: Vec<DriftBin> =
            (0..50).map(|i| drift_bin(&format!("[{i}, {})", i + 1), 0.02, 0.02)).collect();
        bins[49].label = "[49, 50]".into();
        let (merged, note) = cap_drift_bins(&bins, true, MAX_DRIFT_BARS);
        assert_eq!(merged.len(), 17);
        assert_eq!(merged[0].label, "[0, 3)");
        assert_eq!(merged[16].label, "[48, 50]");
        assert!((merged[0].baseline - 0.06).abs() < 1e-12 && (merged[16].current - 0.04).abs() < 1e-12);
        assert_eq!(note.as_deref(), Some("50 bins merged into 17 bars"));
        assert_eq!(span("a", "b"), "a – b");
    }

    #[test]
    fn top_values_draw_at_most_twenty_and_say_so() {
        let values: Vec<ValueCount> =
            (0..100).map(|i| ValueCount { value: Some(format!("v{i:03}")), count: 100 - i }).collect();
        let svg = top_values("x", &values, 10_000, &|v| v.to_string());
        assert_eq!(svg.matches("<path class=\"bar\"").count(), 20);
        assert!(svg.contains("Top 20 values of x (of the 100 listed") && !svg.contains("v020"));
    }
}
