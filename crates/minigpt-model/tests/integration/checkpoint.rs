//! Loading Hugging Face checkpoints in their variants, saving, and refusing bad files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use minigpt_model::{GptLm, parse_device, save_dir};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny-gpt2")
}

/// A fresh folder, removed when the guard drops (also when the test fails).
fn tmp(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("minigpt-ckpt-{name}-"))
        .tempdir()
        .unwrap()
}

/// The fixture's tensors as f32 values.
fn fixture_tensors() -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(fixture().join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            assert_eq!(v.dtype(), Dtype::F16);
            let vals = v
                .data()
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect();
            (n, v.shape().to_vec(), vals)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Writes a model directory with the fixture's config and the given tensors.
fn write_dir(dir: &Path, tensors: &[(String, Vec<usize>, Dtype, Vec<u8>)]) {
    std::fs::copy(fixture().join("config.json"), dir.join("config.json")).unwrap();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, s, d, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
}

fn encode(vals: &[f32], dtype: Dtype) -> Vec<u8> {
    match dtype {
        Dtype::F32 => vals.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Dtype::BF16 => vals
            .iter()
            .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
            .collect(),
        Dtype::F16 => vals
            .iter()
            .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
            .collect(),
        _ => unreachable!(),
    }
}

fn logits(dir: &Path) -> Vec<f32> {
    let lm = GptLm::load(dir, &parse_device("flex").unwrap()).unwrap();
    lm.sequence_logits(&[464, 2068, 7586, 21831, 18045])
}

#[test]
fn f32_with_transformer_prefix_lm_head_and_mask_buffers_loads_identically() {
    let base = logits(&fixture());
    let guard = tmp("f32");
    let dir = guard.path().to_path_buf();
    let mut t: Vec<_> = fixture_tensors()
        .into_iter()
        .map(|(n, s, v)| {
            (
                format!("transformer.{n}"),
                s,
                Dtype::F32,
                encode(&v, Dtype::F32),
            )
        })
        .collect();
    let wte = t
        .iter()
        .find(|x| x.0 == "transformer.wte.weight")
        .unwrap()
        .clone();
    t.push(("lm_head.weight".into(), wte.1, Dtype::F32, wte.3));
    t.push((
        "transformer.h.0.attn.bias".into(),
        vec![1, 1, 2, 2],
        Dtype::F32,
        encode(&[1.0, 0.0, 1.0, 1.0], Dtype::F32),
    ));
    write_dir(&dir, &t);
    assert_eq!(logits(&dir), base, "F32 holds the F16 values exactly");
}

#[test]
fn bf16_loads_rounded_values() {
    let base = logits(&fixture());
    let guard = tmp("bf16");
    let dir = guard.path().to_path_buf();
    let t: Vec<_> = fixture_tensors()
        .into_iter()
        .map(|(n, s, v)| (n, s, Dtype::BF16, encode(&v, Dtype::BF16)))
        .collect();
    write_dir(&dir, &t);
    let got = logits(&dir);
    let d = got
        .iter()
        .zip(&base)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    // bf16 keeps 8 bits of mantissa: close, but not equal.
    assert!(d > 0.0 && d < 0.1, "max |Δlogit| = {d}");
}

#[test]
fn save_then_load_gives_identical_logits() {
    let device = parse_device("flex").unwrap();
    let lm = GptLm::load(&fixture(), &device).unwrap();
    let guard = tmp("save");
    let dir = guard.path().to_path_buf();
    save_dir(lm.model().unwrap(), &lm.config, &dir).unwrap();
    let again = GptLm::load(&dir, &device).unwrap();
    let ids = [1u32, 2, 3, 50256, 7];
    assert_eq!(lm.sequence_logits(&ids), again.sequence_logits(&ids));
    // The saved config keeps Hugging Face's names and says which class loads it.
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["architectures"][0], "GPT2LMHeadModel");
    assert_eq!(cfg["n_embd"], 32);
    let st_bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&st_bytes).unwrap();
    assert_eq!(
        st.tensor("h.1.mlp.c_fc.weight").unwrap().shape(),
        &[32, 128]
    );
    assert_eq!(st.len(), 2 + 2 * 12 + 2);
}

fn load_err(dir: &Path) -> String {
    match GptLm::load(dir, &parse_device("flex").unwrap()) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_checkpoints_are_clear_errors() {
    let e = load_err(Path::new("/no/such/model"));
    assert!(e.contains("does not exist") && e.contains("--model"), "{e}");

    let guard = tmp("missing");
    let dir = guard.path().to_path_buf();
    std::fs::copy(fixture().join("config.json"), dir.join("config.json")).unwrap();
    let e = load_err(&dir);
    assert!(
        e.contains("model.safetensors") && e.contains("missing"),
        "{e}"
    );

    let bytes = std::fs::read(fixture().join("model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("truncated"), "{e}");

    // A tensor with the wrong shape.
    let mut t: Vec<_> = fixture_tensors()
        .into_iter()
        .map(|(n, s, v)| (n, s, Dtype::F32, encode(&v, Dtype::F32)))
        .collect();
    let i = t
        .iter()
        .position(|x| x.0 == "h.0.attn.c_proj.weight")
        .unwrap();
    t[i].1 = vec![16, 64];
    write_dir(&dir, &t);
    let e = load_err(&dir);
    assert!(
        e.contains("h.0.attn.c_proj.weight") && e.contains("[16, 64]"),
        "{e}"
    );

    // A missing tensor.
    t.remove(i);
    write_dir(&dir, &t);
    assert!(load_err(&dir).contains("h.0.attn.c_proj.weight is missing"));

    // An unsupported dtype.
    let t: Vec<_> = fixture_tensors()
        .into_iter()
        .map(|(n, s, v)| {
            let d = if n == "ln_f.bias" {
                Dtype::I32
            } else {
                Dtype::F32
            };
            (n, s, d, encode(&v, Dtype::F32))
        })
        .collect();
    write_dir(&dir, &t);
    assert!(load_err(&dir).contains("dtype I32"));

    // A NaN, an infinity (each named with its tensor), and one name under both spellings with
    // different values; on the native engine (f32 and f16 weights) and on Burn.
    let base: Vec<_> = fixture_tensors()
        .into_iter()
        .map(|(n, s, v)| (n, s, Dtype::F32, v))
        .collect();
    for bad in [f32::NAN, f32::INFINITY] {
        let t: Vec<_> = base
            .iter()
            .map(|(n, s, d, v)| {
                let mut v = v.clone();
                if n == "h.1.mlp.c_fc.weight" {
                    v[7] = bad;
                }
                (n.clone(), s.clone(), *d, encode(&v, *d))
            })
            .collect();
        write_dir(&dir, &t);
        for device in ["flex", "cpu"] {
            let target = minigpt_model::parse_target(device, "f32").unwrap();
            let e = match GptLm::load_to(&dir, &target) {
                Ok(_) => panic!("a {bad} loaded on {device}"),
                Err(e) => e.to_string(),
            };
            assert!(
                e.contains("h.1.mlp.c_fc.weight")
                    && e.contains("non-finite")
                    && e.contains("element 7"),
                "{device}: {e}"
            );
        }
    }
    // 1e5 fits f32 and bf16 but not f16: refused only when the weights are to be stored as f16.
    let t: Vec<_> = base
        .iter()
        .map(|(n, s, d, v)| {
            let mut v = v.clone();
            if n == "wpe.weight" {
                v[3] = 1e5;
            }
            (n.clone(), s.clone(), *d, encode(&v, *d))
        })
        .collect();
    write_dir(&dir, &t);
    GptLm::load_to(&dir, &minigpt_model::parse_target("cpu", "f32").unwrap()).unwrap();
    GptLm::load_to(&dir, &minigpt_model::parse_target("cpu", "bf16").unwrap()).unwrap();
    let e = GptLm::load_to(&dir, &minigpt_model::parse_target("cpu", "f16").unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("wpe.weight") && e.contains("f16's range"), "{e}");
    let mut t: Vec<_> = base
        .iter()
        .map(|(n, s, d, v)| (n.clone(), s.clone(), *d, encode(v, *d)))
        .collect();
    let (n, s, d, mut b) = t.iter().find(|x| x.0 == "ln_f.bias").unwrap().clone();
    b[0] ^= 1;
    t.push((format!("transformer.{n}"), s, d, b));
    write_dir(&dir, &t);
    assert!(load_err(&dir).contains("both ln_f.bias and transformer.ln_f.bias"));

    // An architecture minigpt does not implement.
    let mut cfg: HashMap<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("config.json")).unwrap())
            .unwrap();
    cfg.insert("activation_function".into(), "relu".into());
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string(&cfg).unwrap(),
    )
    .unwrap();
    assert!(load_err(&dir).contains("gelu_new"));
}
