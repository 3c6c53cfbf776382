//! The smallest prefix of a row, in a given order, whose probability mass reaches a target
//! (`top_p`, `typical_p`), in O(V) instead of a sort of the whole vocabulary.
//!
//! Tokens are put in buckets by their sort key (key ≥ 0, most wanted first, `1/SCALE` wide);
//! one pass adds up each bucket's mass, a walk over the buckets finds the one where the mass
//! crosses the target, and only that bucket's tokens are sorted. A row of GPT-2's 50,257
//! standard-normal logits puts ~100 tokens in the crossing bucket of `top_p(0.9)`.

/// Buckets per unit of key.
const SCALE: f64 = 64.0;
/// Buckets in all: keys up to 64 (nats) are resolved; larger ones share the last bucket.
const BUCKETS: usize = 4096;

/// Reused buffers (one per processor instance).
#[derive(Debug, Clone, Default)]
pub(crate) struct MassCut {
    mass: Vec<f64>,
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

fn bucket(key: f64) -> usize {
    // `as` saturates: NaN and negative keys go to 0, huge ones to the last bucket.
    ((key * SCALE) as usize).min(BUCKETS - 1)
}

impl MassCut {
    /// Among tokens `0..n` with `key(i)` (`None`: not a candidate, e.g. −∞) and mass
    /// `mass(i) ≥ 0`, ordered by (key, token id), the first token at which the prefix's mass
    /// reaches `fraction` of the candidates' total. `None` when rounding keeps the total below
    /// it (the whole row is the prefix). `key` and `mass` are each called twice per candidate
    /// at most; they must give the same values each time.
    pub fn find(
        &mut self,
        n: usize,
        key: impl Fn(usize) -> Option<f64>,
        mass: impl Fn(usize) -> f64,
        fraction: f64,
    ) -> Option<Crossing> {
        self.mass.clear();
        self.mass.resize(BUCKETS, 0.0);
        for i in 0..n {
            if let Some(k) = key(i) {
                self.mass[bucket(k)] += mass(i);
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
        let b = crossing?;
        self.members.clear();
        for i in 0..n {
            if let Some(k) = key(i)
                && bucket(k) == b
            {
                self.members.push((k, i as u32, mass(i)));
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
            // Coarse keys make ties; some tokens are not candidates; some keys are huge.
            let coarse = case % 3 == 0;
            let keys: Vec<Option<f64>> = (0..n)
                .map(|_| {
                    let r = rng.next_f64();
                    if r < 0.1 {
                        None
                    } else if r < 0.12 {
                        Some(100.0 + r)
                    } else if coarse {
                        Some((rng.next_f64() * 8.0).floor() / 4.0)
                    } else {
                        Some(rng.next_f64() * 12.0)
                    }
                })
                .collect();
            let mass: Vec<f64> = keys.iter().map(|k| k.map_or(0.0, |k| (-k).exp())).collect();
            let fraction = rng.next_f64();
            let got = cut.find(n, |i| keys[i], |i| mass[i], fraction);
            assert_eq!(got, by_sort(&keys, &mass, fraction), "case {case}");
        }
        assert_eq!(cut.find(3, |_| None, |_| 1.0, 0.5), None);
    }
}
