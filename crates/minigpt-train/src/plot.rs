//! The loss curve of a run as a small standalone SVG (no plotting dependency): training loss
//! per step (thin), held-out loss at each evaluation (dots joined), axes with ticks.

use std::fmt::Write;

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 48.0;

/// Round tick spacing (1, 2 or 5 × 10^k) giving about `n` ticks over `span`.
fn tick_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Ticks `k·step` inside `[lo, hi]`.
fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// Renders the curve. `train` holds one loss per step from step 1; `val` holds
/// `(step, loss)` pairs. Non-finite losses are skipped.
pub fn loss_curve_svg(title: &str, train: &[f64], val: &[(usize, f64)]) -> String {
    let steps = train.len().max(val.last().map_or(1, |v| v.0)).max(1) as f64;
    let finite = train
        .iter()
        .copied()
        .chain(val.iter().map(|v| v.1))
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let (lo, hi) = ((lo - pad).max(0.0), hi + pad);
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let x = |s: f64| LEFT + s / steps * pw;
    let y = |v: f64| TOP + (hi - v) / (hi - lo) * ph;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        W / 2.0,
        escape(title)
    );
    // Grid, ticks and labels.
    for v in ticks(lo, hi, tick_step(hi - lo, 6.0)) {
        let yy = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.2}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0
        );
    }
    for st in ticks(0.0, steps, tick_step(steps, 8.0)) {
        let xx = x(st);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{:.1}" stroke="#e5e5e5"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{st}</text>"##,
            H - BOTTOM,
            H - BOTTOM + 16.0
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">step</text>"#,
        LEFT + pw / 2.0,
        H - 12.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">loss (nats per token)</text>"#,
        TOP + ph / 2.0
    );
    // Series.
    let points = |pts: &mut dyn Iterator<Item = (f64, f64)>| {
        pts.filter(|p| p.1.is_finite())
            .map(|(a, b)| format!("{:.1},{:.1}", x(a), y(b)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let train_pts = points(&mut train.iter().enumerate().map(|(i, &v)| ((i + 1) as f64, v)));
    let _ = writeln!(
        s,
        r##"<polyline points="{train_pts}" fill="none" stroke="#1f77b4" stroke-width="0.8" stroke-opacity="0.7"/>"##
    );
    let val_pts = points(&mut val.iter().map(|&(st, v)| (st as f64, v)));
    let _ = writeln!(
        s,
        r##"<polyline points="{val_pts}" fill="none" stroke="#d62728" stroke-width="1.6"/>"##
    );
    for &(st, v) in val.iter().filter(|p| p.1.is_finite()) {
        let _ = writeln!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="2.2" fill="#d62728"/>"##,
            x(st as f64),
            y(v)
        );
    }
    // Legend.
    let lx = W - RIGHT - 170.0;
    let _ = writeln!(
        s,
        r##"<line x1="{lx}" y1="{}" x2="{}" y2="{}" stroke="#1f77b4" stroke-width="2"/><text x="{}" y="{}">training loss</text>"##,
        TOP + 16.0,
        lx + 24.0,
        TOP + 16.0,
        lx + 30.0,
        TOP + 20.0
    );
    let last = val
        .last()
        .map_or_else(String::new, |v| format!(" (last {:.4})", v.1));
    let _ = writeln!(
        s,
        r##"<line x1="{lx}" y1="{}" x2="{}" y2="{}" stroke="#d62728" stroke-width="2"/><text x="{}" y="{}">held-out loss{last}</text>"##,
        TOP + 34.0,
        lx + 24.0,
        TOP + 34.0,
        lx + 30.0,
        TOP + 38.0
    );
    s.push_str("</svg>\n");
    s
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_steps_are_round() {
        assert_eq!(tick_step(2500.0, 8.0), 500.0);
        assert_eq!(tick_step(3.0, 6.0), 0.5);
        assert_eq!(tick_step(0.9, 6.0), 0.2);
        assert_eq!(ticks(1.3, 3.1, 0.5), vec![1.5, 2.0, 2.5, 3.0]);
    }

    /// Losses just before divergence can be huge: the axis still has a handful of ticks.
    #[test]
    fn huge_losses_draw_bounded_axes() {
        for (a, b) in [
            (1e31, 1e31),
            (3.0, 1e31),
            (1e300, 1.7e308),
            (0.0, 0.0),
            (1e-300, 2e-300),
        ] {
            let svg = loss_curve_svg("t", &[a, b, f64::INFINITY], &[(2, b)]);
            assert!(svg.ends_with("</svg>\n"));
            let ticks = svg.matches("stroke=\"#e5e5e5\"").count();
            assert!((1..=30).contains(&ticks), "{a}, {b}: {ticks} grid lines");
        }
    }

    #[test]
    fn curve_places_points_in_the_plot_area() {
        let train = [4.0, 3.0, 2.0, f64::NAN];
        let svg = loss_curve_svg("a <run>", &train, &[(2, 3.5), (4, 2.5)]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("a &lt;run&gt;"));
        // Steps 1..=4 over the x range, the highest loss at the top edge plus padding.
        let pad = 0.1;
        let y4 = TOP + pad / (2.0 + 2.0 * pad) * (H - TOP - BOTTOM);
        let first = format!("{:.1},{:.1}", LEFT + 0.25 * (W - LEFT - RIGHT), y4);
        assert!(svg.contains(&format!("points=\"{first} ")), "{svg}");
        // NaN is skipped: three training points, two held-out ones.
        let train_line = svg
            .lines()
            .find(|l| l.contains("#1f77b4\" stroke-width=\"0.8"))
            .unwrap();
        assert_eq!(train_line.matches(',').count(), 3);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("held-out loss (last 2.5000)"));
    }
}
