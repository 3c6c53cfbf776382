//! [`last_hidden_features`]: one feature vector per text, the model's final-layer hidden state
//! (after the last LayerNorm) at the text's last token, as MAUVE (Pillutla et al. 2021) takes
//! from GPT-2 (`mauve-text`'s `featurize_tokens_from_model`: `hidden_states[-1][:, -1]`).

use crate::model::{LanguageModel, ModelError};

/// Rows per prefill on a batch-invariant model: bounds the hidden states held at once (rows ×
/// positions × width). Other models read one text per call, so a text's feature never depends
/// on which texts shared its batch.
const ROWS_PER_CALL: usize = 32;

/// The final-layer hidden state at the last token of each of `texts` (token ids, none empty).
/// A text longer than the model's context is read as its last `context_len` tokens, so the
/// feature always describes the text's end.
pub fn last_hidden_features(
    model: &mut dyn LanguageModel,
    texts: &[Vec<u32>],
) -> Result<Vec<Vec<f32>>, ModelError> {
    if let Some(i) = texts.iter().position(Vec::is_empty) {
        return Err(format!("text {i} has no tokens: a feature needs at least one").into());
    }
    let n = model.context_len().max(1);
    let mut out = Vec::with_capacity(texts.len());
    model.record_hidden(true)?;
    let result = (|| {
        let per_call = if model.batch_invariant() {
            ROWS_PER_CALL
        } else {
            1
        };
        for chunk in texts.chunks(per_call) {
            let rows: Vec<Vec<u32>> = chunk
                .iter()
                .map(|t| t[t.len().saturating_sub(n)..].to_vec())
                .collect();
            model.prefill(&rows)?;
            let hidden = model
                .last_hidden()
                .ok_or("the model recorded no hidden states")?;
            // Rows are left-padded: every row's last token is at the last position.
            let last = hidden.positions.checked_sub(1).ok_or("no positions")?;
            for r in 0..rows.len() {
                out.push(hidden.at(r, last).to_vec());
            }
        }
        Ok::<_, ModelError>(())
    })();
    model.record_hidden(false)?;
    result.map(|_| out)
}
