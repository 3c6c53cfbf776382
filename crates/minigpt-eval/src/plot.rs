//! SVG line plots of summary metrics against temperature, one line per (model, strategy);
//! deterministic strategies (no temperature) are dashed horizontal lines. Plain SVG text, no
//! plotting dependency.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::bootstrap::Interval;
use crate::row::SummaryRow;
use crate::summary::SummaryLine;

/// Summary columns that get a plot (when they have values).
pub const PLOTTED: [&str; 20] = [
    "pooled_rep_2",
    "pooled_rep_3",
    "pooled_rep_4",
    "pooled_diversity",
    "pooled_distinct_1",
    "pooled_distinct_2",
    "self_bleu4",
    "self_bleu4_across",
    "zipf",
    "mauve",
    "loop_share",
    "mean_repetition_rate",
    "mean_holtzman_repeats",
    "mean_mean_logprob",
    "mean_perplexity",
    "mean_mean_entropy",
    "mean_mean_sampling_entropy",
    "mean_judge_perplexity",
    "mean_coherence",
    "mean_n_tokens",
];

const COLORS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// One line: a label and its points (`x = None` for a horizontal line).
pub struct Series {
    /// Legend text.
    pub label: String,
    /// `(temperature, value)` points.
    pub points: Vec<(Option<f64>, f64)>,
    /// Each point's 95 % interval, when known (drawn as an error bar, or a band for a
    /// constant).
    pub bars: Vec<Option<Interval>>,
    /// The human reference: drawn in black, dotted, thicker.
    pub reference: bool,
}

fn nice_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(1e-12);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let f = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|&f| norm <= f)
        .unwrap_or(10.0);
    f * mag
}

/// The most ticks an axis gets.
const MAX_TICKS: usize = 24;

/// An axis' ticks over `[lo, hi]`: the multiples of a nice step, found by index (never by
/// adding the step, which vanishes in rounding next to values like 1e31) and at most
/// [`MAX_TICKS`], with their labels.
fn ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let step = nice_step(hi - lo, 6.0);
    let first = (lo / step).ceil();
    (0..MAX_TICKS)
        .map(|i| (first + i as f64) * step)
        .take_while(|&v| v <= hi + step * 1e-9)
        .map(|v| {
            let label = if !(1e-4..1e6).contains(&step) {
                // Enough mantissa digits for neighbouring ticks to differ.
                let d = ((v.abs().max(step) / step).log10().ceil() as usize).clamp(2, 15);
                format!("{v:.d$e}")
            } else if step >= 1.0 {
                format!("{v:.0}")
            } else {
                let digits = (-step.log10().floor()) as usize;
                format!("{v:.digits$}")
            };
            (v, label)
        })
        .collect()
}

/// `[lo, hi]` widened to a drawable span: by `share` of its width, and at least by a part in
/// 1e9 of its magnitude (so it stays wider than rounding) and by `floor`.
fn widen(lo: f64, hi: f64, share: f64, floor: f64) -> (f64, f64) {
    let pad = ((hi - lo) * share)
        .max(lo.abs().max(hi.abs()) * 1e-9)
        .max(floor);
    (lo - pad, hi + pad)
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders one chart.
pub fn line_chart(title: &str, y_label: &str, series: &[Series]) -> String {
    let (w, h, left, right, top, bottom) = (760.0, 440.0, 70.0, 200.0, 40.0, 50.0);
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.0))
        .filter(|x| x.is_finite())
        .collect();
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| {
            let bars = s.bars.iter().flatten().flat_map(|i| [i.lo, i.hi]);
            s.points.iter().map(|p| p.1).chain(bars)
        })
        .filter(|v| v.is_finite())
        .collect();
    let (mut x0, mut x1) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, &x| {
        (a.0.min(x), a.1.max(x))
    });
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 - x0 < 1e-9 * x0.abs().max(1.0) {
        (x0, x1) = widen(x0, x1, 0.0, 0.5);
    }
    let (mut y0, mut y1) = ys.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, &y| {
        (a.0.min(y), a.1.max(y))
    });
    if !y0.is_finite() {
        (y0, y1) = (0.0, 1.0);
    }
    // A flat line (every value equal) gets an axis of ±5 % around it, not of rounding noise.
    let flat = y1 - y0 <= y0.abs().max(y1.abs()) * 1e-9;
    let floor = if flat {
        (y0.abs() * 0.05).max(1e-6)
    } else {
        1e-6
    };
    let (y0, y1) = widen(y0, y1, 0.08, floor);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let px = |x: f64| left + (x - x0) / (x1 - x0) * pw;
    let py = |y: f64| top + (y1 - y) / (y1 - y0) * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        left + pw / 2.0,
        esc(title)
    );
    for (v, label) in ticks(y0, y1) {
        let yy = py(v);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"##,
            left + pw,
            left - 6.0,
            yy + 4.0
        );
    }
    for (v, label) in ticks(x0, x1) {
        let xx = px(v);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{top}" x2="{xx:.1}" y2="{:.1}" stroke="#e5e5e5"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            top + ph,
            top + ph + 16.0
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">temperature</text>"#,
        left + pw / 2.0,
        h - 12.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        top + ph / 2.0,
        esc(y_label)
    );
    for (i, se) in series.iter().enumerate() {
        let color = if se.reference {
            "black"
        } else {
            COLORS[i % COLORS.len()]
        };
        let (dash_of_constant, width) = if se.reference {
            ("2 3", 2.6)
        } else {
            ("6 4", 1.6)
        };
        let bar = |k: usize| se.bars.get(k).copied().flatten();
        for (k, p) in se.points.iter().enumerate() {
            let Some(iv) = bar(k).filter(|i| i.lo.is_finite() && i.hi.is_finite()) else {
                continue;
            };
            match p.0 {
                // A constant's interval: a faint band across the plot.
                None => {
                    let _ = writeln!(
                        s,
                        r#"<rect class="band" x="{left}" y="{:.1}" width="{pw}" height="{:.1}" fill="{color}" fill-opacity="0.12"/>"#,
                        py(iv.hi),
                        (py(iv.lo) - py(iv.hi)).max(0.5)
                    );
                }
                // A point's interval: a vertical bar with caps.
                Some(x) => {
                    let (xx, a, b) = (px(x), py(iv.hi), py(iv.lo));
                    let _ = writeln!(
                        s,
                        r#"<path class="bar" d="M{xx:.1},{a:.1}V{b:.1}M{:.1},{a:.1}H{:.1}M{:.1},{b:.1}H{:.1}" stroke="{color}" stroke-width="1.2" fill="none"/>"#,
                        xx - 4.0,
                        xx + 4.0,
                        xx - 4.0,
                        xx + 4.0
                    );
                }
            }
        }
        let fixed: Vec<f64> = se
            .points
            .iter()
            .filter(|p| p.0.is_none() && p.1.is_finite())
            .map(|p| p.1)
            .collect();
        for y in fixed {
            let _ = writeln!(
                s,
                r#"<line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="{width}" stroke-dasharray="{dash_of_constant}"/>"#,
                py(y),
                left + pw,
                py(y)
            );
        }
        let mut pts: Vec<(f64, f64)> = se
            .points
            .iter()
            .filter_map(|p| p.0.map(|x| (x, p.1)))
            .filter(|p| p.1.is_finite())
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        if !pts.is_empty() {
            let line: Vec<String> = pts
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.8"/>"#,
                line.join(" ")
            );
            for &(x, y) in &pts {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                    px(x),
                    py(y)
                );
            }
        }
        let ly = top + 14.0 + 18.0 * i as f64;
        let lx = left + pw + 14.0;
        let dash = if se.points.iter().all(|p| p.0.is_none()) {
            format!(r#" stroke-dasharray="{dash_of_constant}""#)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            lx + 22.0,
            lx + 28.0,
            ly + 4.0,
            esc(&se.label)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The charts of a summary: `(metric, SVG)` for each plotted metric that has values, one line
/// per strategy (per model and strategy when the rows hold several models) with each point's
/// bootstrap interval as an error bar, and the human continuations' row (model `human`) as a
/// black dotted reference line labelled `human`.
pub fn charts(lines: &[SummaryLine]) -> Vec<(&'static str, String)> {
    let is_human = |r: &SummaryRow| r.model == crate::row::HUMAN;
    let models: BTreeSet<&str> = lines
        .iter()
        .map(|l| &l.row)
        .filter(|r| !is_human(r))
        .map(|r| r.model.as_str())
        .collect();
    let mut out = vec![];
    for metric in PLOTTED {
        let mut series: Vec<Series> = vec![];
        for line in lines {
            let r = &line.row;
            let Some(Some(y)) = r.metric(metric) else {
                continue;
            };
            let label = if is_human(r) {
                crate::row::HUMAN.to_string()
            } else if models.len() > 1 {
                format!("{} / {}", r.model, r.strategy)
            } else {
                r.strategy.clone()
            };
            let (x, bar) = (r.temperature, line.interval(metric));
            match series.iter_mut().find(|s| s.label == label) {
                Some(s) => {
                    s.points.push((x, y));
                    s.bars.push(bar);
                }
                None => series.push(Series {
                    label,
                    points: vec![(x, y)],
                    bars: vec![bar],
                    reference: is_human(r),
                }),
            }
        }
        if !series.is_empty() {
            let svg = line_chart(&format!("{metric} against temperature"), metric, &series);
            out.push((metric, svg));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_draws_lines_points_and_dashed_constants() {
        let series = vec![
            Series {
                label: "top_p_0.9".into(),
                points: vec![(Some(1.0), 2.0), (Some(0.5), 1.0)],
                bars: vec![Some(Interval { lo: 1.5, hi: 2.5 }), None],
                reference: false,
            },
            Series {
                label: "greedy <g>".into(),
                points: vec![(None, 1.5)],
                bars: vec![Some(Interval { lo: 1.25, hi: 1.75 })],
                reference: false,
            },
        ];
        let svg = line_chart("rep_2", "rep_2", &series);
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 2);
        // The constant: a dashed line in the plot and one in the legend.
        assert_eq!(svg.matches("stroke-dasharray").count(), 2);
        assert!(svg.contains("greedy &lt;g&gt;"));
        // One error bar (the other point has no interval) and one band for the constant.
        assert_eq!(svg.matches("class=\"bar\"").count(), 1);
        assert_eq!(svg.matches("class=\"band\"").count(), 1);
        // Points sorted by temperature: x = 0.5 at the left edge (70), 1.0 at the right (560).
        let poly = svg.lines().find(|l| l.starts_with("<polyline")).unwrap();
        assert!(poly.contains("points=\"70.0,"), "{poly}");
        assert!(poly.contains(" 560.0,"), "{poly}");
    }

    /// The human row is one black dotted line labelled `human`, and does not make a run of
    /// one model label its strategies by model.
    #[test]
    fn the_human_row_is_a_black_dotted_reference_line() {
        let row = |model: &str, strategy: &str, t: Option<f64>, v: f64| SummaryRow {
            model: model.into(),
            strategy: strategy.into(),
            temperature: t,
            pooled_rep_2: Some(v),
            ..SummaryRow::default()
        };
        let rows = [
            row("m", "top_k_40", Some(0.5), 3.0),
            row("m", "top_k_40", Some(1.0), 2.0),
            row(crate::row::HUMAN, crate::row::HUMAN, None, 2.5),
        ];
        let lines: Vec<SummaryLine> = rows
            .into_iter()
            .map(SummaryLine::without_intervals)
            .collect();
        let (_, svg) = charts(&lines)
            .into_iter()
            .find(|(m, _)| *m == "pooled_rep_2")
            .unwrap();
        assert!(
            svg.contains(">top_k_40</text>") && svg.contains(">human</text>"),
            "{svg}"
        );
        assert!(!svg.contains("m / "), "one model: labels by strategy");
        let dotted: Vec<&str> = svg
            .lines()
            .filter(|l| l.contains("dasharray=\"2 3\""))
            .collect();
        assert_eq!(dotted.len(), 2, "the reference line and its legend");
        assert!(dotted.iter().all(|l| l.contains("stroke=\"black\"")));
    }

    /// Huge values (1e31, where adding a tick step is lost in rounding, and 1e300) and huge
    /// temperatures draw finite axes with a bounded number of ticks, and skip non-finite values.
    #[test]
    fn huge_and_non_finite_values_draw_bounded_axes() {
        for big in [1e31, 1e300, f64::MAX / 4.0] {
            let series = [
                Series {
                    label: "a".into(),
                    points: vec![(Some(0.5), big), (Some(1.0), big), (Some(big), f64::NAN)],
                    bars: vec![],
                    reference: false,
                },
                Series {
                    label: "b".into(),
                    points: vec![(Some(1.0), f64::INFINITY), (None, big * 0.5)],
                    bars: vec![],
                    reference: false,
                },
            ];
            let svg = line_chart("t", "y", &series);
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{big}: {svg}");
            let grid = svg.matches(r##"stroke="#e5e5e5""##).count();
            assert!(
                (2..=2 * MAX_TICKS).contains(&grid),
                "{big}: {grid} grid lines"
            );
            // The finite points are drawn.
            assert!(svg.contains("<circle"));
        }
        // Ticks by index near 1e31: a step of 2e24 added to 1e31 would be lost.
        let t = ticks(1e31, 1e31 + 1e25);
        assert!(t.len() >= 2 && t.len() <= MAX_TICKS, "{t:?}");
        assert!(t.windows(2).all(|w| w[1].0 > w[0].0));
        // Neighbouring labels differ even where the step is tiny against the values.
        assert!(t.windows(2).all(|w| w[1].1 != w[0].1), "{t:?}");
    }

    /// A flat line (every text 256 tokens long) gets a readable axis around its value, with
    /// distinct labels, instead of one spanning rounding noise.
    #[test]
    fn a_flat_line_gets_a_readable_axis() {
        let series = [Series {
            label: "a".into(),
            points: vec![(Some(0.5), 256.0), (Some(1.0), 256.0)],
            bars: vec![],
            reference: false,
        }];
        let svg = line_chart("t", "y", &series);
        for label in ["250", "260"] {
            assert!(svg.contains(&format!(">{label}</text>")), "{label}: {svg}");
        }
    }
}
