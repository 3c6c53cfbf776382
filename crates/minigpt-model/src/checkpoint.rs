//! Hugging Face GPT-2 checkpoints: `config.json` + `model.safetensors`, read and written.
//!
//! Names follow `GPT2LMHeadModel` (`wte`, `h.{i}.attn.c_attn`, …, with or without the
//! `transformer.` prefix). GPT-2's Conv1D stores weights `[in, out]`, which is Burn's `Linear`
//! layout, so nothing is transposed. F32, F16 and BF16 files load; models are saved in F32.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::{Param, ParamId};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, tensor::TensorView};

use crate::atomic_write::write_atomic;
use crate::config::GptConfig;
use crate::error::ModelError;
use crate::gpt::Gpt;
use crate::tensor_index::TensorIndex;

/// File names of a model directory.
pub const CONFIG_FILE: &str = "config.json";
/// The weights file.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// Reads `config.json` and `model.safetensors` from `dir` onto `device`, for inference.
pub fn load_dir(dir: &Path, device: &Device) -> Result<(GptConfig, Gpt), ModelError> {
    load_dir_with(dir, device, false)
}

/// As [`load_dir`]; with `train`, the config's dropout is active (on an autodiff device).
pub fn load_dir_with(
    dir: &Path,
    device: &Device,
    train: bool,
) -> Result<(GptConfig, Gpt), ModelError> {
    let (cfg, path) = model_files(dir)?;
    let bytes = std::fs::read(&path).map_err(|e| ModelError::io(&path, e))?;
    let model = load_weights(&cfg, &bytes, &path, device, train)?;
    Ok((cfg, model))
}

/// A model directory's configuration and the path of its weights, checked to exist.
pub(crate) fn model_files(dir: &Path) -> Result<(GptConfig, PathBuf), ModelError> {
    if !dir.is_dir() {
        return Err(ModelError::NoModelDir(dir.to_path_buf()));
    }
    let cfg_path = dir.join(CONFIG_FILE);
    if !cfg_path.is_file() {
        return Err(ModelError::Config {
            path: cfg_path,
            reason: "missing: a GPT-2 directory needs config.json and model.safetensors".into(),
        });
    }
    let cfg = GptConfig::load(&cfg_path)?;
    let path = dir.join(WEIGHTS_FILE);
    if !path.is_file() {
        return Err(ModelError::Weights {
            path,
            reason: "missing: a GPT-2 directory needs config.json and model.safetensors".into(),
        });
    }
    Ok((cfg, path))
}

/// Builds a model from the bytes of a safetensors file (`path` is only for messages).
/// Parameter ids derive from the names, so optimizer state follows a model across a reload.
pub fn load_weights(
    cfg: &GptConfig,
    bytes: &[u8],
    path: &Path,
    device: &Device,
    train: bool,
) -> Result<Gpt, ModelError> {
    let index = TensorIndex::new(bytes, path)?;
    index.check(cfg)?;
    for (name, _) in crate::tensor_index::expected(cfg) {
        index.check_finite(&name, false)?;
    }
    let l = Loader {
        index,
        device: device.clone(),
    };
    let (c, v, p, i) = (cfg.n_embd, cfg.vocab_size, cfg.n_positions, cfg.inner());
    let mut m = Gpt::init(cfg, device, train);
    m.wte.weight = stable("wte.weight", l.get("wte.weight", [v, c])?);
    m.wpe.weight = stable("wpe.weight", l.get("wpe.weight", [p, c])?);
    for (n, block) in m.h.iter_mut().enumerate() {
        let pre = format!("h.{n}");
        l.layer_norm(&mut block.ln_1, &format!("{pre}.ln_1"), c)?;
        l.linear(
            &mut block.attn.c_attn,
            &format!("{pre}.attn.c_attn"),
            c,
            3 * c,
        )?;
        l.linear(&mut block.attn.c_proj, &format!("{pre}.attn.c_proj"), c, c)?;
        l.layer_norm(&mut block.ln_2, &format!("{pre}.ln_2"), c)?;
        l.linear(&mut block.mlp.c_fc, &format!("{pre}.mlp.c_fc"), c, i)?;
        l.linear(&mut block.mlp.c_proj, &format!("{pre}.mlp.c_proj"), i, c)?;
    }
    l.layer_norm(&mut m.ln_f, "ln_f", c)?;
    Ok(m)
}

struct Loader<'a> {
    index: TensorIndex<'a>,
    device: Device,
}

impl Loader<'_> {
    fn get<const D: usize>(&self, name: &str, shape: [usize; D]) -> Result<Tensor<D>, ModelError> {
        let values = self.index.values(name, &shape)?;
        Ok(Tensor::from_data(
            TensorData::new(values, shape),
            &self.device,
        ))
    }

    fn linear(
        &self,
        lin: &mut burn::nn::Linear,
        name: &str,
        d_in: usize,
        d_out: usize,
    ) -> Result<(), ModelError> {
        let (w, b) = (format!("{name}.weight"), format!("{name}.bias"));
        lin.weight = stable(&w, self.get(&w, [d_in, d_out])?);
        lin.bias = Some(stable(&b, self.get(&b, [d_out])?));
        Ok(())
    }

    fn layer_norm(
        &self,
        ln: &mut burn::nn::LayerNorm,
        name: &str,
        d: usize,
    ) -> Result<(), ModelError> {
        let (w, b) = (format!("{name}.weight"), format!("{name}.bias"));
        ln.gamma = stable(&w, self.get(&w, [d])?);
        ln.beta = Some(stable(&b, self.get(&b, [d])?));
        Ok(())
    }
}

/// A trainable parameter whose id is derived from its checkpoint name (FNV-1a), so optimizer
/// state saved for one instance of a model applies to the same model loaded again.
fn stable<const D: usize>(name: &str, value: Tensor<D>) -> Param<Tensor<D>> {
    let mut p = Param::from_tensor(value);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    p.id = ParamId::from(h);
    p
}

/// Every parameter with its Hugging Face name, as F32 values and shape.
pub fn named_tensors(model: &Gpt) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    fn put<const D: usize>(
        out: &mut Vec<(String, Vec<usize>, Vec<f32>)>,
        name: String,
        t: Tensor<D>,
    ) {
        let shape = t.dims().to_vec();
        out.push((name, shape, crate::to_host(t)));
    }
    let mut out = Vec::new();
    put(&mut out, "wte.weight".into(), model.wte.weight.val());
    put(&mut out, "wpe.weight".into(), model.wpe.weight.val());
    let lin = |out: &mut Vec<_>, name: String, l: &burn::nn::Linear| {
        put(out, format!("{name}.weight"), l.weight.val());
        if let Some(b) = &l.bias {
            put(out, format!("{name}.bias"), b.val());
        }
    };
    let ln = |out: &mut Vec<_>, name: String, l: &burn::nn::LayerNorm| {
        put(out, format!("{name}.weight"), l.gamma.val());
        if let Some(b) = &l.beta {
            put(out, format!("{name}.bias"), b.val());
        }
    };
    for (n, b) in model.h.iter().enumerate() {
        ln(&mut out, format!("h.{n}.ln_1"), &b.ln_1);
        lin(&mut out, format!("h.{n}.attn.c_attn"), &b.attn.c_attn);
        lin(&mut out, format!("h.{n}.attn.c_proj"), &b.attn.c_proj);
        ln(&mut out, format!("h.{n}.ln_2"), &b.ln_2);
        lin(&mut out, format!("h.{n}.mlp.c_fc"), &b.mlp.c_fc);
        lin(&mut out, format!("h.{n}.mlp.c_proj"), &b.mlp.c_proj);
    }
    ln(&mut out, "ln_f".into(), &model.ln_f);
    out
}

/// The model as the bytes of an F32 safetensors file.
pub fn to_safetensors(model: &Gpt) -> Result<Vec<u8>, ModelError> {
    let tensors = named_tensors(model);
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(n, s, v)| (n, s, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let bad = |e: safetensors::SafeTensorError| ModelError::Weights {
        path: WEIGHTS_FILE.into(),
        reason: e.to_string(),
    };
    let mut views = Vec::with_capacity(bytes.len());
    for (name, shape, data) in &bytes {
        views.push((
            name.clone(),
            TensorView::new(Dtype::F32, shape.clone(), data).map_err(bad)?,
        ));
    }
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(meta)).map_err(bad)
}

/// Writes `config.json` and an F32 `model.safetensors` to `dir` (created if needed), each with
/// [`write_atomic`], so an interrupted save leaves no torn file.
pub fn save_dir(model: &Gpt, cfg: &GptConfig, dir: &Path) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let bytes = to_safetensors(model)?;
    write_atomic(&dir.join(WEIGHTS_FILE), &bytes)?;
    cfg.save(&dir.join(CONFIG_FILE))
}
