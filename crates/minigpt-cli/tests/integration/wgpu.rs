//! The `wgpu` device end to end — `generate`, `score` and `run` — on the tiny GPT-2 fixture,
//! against the `cpu` device (itself held to the Hugging Face reference in
//! `minigpt-model/tests/integration/parity.rs`).
//!
//! Needs a GPU adapter: a real GPU, or Mesa's software Vulkan driver lavapipe
//! (`apt-get install mesa-vulkan-drivers`), which `.ci/run` installs before it sets
//! `MINIGPT_REQUIRE_WGPU=1`, so that in CI a missing adapter fails these tests. Elsewhere, on a
//! machine without any Vulkan driver, they say so on stderr and pass.

use std::process::Output;

use crate::util::{command, root};

fn fixture() -> String {
    root()
        .join("tests/fixtures/tiny-gpt2")
        .display()
        .to_string()
}

fn minigpt(args: &[&str]) -> Output {
    command(args)
        // Fewer autotune trials: the fixture is tiny, and lavapipe is slow to compile kernels.
        .env("CUBECL_AUTOTUNE_LEVEL", "minimal")
        .output()
        .expect("the binary runs")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// False (with a note) when this machine has no Vulkan driver and CI did not ask for wgpu.
fn wgpu_here() -> bool {
    if std::env::var_os("MINIGPT_REQUIRE_WGPU").is_some() {
        return true;
    }
    let icds = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"];
    let found = icds
        .iter()
        .any(|d| std::fs::read_dir(d).is_ok_and(|mut entries| entries.next().is_some()));
    if !found {
        eprintln!(
            "no Vulkan driver here: the wgpu tests are skipped (install mesa-vulkan-drivers, or \
             set MINIGPT_REQUIRE_WGPU=1 to make a missing adapter fail)"
        );
    }
    found
}

#[test]
fn wgpu_generates_scores_and_runs_a_sweep_like_cpu() {
    if !wgpu_here() {
        return;
    }
    let model = fixture();
    // generate: greedy tokens equal the cpu device's.
    let generate = |device: &str| {
        ok(minigpt(&[
            "generate",
            "--model",
            &model,
            "--device",
            device,
            "--prompt",
            "The quick brown fox",
            "--greedy",
            "--max-new-tokens",
            "24",
            "--seed",
            "1",
        ]))
    };
    let (on_gpu, on_cpu) = (generate("wgpu"), generate("cpu"));
    assert!(!on_gpu.trim().is_empty());
    assert_eq!(on_gpu, on_cpu, "greedy text differs between wgpu and cpu");

    // score: log-probabilities within 1e-4 of the cpu device's.
    let score = |device: &str| -> serde_json::Value {
        let text = "It was the best of times, it was the worst of times, it was the age of wisdom";
        serde_json::from_str(&ok(minigpt(&[
            "score", "--model", &model, "--device", device, "--text", text, "--json",
        ])))
        .unwrap()
    };
    let (g, c) = (score("wgpu"), score("cpu"));
    assert_eq!(g["tokens"], c["tokens"]);
    let (g, c) = (
        g["logprobs"].as_array().unwrap(),
        c["logprobs"].as_array().unwrap(),
    );
    assert!(g.len() > 10);
    for (i, (a, b)) in g.iter().zip(c).enumerate() {
        let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
        assert!((a - b).abs() <= 1e-4, "token {i}: wgpu {a} vs cpu {b}");
    }

    // run: a small sweep (greedy and beam search) writes the same texts on both devices.
    let guard = crate::util::temp_dir("wgpu");
    let d = guard.path().to_path_buf();
    let mut texts = vec![];
    for device in ["wgpu", "cpu"] {
        let cfg = d.join(format!("{device}.toml"));
        std::fs::write(
            &cfg,
            format!(
                r#"[experiment]
name = "w"
seed = 1
samples = 1
max_new_tokens = 8
batch_size = 2
[model]
path = "{model}"
device = "{device}"
[prompts]
items = ["Hello there", "Once upon a time", "The answer is"]
[sweep]
temperatures = [1.0]
strategies = ["greedy", "beam_4"]
strategies_dir = "{}"
"#,
                root().join("configs/decode").display()
            ),
        )
        .unwrap();
        let out = d.join(device);
        ok(minigpt(&[
            "run",
            "--config",
            &cfg.display().to_string(),
            "--out",
            &out.display().to_string(),
        ]));
        let rows = minigpt_eval::RunDir::new(&out).read_generations().unwrap();
        assert_eq!(rows.len(), 6);
        texts.push(rows.into_iter().map(|r| r.text).collect::<Vec<_>>());
    }
    assert_eq!(
        texts[0], texts[1],
        "sweep texts differ between wgpu and cpu"
    );
}

/// `--device wgpu` names its adapter once on stderr, and warns when it is a CPU software
/// rasteriser (lavapipe in CI); `--require-gpu` then refuses to run, with one line and no
/// output. On a real GPU the same flag lets the run through.
#[test]
fn wgpu_names_its_adapter_and_require_gpu_refuses_a_software_one() {
    if !wgpu_here() {
        return;
    }
    let model = fixture();
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "generate",
            "--model",
            model.as_str(),
            "--device",
            "wgpu",
            "--prompt",
            "The quick brown fox",
            "--greedy",
            "--max-new-tokens",
            "2",
        ];
        a.extend_from_slice(extra);
        minigpt(&a)
    };
    let plain = args(&[]);
    let stderr = String::from_utf8_lossy(&plain.stderr).to_string();
    let text = ok(plain);
    let named: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("wgpu adapter: ") || l.starts_with("warning: --device wgpu"))
        .collect();
    assert_eq!(named.len(), 1, "the adapter is named once: {stderr}");
    let software = named[0].contains("a CPU software rasteriser, not a GPU");
    let strict = args(&["--require-gpu"]);
    let strict_err = String::from_utf8_lossy(&strict.stderr).to_string();
    if software {
        eprintln!("adapter (software): {}", named[0]);
        assert_eq!(strict.status.code(), Some(2), "{strict_err}");
        assert!(strict.stdout.is_empty(), "no text on refusal");
        let lines: Vec<&str> = strict_err
            .lines()
            // (Mesa's EGL adds `error: XDG_RUNTIME_DIR ...` lines of its own.)
            .filter(|l| l.starts_with("error:") && !l.contains("XDG_RUNTIME_DIR"))
            .collect();
        assert_eq!(lines.len(), 1, "{strict_err}");
        assert!(
            lines[0].contains("--require-gpu") && lines[0].contains("software rasteriser"),
            "{strict_err}"
        );
    } else {
        eprintln!("adapter (GPU): {}", named[0]);
        assert_eq!(
            ok(strict),
            text,
            "--require-gpu on a GPU runs as without it"
        );
    }
}
