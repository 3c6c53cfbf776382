//! A chain of logits processors ending in exactly one selector.

use std::fmt;

use crate::processor::{LogitsProcessor, StepContext};
use crate::rng::Rng;
use crate::row_check::{UnusableRow, process_checked};
use crate::selector::{Choice, TokenSelector};

/// `logits -> processor -> ... -> selector`: the order is the user's, and the type admits
/// exactly one selector, last.
pub struct Pipeline {
    processors: Vec<Box<dyn LogitsProcessor>>,
    selector: Box<dyn TokenSelector>,
}

impl Pipeline {
    /// A chain from its parts.
    pub fn new(
        processors: Vec<Box<dyn LogitsProcessor>>,
        selector: Box<dyn TokenSelector>,
    ) -> Self {
        Self {
            processors,
            selector,
        }
    }

    /// Runs the processors in order on `logits`, then the selector; tells every processor the
    /// choice. A row with no finite logit, a NaN or +∞ (from the model or after any processor)
    /// is an error naming the step: the selector never sees it.
    pub fn choose(
        &mut self,
        cx: &StepContext<'_>,
        logits: &mut [f32],
        rng: &mut Rng,
    ) -> Result<Choice, UnusableRow> {
        if let Err((at, problem)) = process_checked(&mut self.processors, cx, logits) {
            return Err(UnusableRow::new(
                self.to_string(),
                &self.processors,
                at,
                problem,
                cx.step(),
            ));
        }
        let choice = self.selector.select(logits, rng);
        for p in &mut self.processors {
            p.accept(choice.token);
        }
        Ok(choice)
    }

    /// Each processor's [`LogitsProcessor::check_vocab`].
    pub fn check_vocab(&self, vocab: usize) -> Result<(), String> {
        for p in &self.processors {
            p.check_vocab(vocab)
                .map_err(|e| format!("{}: {e}", p.name()))?;
        }
        Ok(())
    }

    /// Forgets per-row state.
    pub fn reset(&mut self) {
        self.processors.iter_mut().for_each(|p| p.reset());
        self.selector.reset();
    }

    /// The selector's registry name.
    pub fn selector_name(&self) -> &'static str {
        self.selector.name()
    }
}

impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("logits")?;
        for p in &self.processors {
            write!(f, " -> {p}")?;
        }
        write!(f, " -> {}", self.selector)
    }
}
