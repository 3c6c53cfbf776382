//! Rows that no token can be chosen from: no finite logit left, a NaN, or +∞. The chain checks
//! the model's row and the row after every processor, so a selector or search never picks a
//! token from garbage, and the error names the step that produced it.

use std::fmt;

use crate::processor::{LogitsProcessor, StepContext};

/// What is wrong with a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowProblem {
    /// Every logit is −∞ (or the row is empty).
    NoFiniteLogit,
    /// The logit of this token is NaN.
    NotANumber(u32),
    /// The logit of this token is +∞ (probabilities would be NaN).
    PlusInfinity(u32),
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoFiniteLogit => f.write_str("no finite logit is left"),
            Self::NotANumber(t) => write!(f, "the logit of token {t} is NaN"),
            Self::PlusInfinity(t) => write!(f, "the logit of token {t} is +inf"),
        }
    }
}

/// The row's problem, if any. One pass over the bits (vectorisable): finite values and −∞
/// are fine as long as one value is finite.
pub fn check_row(logits: &[f32]) -> Result<(), RowProblem> {
    const ABS: u32 = 0x7fff_ffff;
    const INF: u32 = 0x7f80_0000;
    const NEG_INF: u32 = 0xff80_0000;
    // Sixteen lanes of flags, folded at the end, so the loop compiles to vector compares.
    let (mut finite, mut bad) = ([0u32; 16], [0u32; 16]);
    let (chunks, rest) = logits.as_chunks::<16>();
    let flags = |x: f32| {
        let b = x.to_bits();
        (
            ((b & ABS) < INF) as u32,
            (((b & ABS) >= INF) & (b != NEG_INF)) as u32,
        )
    };
    for c in chunks {
        for j in 0..16 {
            let (f, b) = flags(c[j]);
            finite[j] |= f;
            bad[j] |= b;
        }
    }
    for &x in rest {
        let (f, b) = flags(x);
        finite[0] |= f;
        bad[0] |= b;
    }
    let finite = finite.iter().fold(0, |a, &x| a | x);
    let bad = bad.iter().fold(0, |a, &x| a | x);
    if bad != 0 {
        let i = logits
            .iter()
            .position(|x| x.is_nan() || *x == f32::INFINITY)
            .unwrap_or(0);
        return Err(if logits[i].is_nan() {
            RowProblem::NotANumber(i as u32)
        } else {
            RowProblem::PlusInfinity(i as u32)
        });
    }
    if finite == 0 {
        return Err(RowProblem::NoFiniteLogit);
    }
    Ok(())
}

/// Runs `processors` in order on `logits`, checking the row before the first and after each.
/// On a problem, returns it with the index of the processor after which it appeared (`None`:
/// the model's own logits).
pub fn process_checked(
    processors: &mut [Box<dyn LogitsProcessor>],
    cx: &StepContext<'_>,
    logits: &mut [f32],
) -> Result<(), (Option<usize>, RowProblem)> {
    check_row(logits).map_err(|p| (None, p))?;
    for (i, p) in processors.iter_mut().enumerate() {
        p.process(cx, logits);
        check_row(logits).map_err(|e| (Some(i), e))?;
    }
    Ok(())
}

/// A generation stopped because no token could be chosen: which row and step, which chain,
/// after which of its steps, and what was wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "row {row}, step {step}: no token can be chosen: {problem} after {after} in `{chain}`; {hint}"
)]
pub struct UnusableRow {
    /// The row of the batch (the prompt's index).
    pub row: usize,
    /// Tokens generated before this step.
    pub step: usize,
    /// The whole chain, as `minigpt generate --show-chain` prints it.
    pub chain: String,
    /// `the model's logits`, or the processor after which the row became unusable.
    pub after: String,
    /// What is wrong.
    pub problem: RowProblem,
    /// What to change.
    pub hint: &'static str,
}

impl UnusableRow {
    /// The error for `problem` found after processor `at` (`None`: in the model's logits) of
    /// `processors`, in the chain shown as `chain`.
    pub fn new(
        chain: String,
        processors: &[Box<dyn LogitsProcessor>],
        at: Option<usize>,
        problem: RowProblem,
        step: usize,
    ) -> Self {
        let (after, hint) = match at {
            None => (
                "the model's logits".to_string(),
                "the model produced this row itself: check its weights, or try --dtype f32",
            ),
            Some(i) => (
                format!("`{}`", processors[i]),
                match problem {
                    RowProblem::NoFiniteLogit => {
                        "loosen that step or the filters before it (a penalty or bias that masks the last tokens left)"
                    }
                    _ => "lower that step's parameters (the result overflowed float32)",
                },
            ),
        };
        Self {
            row: 0,
            step,
            chain,
            after,
            problem,
            hint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const NEG: f32 = f32::NEG_INFINITY;

    #[test]
    fn finds_each_problem() {
        assert_eq!(check_row(&[NEG, 0.5, NEG]), Ok(()));
        assert_eq!(check_row(&[-3e38, NEG]), Ok(()));
        assert_eq!(check_row(&[NEG; 3]), Err(RowProblem::NoFiniteLogit));
        assert_eq!(check_row(&[]), Err(RowProblem::NoFiniteLogit));
        assert_eq!(
            check_row(&[0.0, f32::NAN, 1.0]),
            Err(RowProblem::NotANumber(1))
        );
        let mut long = vec![0.0f32; 1000];
        long[700] = f32::INFINITY;
        assert_eq!(check_row(&long), Err(RowProblem::PlusInfinity(700)));
        long[700] = -f32::NAN;
        assert_eq!(check_row(&long), Err(RowProblem::NotANumber(700)));
    }
}
