//! [`TensorIndex`]: a GPT-2 safetensors file's tensors by name (without the `transformer.`
//! prefix), checked against `config.json` before anything is built from them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use minigpt_native::Elements;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::config::GptConfig;
use crate::error::ModelError;

/// The largest finite f16 value.
const F16_MAX: f32 = 65504.0;

/// A safetensors file's tensors, read in place.
pub(crate) struct TensorIndex<'a> {
    views: HashMap<String, TensorView<'a>>,
    path: PathBuf,
}

impl<'a> TensorIndex<'a> {
    /// Parses the header of `bytes`, a safetensors file (`path` is only for messages).
    pub(crate) fn new(bytes: &'a [u8], path: &Path) -> Result<Self, ModelError> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| ModelError::Weights {
            path: path.to_path_buf(),
            reason: format!("not a valid safetensors file (truncated or corrupt?): {e}"),
        })?;
        let mut views: HashMap<String, TensorView<'a>> = HashMap::new();
        for (name, view) in st.tensors() {
            let short = name
                .strip_prefix("transformer.")
                .unwrap_or(&name)
                .to_string();
            // Both `X` and `transformer.X`: one tensor named twice is fine, two are ambiguous.
            if let Some(other) = views.get(&short)
                && (other.data() != view.data()
                    || other.dtype() != view.dtype()
                    || other.shape() != view.shape())
            {
                return Err(ModelError::Weights {
                    path: path.to_path_buf(),
                    reason: format!(
                        "the file holds both {short} and transformer.{short} with different values: keep one"
                    ),
                });
            }
            views.insert(short, view);
        }
        Ok(Self {
            views,
            path: path.to_path_buf(),
        })
    }

    /// An error about this file.
    pub(crate) fn bad(&self, reason: &str) -> ModelError {
        ModelError::Weights {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }

    /// Checks that the file holds every tensor `cfg` implies, with its shape and a readable
    /// dtype, a head tied to the token embedding (or none), and no extra blocks.
    pub(crate) fn check(&self, cfg: &GptConfig) -> Result<(), ModelError> {
        for (name, shape) in expected(cfg) {
            self.view(&name, &shape)?;
        }
        if let (Some(head), Some(wte)) = (
            self.views.get("lm_head.weight"),
            self.views.get("wte.weight"),
        ) && head.data() != wte.data()
        {
            return Err(
                self.bad("lm_head.weight differs from wte.weight: untied heads are not supported")
            );
        }
        if self
            .views
            .contains_key(&format!("h.{}.ln_1.weight", cfg.n_layer))
        {
            return Err(self.bad(&format!(
                "the file has more blocks than config.json's n_layer = {}",
                cfg.n_layer
            )));
        }
        Ok(())
    }

    /// The named tensor, which must have `shape` and an F32, F16 or BF16 dtype.
    pub(crate) fn view(&self, name: &str, shape: &[usize]) -> Result<&TensorView<'a>, ModelError> {
        let view = self
            .views
            .get(name)
            .ok_or_else(|| self.bad(&format!("tensor {name} is missing")))?;
        if view.shape() != shape {
            return Err(self.bad(&format!(
                "tensor {name} has shape {:?}, config.json implies {:?}",
                view.shape(),
                shape
            )));
        }
        if !matches!(view.dtype(), Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            return Err(self.bad(&format!(
                "tensor {name} has dtype {:?}; minigpt reads F32, F16 and BF16",
                view.dtype()
            )));
        }
        Ok(view)
    }

    /// The named tensor's values in place, if it is there with a readable dtype.
    pub(crate) fn elements(&self, name: &str) -> Option<Elements<'a>> {
        let view = self.views.get(name)?;
        let data: &'a [u8] = view.data();
        match view.dtype() {
            Dtype::F32 => Some(Elements::F32Le(data)),
            Dtype::F16 => Some(Elements::F16Le(data)),
            Dtype::BF16 => Some(Elements::BF16Le(data)),
            _ => None,
        }
    }

    /// Refuses the named tensor when a value is NaN or infinite, or, when it is to be stored
    /// as f16 (`to_f16`), beyond f16's range (±65504: it would become infinite).
    pub(crate) fn check_finite(&self, name: &str, to_f16: bool) -> Result<(), ModelError> {
        let Some(e) = self.elements(name) else {
            return Ok(());
        };
        // Exponent bits all ones: infinite or NaN.
        let bad_bits = |b: &[u8], width: usize, exp_mask: u16| {
            b.chunks_exact(width)
                .position(|c| u16::from_le_bytes([c[0], c[1]]) & exp_mask == exp_mask)
        };
        let (at, limit) = match e {
            Elements::F32(v) => (v.iter().position(|x| !x.is_finite()), None),
            Elements::F32Le(b) => {
                let vals = b
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
                let mut found = (None, None);
                for (i, x) in vals.enumerate() {
                    if !x.is_finite() {
                        found = (Some(i), None);
                        break;
                    }
                    if to_f16 && x.abs() > F16_MAX {
                        found = (Some(i), Some(x));
                        break;
                    }
                }
                found
            }
            Elements::F16Le(b) => (bad_bits(b, 2, 0x7C00), None),
            Elements::BF16Le(b) => (bad_bits(b, 2, 0x7F80), None),
        };
        match (at, limit) {
            (None, _) => Ok(()),
            (Some(i), None) => Err(self.bad(&format!(
                "tensor {name} holds a non-finite value (NaN or infinity) at element {i}: the checkpoint is corrupt or its training diverged"
            ))),
            (Some(i), Some(x)) => Err(self.bad(&format!(
                "tensor {name} holds {x} at element {i}, beyond f16's range (±65504): load it with --dtype f32 or bf16"
            ))),
        }
    }

    /// The named tensor (of `shape`) as f32 values.
    pub(crate) fn values(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        self.view(name, shape)?;
        self.elements(name)
            .map(|e| e.to_vec())
            .ok_or_else(|| self.bad(&format!("tensor {name} cannot be read")))
    }

    /// Where the named tensor's bytes lie within `file` (the bytes this index was made of).
    pub(crate) fn byte_range(&self, name: &str, file: &[u8]) -> Option<std::ops::Range<usize>> {
        let data = self.views.get(name)?.data();
        let start = (data.as_ptr() as usize).checked_sub(file.as_ptr() as usize)?;
        Some(start..start + data.len())
    }
}

/// Every tensor a GPT-2 with `cfg` has, with its shape (biases and LayerNorm shifts included).
pub(crate) fn expected(cfg: &GptConfig) -> Vec<(String, Vec<usize>)> {
    let (c, v, p, i) = (cfg.n_embd, cfg.vocab_size, cfg.n_positions, cfg.inner());
    let mut out = vec![
        ("wte.weight".to_string(), vec![v, c]),
        ("wpe.weight".to_string(), vec![p, c]),
    ];
    let mut lin = |name: String, d_in: usize, d_out: usize| {
        out.push((format!("{name}.weight"), vec![d_in, d_out]));
        out.push((format!("{name}.bias"), vec![d_out]));
    };
    for n in 0..cfg.n_layer {
        lin(format!("h.{n}.attn.c_attn"), c, 3 * c);
        lin(format!("h.{n}.attn.c_proj"), c, c);
        lin(format!("h.{n}.mlp.c_fc"), c, i);
        lin(format!("h.{n}.mlp.c_proj"), i, c);
    }
    for n in 0..cfg.n_layer {
        for ln in ["ln_1", "ln_2"] {
            out.push((format!("h.{n}.{ln}.weight"), vec![c]));
            out.push((format!("h.{n}.{ln}.bias"), vec![c]));
        }
    }
    out.push(("ln_f.weight".into(), vec![c]));
    out.push(("ln_f.bias".into(), vec![c]));
    out
}
