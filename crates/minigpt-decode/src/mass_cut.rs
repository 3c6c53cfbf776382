//! The smallest prefix of a row, in a given order, whose probability mass reaches a target
//! (`top_p`, `typical_p`), in O(V) instead of a sort of the whole vocabulary.
//!
//! Tokens are put in buckets by their sort key (key ≥ 0, most wanted first, `1/SCALE` wide);
//! one pass adds up each bucket's mass, a walk over the buckets finds the one where the mass
//! crosses the target, and only that bucket's tokens are sorted. A row of GPT-2's 50,257
//! standard-normal logits puts about a hundred tokens (by their density there) in the crossing
//! bucket of `top_p(0.9)`.
//!
//! `top_p` orders by the distance below the row's maximum, `key = max − l`, and its masses are
//! `exp(−key)`: [`MassCut::below_max`] takes each mass from the key's own bucket,
//! `exp(−b/SCALE)` from a table times a short series in the remainder, instead of a full exp.
//! `typical_p` orders by `|a − l|`, where `a` (the mean logit) needs the masses first:
//! [`MassCut::typical`] gets the masses and `a` from the same pass, bucketed by `max − l`,
//! then walks those buckets outwards from `a` and sorts only the tokens of the few buckets
//! where the crossing can be.

use std::sync::LazyLock;

/// Buckets per unit of key.
const SCALE: f64 = 64.0;
/// Buckets in all: keys up to 64 (nats) are resolved; larger ones share the last bucket.
const BUCKETS: usize = 4096;
/// Histogram copies are this far apart: the buckets, and a slot for the keys beyond the last
/// (their masses underflow; `histogram_exp` puts them there rather than branch).
const STRIDE: usize = BUCKETS + 1;
/// Rows up to this long are sorted whole: cheaper than clearing and walking the buckets.
const SMALL: usize = 512;
/// Interleaved copies of the histogram: token i adds to copy i mod LANES, so consecutive
/// tokens in one bucket do not wait on each other's store.
const LANES: usize = 2;

/// Reused buffers (one per processor instance).
#[derive(Debug, Clone, Default)]
pub(crate) struct MassCut {
    /// Each bucket's mass, `LANES` copies `BUCKETS` apart (summed into the first).
    mass: Vec<f64>,
    /// Each token's bucket, from the histogram pass.
    buckets: Vec<u16>,
    /// The tokens where the crossing can be: (key, token, mass).
    members: Vec<(f64, u32, f64)>,
    /// How often `typical` fell back on the general cut (the tests check it is rare).
    #[cfg(test)]
    fallbacks: usize,
}

/// Where the mass crosses the target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Crossing {
    /// The key of the token whose mass makes the prefix reach the target.
    pub key: f64,
    /// That token.
    pub token: u32,
}

/// An empty run of buckets for [`MassCut::collect`] (no bucket reaches past the last).
const NO_RUN: (usize, usize) = (BUCKETS + 1, BUCKETS + 1);

/// 1.5·2^52: adding it to a non-negative f64 below 2^51 rounds it to an integer (ties to
/// even) in the low bits.
const SHIFT: f64 = 6_755_399_441_055_744.0;

/// A key's bucket: round(min(key·SCALE, BUCKETS − 1)) by the 1.5·2^52 trick (monotone in the
/// key and branch-free, so the passes vectorise; +∞ goes to the last bucket). Bucket `b` holds
/// the keys in [(b − ½)/SCALE, (b + ½)/SCALE], the last one everything above.
fn bucket(key: f64) -> usize {
    let x = (key * SCALE).min((BUCKETS - 1) as f64).max(0.0);
    ((x + SHIFT).to_bits() - SHIFT.to_bits()) as usize
}

/// exp(−b/SCALE) for every bucket b, each within an ulp (`f64::exp`), and a 0 past the end
/// for the keys beyond the last bucket.
static BUCKET_EXP: LazyLock<[f64; BUCKETS + 1]> = LazyLock::new(|| {
    std::array::from_fn(|b| {
        if b < BUCKETS {
            (-(b as f64) / SCALE).exp()
        } else {
            0.0
        }
    })
});

/// A key's bucket (as [`bucket`]), its entry in [`BUCKET_EXP`], and the factor of its mass
/// `exp(−key)` (`key ≥ 0`, +∞ for a −∞ logit) besides that entry: the degree-6 Taylor series
/// of exp(−r), r = key − b/SCALE, |r| ≤ 1/128 (the next term is below 4e-19), so the mass is
/// within 3 ulp of the exact value. Keys past the last bucket's centre (more than 64 nats below
/// the maximum: masses under 2e-28 of its mass, which no f64 total of a vocabulary can
/// register) take the table's 0.
///
/// Straight-line integer and float arithmetic, so that eight of it vectorise: a float select
/// here makes LLVM branch around the series lane by lane (measured: 1.6× slower).
#[inline(always)]
fn exp_factor(key: f64) -> (u64, u64, f64) {
    let x = (key * SCALE).min((BUCKETS - 1) as f64).max(0.0) + SHIFT;
    let b = x.to_bits() - SHIFT.to_bits();
    let r = key - (x - SHIFT) * (1.0 / SCALE);
    let entry = b + (r > 0.5 / SCALE) as u64;
    let r = r.min(1.0);
    let mut q = 1.0 / 720.0;
    q = q * -r + 1.0 / 120.0;
    q = q * -r + 1.0 / 24.0;
    q = q * -r + 1.0 / 6.0;
    q = q * -r + 0.5;
    q = q * -r + 1.0;
    q = q * -r + 1.0;
    (b, entry, q)
}

/// exp(−key) by [`exp_factor`], for one token.
fn exp_of_key(key: f64) -> f64 {
    let (_, entry, q) = exp_factor(key);
    BUCKET_EXP[(entry as usize).min(BUCKETS)] * q
}

/// The histogram of `top_p`'s and `typical_p`'s order: each token's mass exp(l − max) goes to
/// the bucket of its key `max − l` (keys beyond the last bucket to the slot after it), token i
/// into copy i mod LANES of `hist`, and the bucket is noted in `buckets[i]`. With `MOMENT`,
/// the masses are added and Σ mass·key is returned; without, only each mass's factor besides
/// its bucket's exp(−b/SCALE) is added (one multiply per bucket afterwards instead of a table
/// lookup per token: [`MassCut::fold`]) and 0 is returned.
///
/// Compiled twice, for the baseline x86-64 (SSE2: two f64 lanes) and for AVX2 (four), and
/// chosen at run time by `multiversion` (its dispatch is the only unsafe code it brings; this
/// crate has none). No FMA and the same operations in the same order, so both paths give the
/// same bits (`tests::both_paths_agree`).
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn histogram_exp<const MOMENT: bool>(
    logits: &[f32],
    max: f64,
    table: &[f64; BUCKETS + 1],
    hist: &mut [f64; LANES * STRIDE],
    buckets: &mut [u16],
) -> f64 {
    histogram_exp_body::<MOMENT>(logits, max, table, hist, buckets)
}

/// [`histogram_exp`]'s body, for both of its compilations (and the tests' baseline one).
#[inline(always)]
fn histogram_exp_body<const MOMENT: bool>(
    logits: &[f32],
    max: f64,
    table: &[f64; BUCKETS + 1],
    hist: &mut [f64; LANES * STRIDE],
    buckets: &mut [u16],
) -> f64 {
    let mut sums = [0.0f64; 8];
    let mut add = |j: usize, k: f64, entry: u64, q: f64| {
        let e = (entry as usize).min(BUCKETS);
        if MOMENT {
            let m = table[e] * q;
            hist[(j % LANES) * STRIDE + e] += m;
            // A −∞ logit: mass 0 times key ∞ would be NaN.
            sums[j] += m * k.min(f64::MAX);
        } else {
            hist[(j % LANES) * STRIDE + e] += q;
        }
    };
    let (chunks, rest) = logits.as_chunks::<8>();
    let (out, out_rest) = buckets.as_chunks_mut::<8>();
    for (c, o) in chunks.iter().zip(out) {
        // The eight tokens' arithmetic in loops that vectorise, then the table lookups and
        // the scattered adds.
        let mut k = [0.0f64; 8];
        for j in 0..8 {
            k[j] = max - c[j] as f64;
        }
        let mut f = [(0u64, 0u64, 0.0f64); 8];
        for j in 0..8 {
            f[j] = exp_factor(k[j]);
        }
        for j in 0..8 {
            o[j] = f[j].1 as u16;
        }
        for j in 0..8 {
            add(j, k[j], f[j].1, f[j].2);
        }
    }
    for (&l, o) in rest.iter().zip(out_rest) {
        let k = max - l as f64;
        let f = exp_factor(k);
        *o = f.1 as u16;
        add(0, k, f.1, f.2);
    }
    sums.iter().sum()
}

impl MassCut {
    /// Empties the histogram (`LANES` copies) and sizes the buckets for `n` tokens.
    fn clear(&mut self, n: usize) -> (&mut [f64; LANES * STRIDE], &mut [u16]) {
        self.mass.clear();
        self.mass.resize(LANES * STRIDE, 0.0);
        self.buckets.clear();
        self.buckets.resize(n, 0);
        let hist = (&mut self.mass[..])
            .try_into()
            .expect("LANES · BUCKETS long");
        (hist, &mut self.buckets[..])
    }

    /// Folds the histogram's copies into the first; `by_table`: then multiplies each bucket by
    /// its exp(−b/SCALE) (after `histogram_exp::<false>`).
    fn fold(&mut self, by_table: bool) {
        let (first, others) = self.mass.split_at_mut(STRIDE);
        for lane in others.chunks_exact(STRIDE) {
            for (a, &x) in first.iter_mut().zip(lane) {
                *a += x;
            }
        }
        if by_table {
            for (a, &e) in first.iter_mut().zip(BUCKET_EXP.iter()) {
                *a *= e;
            }
        }
    }

    /// Collects (key, token, mass) of the finite tokens whose bucket is in `r.0..=r.1` or
    /// `s.0..=s.1` (`NO_RUN` for none) into `members`, testing sixteen buckets at a time (a
    /// vectorised test; a closer look only at a hit).
    fn collect(
        &mut self,
        logits: &[f32],
        r: (usize, usize),
        s: (usize, usize),
        member: impl Fn(f32) -> (f64, f64),
    ) {
        let Self {
            buckets, members, ..
        } = self;
        members.clear();
        // Range tests as one unsigned compare each, and no short circuit: branch-free.
        let (r0, rn, s0, sn) = (
            r.0 as u32,
            r.1.wrapping_sub(r.0) as u32,
            s.0 as u32,
            s.1.wrapping_sub(s.0) as u32,
        );
        let inside =
            |b: u16| (u32::from(b).wrapping_sub(r0) <= rn) | (u32::from(b).wrapping_sub(s0) <= sn);
        let mut push = |i: usize| {
            let l = logits[i];
            if l != f32::NEG_INFINITY && inside(buckets[i]) {
                let (k, m) = member(l);
                members.push((k, i as u32, m));
            }
        };
        let (chunks, rest) = buckets.as_chunks::<16>();
        for (ci, c) in chunks.iter().enumerate() {
            let mut hit = [false; 16];
            for j in 0..16 {
                hit[j] = inside(c[j]);
            }
            if hit.iter().fold(false, |a, &h| a | h) {
                for j in 0..16 {
                    push(ci * 16 + j);
                }
            }
        }
        for i in buckets.len() - rest.len()..buckets.len() {
            push(i);
        }
    }

    /// Sorts `members` by (key, token) and walks them from the mass `before` to `target`.
    fn walk_members(&mut self, before: f64, target: f64) -> Option<Crossing> {
        self.members
            .sort_unstable_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        let mut acc = before;
        for &(k, t, m) in &self.members {
            acc += m;
            if acc >= target {
                return Some(Crossing { key: k, token: t });
            }
        }
        None
    }

    /// Among the tokens of `logits` that are not −∞, with sort key `key(l) ≥ 0` and mass
    /// `mass(l) ≥ 0` (both functions of the logit; −∞ must get an infinite key and mass 0),
    /// ordered by (key, token id): the first token at which the prefix's mass reaches
    /// `fraction` of the total. `None` when rounding keeps the total below it (the whole row is
    /// the prefix).
    pub fn find(
        &mut self,
        logits: &[f32],
        key: impl Fn(f32) -> f64,
        mass: impl Fn(f32) -> f64,
        fraction: f64,
    ) -> Option<Crossing> {
        // Not a hot path (typical_p's fallback): one copy, plain loop.
        let (hist, buckets) = self.clear(logits.len());
        for (&l, o) in logits.iter().zip(buckets) {
            let b = bucket(key(l));
            hist[b] += mass(l);
            *o = b as u16;
        }
        self.cross(logits, &|l: f32| (key(l), mass(l)), fraction)
    }

    /// [`find`](Self::find) with `key = max − l` and `mass = exp(−key)` (`top_p`'s order),
    /// each mass from its bucket ([`exp_of_key`]).
    pub fn below_max(&mut self, logits: &[f32], max: f64, fraction: f64) -> Option<Crossing> {
        let key = |l: f32| max - l as f64;
        let member = |l: f32| (key(l), exp_of_key(key(l)));
        if logits.len() <= SMALL {
            // A few tokens (top_p after top_k): sort them all rather than fill 4·4096 buckets.
            self.members.clear();
            for (i, &l) in logits.iter().enumerate() {
                if l != f32::NEG_INFINITY {
                    let (k, m) = member(l);
                    self.members.push((k, i as u32, m));
                }
            }
            let total: f64 = self.members.iter().map(|m| m.2).sum();
            return self.walk_members(0.0, fraction * total);
        }
        let (hist, buckets) = self.clear(logits.len());
        histogram_exp::<false>(logits, max, &BUCKET_EXP, hist, buckets);
        self.fold(true);
        self.cross(logits, &member, fraction)
    }

    /// The walk of [`find`](Self::find) over a filled histogram.
    fn cross(
        &mut self,
        logits: &[f32],
        member: &impl Fn(f32) -> (f64, f64),
        fraction: f64,
    ) -> Option<Crossing> {
        let per_bucket = &self.mass[..BUCKETS];
        let total: f64 = per_bucket.iter().sum();
        let target = fraction * total;
        let mut before = 0.0;
        let mut crossing = None;
        for (b, &m) in per_bucket.iter().enumerate() {
            if m > 0.0 && before + m >= target {
                crossing = Some(b);
                break;
            }
            before += m;
        }
        let b = crossing?;
        self.collect(logits, (b, b), NO_RUN, member);
        self.walk_members(before, target).or_else(|| {
            // The bucket's total and its members' running sum rounded differently.
            self.members
                .last()
                .map(|&(k, t, _)| Crossing { key: k, token: t })
        })
    }

    /// `typical_p`'s cut. With `a` the mean logit under the softmax (−log p − H = a − l), the
    /// order is by |a − l|, here computed in keys as `|(max − l) − ka|` with `ka = max − a`
    /// (one rounding, so the same distance for a token and for its bucket's ends). Returns
    /// `ka` and the crossing distance δ: the cut keeps every token with distance ≤ δ. `None`
    /// when the whole row is the prefix. `max` is the row's maximum (finite).
    ///
    /// One pass buckets the tokens by `max − l` with their masses and Σ mass·(max − l), which
    /// gives `ka`. The buckets, walked in order of their nearest distance to `a` (outwards on
    /// both sides), bound δ to [L, D]: every token nearer than L lies in a bucket walked before
    /// the crossing one (less mass than the target), and every bucket walked, the crossing one
    /// included, lies within D. Only the buckets reaching into (L, D) and the crossing one (a
    /// few around a on each side) are sorted; those within L count by their totals. Should
    /// rounding defeat the bounds, the general [`find`](Self::find) decides.
    pub fn typical(&mut self, logits: &[f32], max: f64, fraction: f64) -> Option<(f64, f64)> {
        let key = |l: f32| max - l as f64;
        let (hist, buckets) = self.clear(logits.len());
        let moment = histogram_exp::<true>(logits, max, &BUCKET_EXP, hist, buckets);
        self.fold(false);
        // Out of `self` while `collect` borrows it (put back below).
        let hist = std::mem::take(&mut self.mass);
        let per_bucket = &hist[..BUCKETS];
        let total: f64 = per_bucket.iter().sum();
        // The mean of max − l.
        let ka = moment / total;
        let target = fraction * total;
        let dist = |l: f32| (key(l) - ka).abs();
        // Bucket b's nearest and farthest distance from ka. Rounding is monotone, so every
        // token's distance lies between its bucket's two.
        let span = |b: usize| {
            let lo = (b as f64 - 0.5) / SCALE;
            let hi = if b == BUCKETS - 1 {
                f64::INFINITY
            } else {
                (b as f64 + 0.5) / SCALE
            };
            let near = if ka < lo {
                lo - ka
            } else if ka > hi {
                ka - hi
            } else {
                0.0
            };
            (near, (hi - ka).max(ka - lo))
        };
        // Walk outwards from ka's bucket, nearest first (each side's distances grow outwards).
        let centre = bucket(ka);
        let (mut down, mut up) = (centre.checked_sub(1), centre + 1);
        let mut at = Some(centre);
        let mut acc = 0.0;
        let mut bounds = None;
        while let Some(b) = at {
            let m = per_bucket[b];
            if m > 0.0 && acc + m >= target {
                bounds = Some((b, span(b)));
                break;
            }
            acc += m;
            let take_down = match (down, up < BUCKETS) {
                (Some(d), true) => span(d).0 <= span(up).0,
                (Some(_), false) => true,
                (None, _) => false,
            };
            at = if take_down {
                let d = down.expect("checked");
                down = d.checked_sub(1);
                Some(d)
            } else if up < BUCKETS {
                up += 1;
                Some(up - 1)
            } else {
                None
            };
        }
        let exact = bounds.and_then(|(x, (near, far))| {
            // On each side of ka, outwards: buckets within L (counted by their totals), then a
            // run reaching into (L, D) or the crossing bucket itself (sorted), then the rest
            // (from D on: δ ≤ D, and a token at D exactly is kept by the mask either way).
            let mut before = 0.0;
            let mut side = |ids: &mut dyn Iterator<Item = usize>| {
                let mut run = NO_RUN;
                for b in ids {
                    let (n, f) = span(b);
                    if b != x && f <= near {
                        before += per_bucket[b];
                    } else if b == x || n < far {
                        run = if run == NO_RUN {
                            (b, b)
                        } else {
                            (run.0.min(b), run.1.max(b))
                        };
                    } else {
                        break;
                    }
                }
                run
            };
            let below = side(&mut (0..=centre).rev());
            let above = side(&mut (centre + 1..BUCKETS));
            self.collect(logits, below, above, |l| (dist(l), exp_of_key(key(l))));
            // A member nearer than L can only reach the target where the tokens at L
            // (counted in `before`) already did: δ = L there.
            self.walk_members(before, target).map(|c| c.key.max(near))
        });
        self.mass = hist;
        let delta = match exact {
            Some(d) => d,
            None => {
                #[cfg(test)]
                {
                    self.fallbacks += 1;
                }
                self.find(logits, dist, |l| exp_of_key(key(l)), fraction)?
                    .key
            }
        };
        Some((ka, delta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same cut by a full sort, for comparison.
    fn by_sort(keys: &[Option<f64>], mass: &[f64], fraction: f64) -> Option<Crossing> {
        let mut order: Vec<usize> = (0..keys.len()).filter(|&i| keys[i].is_some()).collect();
        order.sort_by(|&a, &b| {
            keys[a]
                .unwrap()
                .total_cmp(&keys[b].unwrap())
                .then(a.cmp(&b))
        });
        let total: f64 = order.iter().map(|&i| mass[i]).sum();
        let mut acc = 0.0;
        for &i in &order {
            acc += mass[i];
            if acc >= fraction * total {
                return Some(Crossing {
                    key: keys[i].unwrap(),
                    token: i as u32,
                });
            }
        }
        None
    }

    #[test]
    fn agrees_with_a_full_sort() {
        let mut rng = crate::Rng::new(5);
        let mut cut = MassCut::default();
        for case in 0..300 {
            let n = 1 + (rng.next_u64() % 3000) as usize;
            // Coarse logits make ties; some are −∞; some sit far below the rest.
            let coarse = case % 3 == 0;
            let logits: Vec<f32> = (0..n)
                .map(|_| {
                    let r = rng.next_f64();
                    if r < 0.1 {
                        f32::NEG_INFINITY
                    } else if r < 0.12 {
                        -100.0 - r as f32
                    } else if coarse {
                        ((rng.next_f64() * 8.0).floor() / 4.0) as f32
                    } else {
                        (rng.next_f64() * 12.0) as f32
                    }
                })
                .collect();
            let max = crate::dist::max_logit(&logits) as f64;
            // top_p's key (distance below the max) or typical_p's (distance from a centre).
            let centre = max - 2.0;
            let key = |l: f32| {
                if case % 2 == 0 {
                    max - l as f64
                } else {
                    (centre - l as f64).abs()
                }
            };
            let mass = |l: f32| (l as f64 - max).exp();
            let keys: Vec<Option<f64>> = logits
                .iter()
                .map(|&l| (l != f32::NEG_INFINITY).then(|| key(l)))
                .collect();
            let masses: Vec<f64> = logits.iter().map(|&l| mass(l)).collect();
            let fraction = rng.next_f64();
            let got = cut.find(&logits, key, mass, fraction);
            assert_eq!(got, by_sort(&keys, &masses, fraction), "case {case}");
        }
        assert_eq!(
            cut.find(&[f32::NEG_INFINITY; 3], |_| 1.0, |_| 1.0, 0.5),
            None
        );
    }

    /// Rows of every shape the processors meet: normal, peaked, coarse (ties), on bucket
    /// ends, partly −∞, spread past the table (keys beyond 64), tiny.
    fn row(rng: &mut crate::Rng, case: usize) -> Vec<f32> {
        let n = match case % 7 {
            0 => 1 + (rng.next_u64() % 8) as usize,
            1 => 50_257,
            _ => 1 + (rng.next_u64() % 4000) as usize,
        };
        let scale = [1.0, 3.0, 0.3, 30.0, 1.0][case % 5];
        (0..n)
            .map(|_| {
                let r = rng.next_f64();
                if case % 4 == 1 && r < 0.3 {
                    f32::NEG_INFINITY
                } else if case % 6 == 2 {
                    ((rng.next_f64() * 8.0).floor() / 4.0) as f32
                } else if case % 6 == 3 {
                    // On bucket ends: keys that are odd multiples of 1/128.
                    ((rng.next_f64() * 1024.0).floor() / 128.0) as f32
                } else {
                    ((rng.next_f64() + rng.next_f64() + rng.next_f64() - 1.5) * scale * 2.0) as f32
                }
            })
            .collect()
    }

    #[test]
    fn exp_of_key_is_within_3_ulp() {
        let mut rng = crate::Rng::new(9);
        let keys = (0..200_000)
            .map(|_| rng.next_f64() * 64.0)
            .chain((0..=BUCKETS).flat_map(|b| {
                let e = (b as f64 - 0.5) / SCALE;
                [e, e.next_down(), e.next_up()]
            }))
            .filter(|&k| k >= 0.0);
        for k in keys {
            let want = (-k).exp();
            let got = exp_of_key(k);
            if k <= (BUCKETS as f64 - 0.5) / SCALE {
                assert!(
                    (got - want).abs() <= 3.0 * f64::EPSILON * want,
                    "key {k}: {got} vs {want}"
                );
            } else {
                assert_eq!(got, 0.0, "key {k}");
            }
        }
        assert_eq!(exp_of_key(64.5), 0.0);
        assert_eq!(exp_of_key(f64::INFINITY), 0.0);
        assert_eq!(exp_of_key(0.0), 1.0);
    }

    /// The AVX2 compilation of the histogram pass (where the CPU has it) and the baseline one
    /// give the same bits: histogram, buckets and moment.
    #[test]
    fn both_paths_agree() {
        let mut rng = crate::Rng::new(11);
        for case in 0..60 {
            let logits = row(&mut rng, case);
            let max = crate::dist::max_logit(&logits) as f64;
            let run = |dispatched: bool, moment: bool| {
                let mut hist = vec![0.0; LANES * STRIDE];
                let mut buckets = vec![0u16; logits.len()];
                let h: &mut [f64; LANES * STRIDE] = (&mut hist[..]).try_into().unwrap();
                let t = &BUCKET_EXP;
                let sum = match (dispatched, moment) {
                    (true, true) => histogram_exp::<true>(&logits, max, t, h, &mut buckets),
                    (false, true) => histogram_exp_body::<true>(&logits, max, t, h, &mut buckets),
                    (true, false) => histogram_exp::<false>(&logits, max, t, h, &mut buckets),
                    (false, false) => histogram_exp_body::<false>(&logits, max, t, h, &mut buckets),
                };
                let bits: Vec<u64> = hist.iter().map(|x| x.to_bits()).collect();
                (bits, buckets, sum.to_bits())
            };
            assert_eq!(run(true, true), run(false, true), "case {case}");
            assert_eq!(run(true, false), run(false, false), "case {case}");
        }
    }

    /// `below_max` and `typical` against a full sort in the same masses; `typical`'s mean
    /// logit against its definition.
    #[test]
    fn fast_cuts_agree_with_a_full_sort() {
        let mut rng = crate::Rng::new(13);
        let mut cut = MassCut::default();
        let cases = 400;
        for case in 0..cases {
            let logits = row(&mut rng, case);
            let max32 = crate::dist::max_logit(&logits);
            if max32 == f32::NEG_INFINITY {
                continue;
            }
            let max = max32 as f64;
            let fraction = rng.next_f64();
            let masses: Vec<f64> = logits.iter().map(|&l| exp_of_key(max - l as f64)).collect();
            let finite = |f: &dyn Fn(f32) -> f64| -> Vec<Option<f64>> {
                logits
                    .iter()
                    .map(|&l| (l != f32::NEG_INFINITY).then(|| f(l)))
                    .collect()
            };
            let top = by_sort(&finite(&|l| max - l as f64), &masses, fraction);
            assert_eq!(
                cut.below_max(&logits, max, fraction),
                top,
                "top_p, case {case}"
            );

            let (ka, delta) = cut.typical(&logits, max, fraction).expect("a crossing");
            let z: f64 = masses.iter().sum();
            let mean_key: f64 = logits
                .iter()
                .zip(&masses)
                .filter(|(l, _)| **l != f32::NEG_INFINITY)
                .map(|(&l, &m)| m * (max - l as f64))
                .sum::<f64>()
                / z;
            assert!(
                (ka - mean_key).abs() <= 1e-9 * (1.0 + mean_key.abs()),
                "case {case}: ka {ka} vs {mean_key}"
            );
            let want = by_sort(
                &finite(&|l| ((max - l as f64) - ka).abs()),
                &masses,
                fraction,
            );
            assert_eq!(Some(delta), want.map(|c| c.key), "typical_p, case {case}");
        }
        assert!(cut.fallbacks * 50 < cases, "{} fallbacks", cut.fallbacks);
    }

    /// Every distance a row has, as the crossing: fractions that put the target inside each
    /// distinct distance's mass, on rows whose logits sit on bucket ends (ties at the bounds
    /// of the walk).
    #[test]
    fn typical_at_every_crossing() {
        let mut rng = crate::Rng::new(17);
        let mut cut = MassCut::default();
        for case in 0..6 {
            let n = 600 + 400 * case;
            let logits: Vec<f32> = (0..n)
                .map(|_| ((rng.next_f64() * 1024.0).floor() / 128.0) as f32)
                .collect();
            let max = crate::dist::max_logit(&logits) as f64;
            let masses: Vec<f64> = logits.iter().map(|&l| exp_of_key(max - l as f64)).collect();
            let total: f64 = masses.iter().sum();
            let (ka, _) = cut.typical(&logits, max, 0.5).unwrap();
            let d = |l: f32| ((max - l as f64) - ka).abs();
            let mut by_d: Vec<(f64, f64)> = logits
                .iter()
                .zip(&masses)
                .map(|(&l, &m)| (d(l), m))
                .collect();
            by_d.sort_by(|x, y| x.0.total_cmp(&y.0));
            let mut below = 0.0;
            let mut i = 0;
            while i < by_d.len() {
                let mut at = 0.0;
                let mut j = i;
                while j < by_d.len() && by_d[j].0 == by_d[i].0 {
                    at += by_d[j].1;
                    j += 1;
                }
                let fraction = (below + 0.5 * at) / total;
                if fraction < 1.0 {
                    let keys: Vec<Option<f64>> = logits.iter().map(|&l| Some(d(l))).collect();
                    let want = by_sort(&keys, &masses, fraction).map(|c| c.key);
                    let got = cut.typical(&logits, max, fraction).map(|(_, delta)| delta);
                    assert_eq!(got, want, "case {case}, distance {}", by_d[i].0);
                }
                below += at;
                i = j;
            }
        }
    }
}
