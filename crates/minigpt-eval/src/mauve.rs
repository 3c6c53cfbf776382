//! MAUVE (Pillutla et al. 2021): how close a set of generated texts is to a set of human texts,
//! from feature vectors of each text. Follows the reference code (`mauve-text`,
//! `src/mauve/compute_mauve.py`, `compute_mauve` and `cluster_feats`) step by step:
//!
//! 1. Stack the human (`q`) then the generated (`p`) features, L2-normalise each row.
//! 2. PCA; keep the leading components up to the first whose cumulative explained variance
//!    reaches 90 %.
//! 3. k-means with k = max(2, round(min(|p|, |q|) / 10)) clusters, 5 restarts, up to 500 Lloyd
//!    iterations, the lowest objective kept; each text gets its nearest centroid.
//! 4. Histograms of the two sets' labels; the divergence curve
//!    `exp(-5 (KL(q‖r_w), KL(p‖r_w)))` for `r_w = w p + (1 − w) q` at 25 weights `w` in
//!    `[1e-6, 1 − 1e-6]`, plus the two extreme points; MAUVE is the mean of the areas under the
//!    curve taken along each axis (trapezoids, as sklearn's `auc`).
//!
//! Steps 1–2 and 4 are deterministic and match the reference to rounding. Step 3 is seeded but
//! starts from this module's own random draws, not faiss's, so cluster assignments, and MAUVE
//! with them, may differ from the reference end to end (`tests/mauve_reference.rs` bounds it).

use minigpt_decode::Rng;
use nalgebra::{DMatrix, SymmetricEigen};

/// The reference's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MauveParams {
    /// Share of variance the PCA keeps.
    pub explained_variance: f64,
    /// k-means restarts (the best objective is kept).
    pub restarts: usize,
    /// Lloyd iterations per restart, at most.
    pub max_iter: usize,
    /// Points on the divergence curve (mixture weights).
    pub curve_points: usize,
    /// The constant `c` in `exp(-c · KL)`.
    pub scaling: f64,
    /// Seeds the k-means draws.
    pub seed: u64,
}

impl Default for MauveParams {
    fn default() -> Self {
        MauveParams {
            explained_variance: 0.9,
            restarts: 5,
            max_iter: 500,
            curve_points: 25,
            scaling: 5.0,
            seed: 25,
        }
    }
}

/// MAUVE of `p` (generated) against `q` (human), with what it was computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Mauve {
    /// The area under the divergence curve, in `[0, 1]`; 1 when the histograms coincide.
    pub mauve: f64,
    /// `p`'s share of texts per cluster.
    pub p_hist: Vec<f64>,
    /// `q`'s share of texts per cluster.
    pub q_hist: Vec<f64>,
    /// The divergence curve, `(exp(-c KL(q‖r)), exp(-c KL(p‖r)))`, extremes included.
    pub curve: Vec<(f64, f64)>,
    /// Components the PCA kept.
    pub dims: usize,
}

/// The number of clusters for `n_p` and `n_q` texts: max(2, round(min / 10)), a half rounded
/// to even as Python's `round` does (25 texts: 2 clusters).
pub fn buckets(n_p: usize, n_q: usize) -> usize {
    ((n_p.min(n_q) as f64 / 10.0).round_ties_even() as usize).max(2)
}

/// MAUVE of the feature vectors `p` against `q` (all of one length, neither set empty).
pub fn mauve(p: &[Vec<f32>], q: &[Vec<f32>], params: &MauveParams) -> Result<Mauve, String> {
    if p.is_empty() || q.is_empty() {
        return Err("MAUVE needs at least one text on each side".into());
    }
    let dim = q[0].len();
    if dim == 0 || p.iter().chain(q).any(|v| v.len() != dim) {
        return Err("MAUVE's feature vectors must all have one nonzero length".into());
    }
    if p.iter().chain(q).flatten().any(|x| !x.is_finite()) {
        return Err("MAUVE's feature vectors hold a NaN or infinity".into());
    }
    let k = buckets(p.len(), q.len());
    let rows: Vec<Vec<f64>> = q.iter().chain(p).map(|v| l2_normalised(v)).collect();
    let (points, dims) = pca(&rows, params.explained_variance);
    let labels = kmeans(&points, k, params);
    let (q_labels, p_labels) = labels.split_at(q.len());
    let p_hist = histogram(p_labels, k);
    let q_hist = histogram(q_labels, k);
    let (curve, area) = divergence_area(&p_hist, &q_hist, params.curve_points, params.scaling);
    Ok(Mauve {
        mauve: area,
        p_hist,
        q_hist,
        curve,
        dims,
    })
}

/// `v / ‖v‖₂` in f64 (a zero vector stays zero, as sklearn's `normalize`).
fn l2_normalised(v: &[f32]) -> Vec<f64> {
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    let scale = if norm > 0.0 { 1.0 / norm } else { 1.0 };
    v.iter().map(|&x| f64::from(x) * scale).collect()
}

/// The rows' coordinates on their leading principal components, enough of them to explain
/// `share` of the variance, and how many that is. Eigendecomposition of the smaller of the Gram
/// and covariance matrices of the centred rows: both give the same nonzero spectrum, and the
/// Gram matrix keeps it cheap when texts are fewer than dimensions (GPT-2's 768).
fn pca(rows: &[Vec<f64>], share: f64) -> (Vec<Vec<f64>>, usize) {
    let n = rows.len();
    let d = rows[0].len();
    let mut mean = vec![0.0; d];
    for r in rows {
        for (m, x) in mean.iter_mut().zip(r) {
            *m += x;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let x = DMatrix::from_fn(n, d, |i, j| rows[i][j] - mean[j]);
    // Eigenpairs, largest first; negative rounding noise clamped to zero.
    let sorted = |e: SymmetricEigen<f64, nalgebra::Dyn>| {
        let mut order: Vec<usize> = (0..e.eigenvalues.len()).collect();
        order.sort_by(|&a, &b| e.eigenvalues[b].total_cmp(&e.eigenvalues[a]));
        let values: Vec<f64> = order.iter().map(|&i| e.eigenvalues[i].max(0.0)).collect();
        (values, order, e.eigenvectors)
    };
    let gram = n <= d;
    let (values, order, vectors) = if gram {
        sorted(SymmetricEigen::new(&x * x.transpose()))
    } else {
        sorted(SymmetricEigen::new(x.transpose() * &x))
    };
    let total: f64 = values.iter().sum();
    // The rows are unit vectors: a variance this small is the mean's rounding, not a difference.
    if total <= 1e-12 * n as f64 {
        // Every text has the same features: one coordinate, all zero.
        return (vec![vec![0.0]; n], 1);
    }
    // The reference keeps components 0..=argmax(cumsum(ratio) >= share).
    let mut kept = values.len();
    let mut cum = 0.0;
    for (i, v) in values.iter().enumerate() {
        cum += v / total;
        if cum >= share {
            kept = i + 1;
            break;
        }
    }
    let points = (0..n)
        .map(|i| {
            order[..kept]
                .iter()
                .zip(&values)
                .map(|(&c, &lambda)| {
                    if gram {
                        // X v = u √λ for the Gram matrix's unit eigenvector u.
                        vectors[(i, c)] * lambda.sqrt()
                    } else {
                        (0..d).map(|j| x[(i, j)] * vectors[(j, c)]).sum()
                    }
                })
                .collect()
        })
        .collect();
    (points, kept)
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Index of the centroid nearest `p` (the first on ties).
fn nearest(p: &[f64], centroids: &[Vec<f64>]) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (c, centroid) in centroids.iter().enumerate() {
        let d = squared_distance(p, centroid);
        if d < best.1 {
            best = (c, d);
        }
    }
    best
}

/// Lloyd's k-means, `params.restarts` times from `k` distinct random points (faiss's
/// initialisation), each run until no label changes or `params.max_iter` iterations; returns
/// every point's nearest centroid of the run with the lowest sum of squared distances. An
/// emptied cluster takes over half of the largest one, as faiss splits it.
fn kmeans(points: &[Vec<f64>], k: usize, params: &MauveParams) -> Vec<usize> {
    let n = points.len();
    let k = k.min(n).max(1);
    let mut rng = Rng::new(params.seed);
    let mut best: Option<(f64, Vec<usize>)> = None;
    for _ in 0..params.restarts.max(1) {
        // k distinct starting points: a partial Fisher–Yates shuffle.
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..k {
            let j = i + (rng.next_u64() % (n - i) as u64) as usize;
            idx.swap(i, j);
        }
        let mut centroids: Vec<Vec<f64>> = idx[..k].iter().map(|&i| points[i].clone()).collect();
        let mut labels = vec![usize::MAX; n];
        for _ in 0..params.max_iter.max(1) {
            let mut changed = false;
            for (p, l) in points.iter().zip(labels.iter_mut()) {
                let (c, _) = nearest(p, &centroids);
                changed |= *l != c;
                *l = c;
            }
            if !changed {
                break;
            }
            let dim = points[0].len();
            let mut sums = vec![vec![0.0; dim]; k];
            let mut counts = vec![0usize; k];
            for (p, &l) in points.iter().zip(&labels) {
                counts[l] += 1;
                sums[l].iter_mut().zip(p).for_each(|(s, x)| *s += x);
            }
            for c in 0..k {
                if counts[c] > 0 {
                    centroids[c] = sums[c].iter().map(|s| s / counts[c] as f64).collect();
                }
            }
            // Empty clusters: split the largest cluster's centroid in two, nudged apart.
            for c in 0..k {
                if counts[c] == 0 {
                    let big = (0..k)
                        .max_by_key(|&j| (counts[j], usize::MAX - j))
                        .unwrap_or(0);
                    const EPS: f64 = 1.0 / 1024.0;
                    let base = centroids[big].clone();
                    centroids[c] = base.iter().map(|x| x * (1.0 + EPS)).collect();
                    centroids[big] = base.iter().map(|x| x * (1.0 - EPS)).collect();
                    counts[c] = counts[big] / 2;
                    counts[big] -= counts[c];
                }
            }
        }
        let (labels, objective): (Vec<usize>, f64) =
            points
                .iter()
                .fold((Vec::with_capacity(n), 0.0), |(mut ls, obj), p| {
                    let (c, d) = nearest(p, &centroids);
                    ls.push(c);
                    (ls, obj + d)
                });
        if best.as_ref().is_none_or(|(b, _)| objective < *b) {
            best = Some((objective, labels));
        }
    }
    best.map(|(_, l)| l).unwrap_or_default()
}

/// Share of `labels` in each of `k` clusters.
pub fn histogram(labels: &[usize], k: usize) -> Vec<f64> {
    let mut counts = vec![0.0; k];
    for &l in labels {
        counts[l] += 1.0;
    }
    let total = labels.len().max(1) as f64;
    counts.iter().map(|c| c / total).collect()
}

/// KL(p‖q) in nats; infinite where `q` misses mass of `p`.
fn kl(p: &[f64], q: &[f64]) -> f64 {
    if p.iter().zip(q).any(|(&a, &b)| a != 0.0 && b == 0.0) {
        return f64::INFINITY;
    }
    p.iter()
        .zip(q)
        .filter(|&(&a, &b)| a != 0.0 && b != 0.0)
        .map(|(&a, &b)| a * (a / b).ln())
        .sum()
}

/// The divergence curve of histograms `p` and `q` and the area under it (MAUVE), exactly as the
/// reference's `get_divergence_curve_for_multinomials` and the two `auc` calls.
pub fn divergence_area(
    p: &[f64],
    q: &[f64],
    points: usize,
    scaling: f64,
) -> (Vec<(f64, f64)>, f64) {
    let mut raw = vec![(0.0, f64::INFINITY)];
    for i in 0..points {
        // np.linspace(1e-6, 1 - 1e-6, points).
        let (lo, hi) = (1e-6, 1.0 - 1e-6);
        let w = if points == 1 {
            lo
        } else if i == points - 1 {
            hi
        } else {
            lo + (hi - lo) / (points - 1) as f64 * i as f64
        };
        let r: Vec<f64> = p
            .iter()
            .zip(q)
            .map(|(a, b)| w * a + (1.0 - w) * b)
            .collect();
        raw.push((kl(q, &r), kl(p, &r)));
    }
    raw.push((f64::INFINITY, 0.0));
    let curve: Vec<(f64, f64)> = raw
        .iter()
        .map(|&(a, b)| ((-scaling * a).exp(), (-scaling * b).exp()))
        .collect();
    let x: Vec<f64> = curve.iter().map(|c| c.0).collect();
    let y: Vec<f64> = curve.iter().map(|c| c.1).collect();
    let area = 0.5 * (auc(&x, &y) + auc(&y, &x));
    (curve, area)
}

/// The trapezoid area under `(x, y)` taken in increasing `x`. Points of equal `x` are ordered
/// by decreasing `y`, so that where the curve is vertical (the histograms coincide, every
/// point at 1) the area is that of the upper envelope; numpy's unstable `argsort` leaves this
/// order to chance in the reference.
fn auc(x: &[f64], y: &[f64]) -> f64 {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]).then(y[b].total_cmp(&y[a])));
    order
        .windows(2)
        .map(|w| (x[w[1]] - x[w[0]]) * (y[w[0]] + y[w[1]]) / 2.0)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_histograms_score_one() {
        let h = [0.25, 0.75];
        let (_, area) = divergence_area(&h, &h, 25, 5.0);
        assert!((area - 1.0).abs() < 1e-12, "{area}");
    }

    #[test]
    fn disjoint_histograms_score_near_zero() {
        let (_, area) = divergence_area(&[1.0, 0.0], &[0.0, 1.0], 25, 5.0);
        assert!(area < 0.01, "{area}");
    }

    #[test]
    fn buckets_follow_the_reference_heuristic() {
        assert_eq!(buckets(48, 16), 2);
        assert_eq!(buckets(500, 500), 50);
        assert_eq!(buckets(300, 250), 25);
        assert_eq!(buckets(3, 3), 2);
        // Halves round to even, as Python's round: [int(round(n / 10)) for n in (25, 35, 45,
        // 55, 65)] is [2, 4, 4, 6, 6].
        let halves: Vec<usize> = [25, 35, 45, 55, 65].map(|n| buckets(n, 1000)).to_vec();
        assert_eq!(halves, [2, 4, 4, 6, 6]);
    }

    /// Identical texts whose centred features are rounding noise (the mean of three 0.1s is not
    /// 0.1) still fall in one cluster: MAUVE 1.
    #[test]
    fn identical_features_score_one() {
        let v = vec![0.1f32, 0.7, 0.3, 0.2];
        let p = vec![v.clone(); 3];
        let q = vec![v; 5];
        let m = mauve(&p, &q, &MauveParams::default()).unwrap();
        assert_eq!(m.mauve, 1.0);
    }
}
