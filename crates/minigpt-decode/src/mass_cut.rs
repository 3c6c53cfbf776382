//! The smallest prefix of a row, in a given order, whose probability mass reaches a target
//! (`top_p`, `typical_p`), in O(V) instead of a sort of the whole vocabulary.
//!
//! Tokens are put in buckets by their sort key (key ≥ 0, most wanted first, `1/SCALE` wide);
//! one pass adds up each bucket's mass, a walk over the buckets finds the one where the mass
//! crosses the target, and only that bucket's tokens are sorted. A row of GPT-2's 50,257
//! standard-normal logits puts about a hundred tokens (by their density there) in the crossing
//! bucket of `top_p(0.9)`.

/// Buckets per unit of key.
const SCALE: f64 = 64.0;
/// Buckets in all: keys up to 64 (nats) are resolved; larger ones share the last bucket.
const BUCKETS: usize = 4096;

/// Reused buffers (one per processor instance).
#[derive(Debug, Clone, Default)]
pub(crate) struct MassCut {
    mass: Vec<f64>,
    /// Each token's bucket (`BUCKETS` for −∞), from the first pass.
    buckets: Vec<u16>,
    members: Vec<(f64, u32, f64)>,
}

/// Where the mass crosses the target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Crossing {
    /// The key of the token whose mass makes the prefix reach the target.
    pub key: f64,
    /// That token.
    pub token: u32,
}

/// A key's bucket: round(min(key·SCALE, BUCKETS − 1)) by the 1.5·2^52 trick (monotone in the
/// key and branch-free, so the first pass vectorises; NaN and +∞ go to the last bucket).
fn bucket(key: f64) -> usize {
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    let x = (key * SCALE).min((BUCKETS - 1) as f64).max(0.0);
    ((x + SHIFT).to_bits() - SHIFT.to_bits()) as usize
}

impl MassCut {
    /// Among the tokens of `logits` that are not −∞, with sort key `key(l) ≥ 0` (a function
    /// of the logit) and mass `masses[i] ≥ 0`, ordered by (key, token id): the first token at
    /// which the prefix's mass reaches `fraction` of the total. `None` when rounding keeps the
    /// total below it (the whole row is the prefix).
    pub fn find(
        &mut self,
        logits: &[f32],
        masses: &[f64],
        key: impl Fn(f32) -> f64,
        fraction: f64,
    ) -> Option<Crossing> {
        debug_assert_eq!(logits.len(), masses.len());
        self.mass.clear();
        self.mass.resize(BUCKETS, 0.0);
        self.buckets.clear();
        self.buckets.resize(logits.len(), 0);
        // Each token's bucket in a vectorisable pass (−∞: past the last bucket), then the
        // scatter-add of the masses.
        let bucket_of = |l: f32| {
            let b = bucket(key(l)) as u16;
            if l == f32::NEG_INFINITY {
                BUCKETS as u16
            } else {
                b
            }
        };
        let (chunks, rest) = logits.as_chunks::<8>();
        let (out, out_rest) = self.buckets.as_chunks_mut::<8>();
        for (c, o) in chunks.iter().zip(out.iter_mut()) {
            for j in 0..8 {
                o[j] = bucket_of(c[j]);
            }
        }
        for (o, &l) in out_rest.iter_mut().zip(rest) {
            *o = bucket_of(l);
        }
        for (&b, &m) in self.buckets.iter().zip(masses) {
            if (b as usize) < BUCKETS {
                self.mass[b as usize] += m;
            }
        }
        let total: f64 = self.mass.iter().sum();
        let target = fraction * total;
        let mut before = 0.0;
        let mut crossing = None;
        for (b, &m) in self.mass.iter().enumerate() {
            if m > 0.0 && before + m >= target {
                crossing = Some(b);
                break;
            }
            before += m;
        }
        let b = crossing? as u16;
        self.members.clear();
        for (i, (&bi, &l)) in self.buckets.iter().zip(logits).enumerate() {
            if bi == b {
                self.members.push((key(l), i as u32, masses[i]));
            }
        }
        self.members
            .sort_unstable_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        let mut acc = before;
        for &(k, t, m) in &self.members {
            acc += m;
            if acc >= target {
                return Some(Crossing { key: k, token: t });
            }
        }
        // The bucket's total and its members' running sum rounded differently.
        self.members
            .last()
            .map(|&(k, t, _)| Crossing { key: k, token: t })
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
            let got = cut.find(&logits, &masses, key, fraction);
            assert_eq!(got, by_sort(&keys, &masses, fraction), "case {case}");
        }
        assert_eq!(
            cut.find(&[f32::NEG_INFINITY; 3], &[0.0; 3], |_| 1.0, 0.5),
            None
        );
    }
}
