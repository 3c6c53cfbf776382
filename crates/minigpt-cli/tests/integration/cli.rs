//! End-to-end tests of the `minigpt` binary on the tiny random GPT-2 fixture.

use std::path::PathBuf;

use crate::util::{command, fixtures, json, minigpt, minigpt_ok, temp_dir};

fn model() -> String {
    fixtures().join("tiny-gpt2").display().to_string()
}

fn reference() -> serde_json::Value {
    let t = std::fs::read_to_string(fixtures().join("reference/tiny-gpt2.json")).unwrap();
    serde_json::from_str(&t).unwrap()
}

/// Exit code 2 and exactly one line on stderr that contains every `needle`.
fn assert_usage_error(args: &[&str], needles: &[&str]) {
    let out = minigpt(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err:?} lacks {n:?}");
    }
    assert!(out.stdout.is_empty(), "{args:?} printed output");
}

#[test]
fn greedy_json_matches_hugging_face() {
    let m = model();
    let out = minigpt(&[
        "generate",
        "--model",
        &m,
        "--prompt",
        "Machine learning is",
        "--greedy",
        "--max-new-tokens",
        "30",
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(v["tokens"], reference()["greedy_tokens"]);
    assert_eq!(v["prompt"], "Machine learning is");
    assert_eq!(v["finish_reason"], "length");
    for key in ["text", "seed", "seconds"] {
        assert!(v.get(key).is_some(), "{key}");
    }
}

/// The first run packs the weights and keeps them in `MINIGPT_CACHE_DIR/packed`; the next
/// maps them from there and writes the same tokens; `MINIGPT_PACK_CACHE=0` keeps nothing; a
/// cache folder that cannot be made costs one line on stderr, not the run.
#[test]
fn packed_weights_are_kept_between_runs_and_change_nothing() {
    let m = model();
    let args = [
        "generate",
        "--model",
        &m,
        "--prompt",
        "Machine learning is",
        "--greedy",
        "--max-new-tokens",
        "30",
        "--json",
    ];
    let tmp = temp_dir("pack-cache");
    let run = |cache: &std::path::Path, env: &[(&str, &str)]| {
        let mut c = command(&args);
        c.env("MINIGPT_CACHE_DIR", cache);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let packed = |cache: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(cache.join("packed"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into())
                    .collect()
            })
            .unwrap_or_default()
    };
    let want = &reference()["greedy_tokens"];
    let cache = tmp.path().join("cache");
    for round in ["packs and stores", "maps the packed file"] {
        let out = run(&cache, &[]);
        assert_eq!(&json(&out)["tokens"], want, "{round}");
        assert!(
            out.stderr.is_empty(),
            "{round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let files = packed(&cache);
        assert!(
            files.len() == 1 && files[0].ends_with("-f32.mgpk"),
            "{round}: {files:?}"
        );
    }
    let off = tmp.path().join("off");
    assert_eq!(
        &json(&run(&off, &[("MINIGPT_PACK_CACHE", "0")]))["tokens"],
        want
    );
    assert!(!off.exists(), "MINIGPT_PACK_CACHE=0 keeps nothing");

    let blocked = tmp.path().join("blocked");
    std::fs::write(&blocked, "a file, not a folder").unwrap();
    let out = run(&blocked, &[]);
    assert_eq!(&json(&out)["tokens"], want);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("could not keep the packed weights") && err.contains("MINIGPT_PACK_CACHE=0"),
        "{err}"
    );
}

#[test]
fn streamed_text_equals_json_text_and_seed_reproduces() {
    let m = model();
    let args = |json: bool| {
        let mut a = vec![
            "generate",
            "--model",
            &m,
            "--prompt",
            "Once upon a time",
            "--temperature",
            "0.9",
            "--top-k",
            "50",
            "--top-p",
            "0.95",
            "--seed",
            "11",
            "--max_new_tokens",
            "25",
        ];
        if json {
            a.push("--json");
        }
        minigpt(&a)
    };
    let a = json(&args(true));
    let b = json(&args(true));
    assert_eq!(a["tokens"], b["tokens"]);
    assert_eq!(a["tokens"].as_array().unwrap().len(), 25);
    assert_eq!(a["seed"], 11);
    let streamed = args(false);
    assert!(streamed.status.success());
    let text = String::from_utf8(streamed.stdout).unwrap();
    assert_eq!(
        text.strip_suffix('\n').unwrap(),
        a["text"].as_str().unwrap()
    );
    let other = json(&minigpt(&[
        "generate",
        "--model",
        &m,
        "--prompt",
        "Once upon a time",
        "--temperature",
        "0.9",
        "--top-k",
        "50",
        "--top-p",
        "0.95",
        "--seed",
        "12",
        "--max-new-tokens",
        "25",
        "--json",
    ]));
    assert_ne!(other["tokens"], a["tokens"]);
}

/// Past the context, `score` slides windows by half the context by default (the stride of
/// Hugging Face's perplexity guide: 512 for GPT-2's 1024), says so, and `--stride 1` is the
/// exact mode: every token with a full window, which changes the figures.
#[test]
fn score_slides_by_half_the_context_by_default_and_says_so() {
    let m = model();
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(20);
    let run = |extra: &[&str]| {
        let mut a = vec!["score", "--model", m.as_str(), "--text", text.as_str()];
        a.extend_from_slice(extra);
        minigpt(&a)
    };
    let default = json(&run(&["--json"]));
    assert!(default["tokens"].as_array().unwrap().len() > 3 * 64);
    assert_eq!(
        default["stride"], 32,
        "half of the fixture's n_positions = 64"
    );
    assert_eq!(default, json(&run(&["--json", "--stride", "32"])));
    let exact = json(&run(&["--json", "--stride", "1"]));
    assert_eq!(exact["stride"], 1);
    assert_ne!(exact["logprobs"], default["logprobs"]);
    let plain = String::from_utf8(run(&[]).stdout).unwrap();
    assert!(
        plain.contains(
            "windows of 64 tokens advancing 32 (--stride 1 gives every token a full window)"
        ),
        "{plain}"
    );
}

#[test]
fn score_json_matches_hugging_face() {
    let m = model();
    let r = reference();
    let text = r["score_text"].as_str().unwrap();
    let v = json(&minigpt(&[
        "score", "--model", &m, "--text", text, "--json",
    ]));
    assert_eq!(v["tokens"], r["score_ids"]);
    let got = v["logprobs"].as_array().unwrap();
    let want = r["score_logprobs"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    let mut nll = 0.0;
    for (g, w) in got.iter().zip(want) {
        let (g, w) = (g.as_f64().unwrap(), w.as_f64().unwrap());
        assert!((g - w).abs() <= 1e-4, "{g} vs {w}");
        nll -= w;
    }
    let ppl = (nll / want.len() as f64).exp();
    assert!((v["perplexity"].as_f64().unwrap() / ppl - 1.0).abs() < 1e-4);
    // Bits per byte: the bytes of every token after the first ("To" is the first token).
    let bytes = text.len() - "To".len();
    let bpb = nll / std::f64::consts::LN_2 / bytes as f64;
    assert!((v["bits_per_byte"].as_f64().unwrap() / bpb - 1.0).abs() < 1e-4);
}

#[test]
fn bad_inputs_exit_2_with_one_line() {
    let m = model();
    let gen_args = |extra: &[&str]| {
        let mut a = vec!["generate", "--model", m.as_str(), "--prompt", "Hi"];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>, needles: &[&str]| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_usage_error(&refs, needles);
    };
    run(
        gen_args(&["--temperature", "0"]),
        &["temperature", "--greedy"],
    );
    run(
        gen_args(&["--temperature", "NaN"]),
        &["temperature", "--greedy"],
    );
    run(gen_args(&["--temperature", "-1"]), &["temperature"]);
    run(gen_args(&["--top-p", "1.5"]), &["top-p", "(0, 1]"]);
    run(gen_args(&["--top-p", "0"]), &["top-p"]);
    run(gen_args(&["--top-k", "0"]), &["top-k"]);
    run(gen_args(&["--device", "tpu"]), &["tpu", "flex"]);
    // --require-gpu asks every model to run on a wgpu GPU: the cpu device is refused.
    run(
        gen_args(&["--require-gpu"]),
        &["--require-gpu", "runs on device cpu", "--device wgpu"],
    );
    let guard = temp_dir("require-gpu");
    let out = guard.path().join("run");
    assert_usage_error(
        &[
            "--require-gpu",
            "run",
            "--config",
            &crate::util::root()
                .join("configs/sweep.toml")
                .display()
                .to_string(),
            "--out",
            &out.display().to_string(),
        ],
        &["configs/sweep.toml: [model]: --require-gpu"],
    );
    assert!(!out.exists(), "a refused run writes nothing");
    // A report of a folder that holds no run.
    assert_usage_error(
        &["report", &guard.path().display().to_string()],
        &["is not a run folder", "minigpt run, merge or eval"],
    );
    assert!(!guard.path().join("report.html").exists());
    // A batch whose KV cache alone is terabytes: refused before anything is allocated.
    assert_usage_error(
        &[
            "bench",
            "--model",
            &m,
            "--prompt-len",
            "16",
            "--new-tokens",
            "16",
            "--batch",
            "100000000",
        ],
        &[
            "--batch 100000000 needs about",
            "is available",
            "smaller --batch",
        ],
    );
    // bench --strategy: a search, or nothing to sample, is refused before the model loads.
    assert_usage_error(
        &["bench", "--new-tokens", "4", "--strategy", "beam_4"],
        &["beam_4 is a search", "bench a sampling strategy"],
    );
    assert_usage_error(
        &["bench", "--new-tokens", "0", "--strategy", "top_p_0.9"],
        &["--strategy needs --new-tokens of at least 1"],
    );
    assert_usage_error(
        &["generate", "--model", &m, "--prompt", ""],
        &["prompt is empty"],
    );
    assert_usage_error(
        &["generate", "--model", "/no/such/dir", "--prompt", "Hi"],
        &["/no/such/dir", "does not exist"],
    );
    // "word" and " word" are one GPT-2 token each: 100 tokens.
    let long = format!("word{}", " word".repeat(99));
    assert_usage_error(
        &["generate", "--model", &m, "--prompt", &long, "--no-crop"],
        &["100 tokens", "at most 64"],
    );
    assert_usage_error(&["score", "--model", &m, "--text", "Hi"], &["at least two"]);
    assert_usage_error(
        &["score", "--model", &m, "--file", "/no/such/file.txt"],
        &["/no/such/file.txt"],
    );
}

#[test]
fn broken_model_dirs_exit_2() {
    let guard = crate::util::temp_dir("cli-broken");
    let dir = guard.path().to_path_buf();
    let src = fixtures().join("tiny-gpt2");
    let d = dir.display().to_string();
    let args = ["generate", "--model", d.as_str(), "--prompt", "Hi"];
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    assert_usage_error(&args, &["model.safetensors", "missing"]);

    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), &bytes[..1000]).unwrap();
    assert_usage_error(&args, &["model.safetensors", "truncated"]);

    // The right file under a config whose n_embd disagrees with it.
    std::fs::write(dir.join("model.safetensors"), &bytes).unwrap();
    let cfg = std::fs::read_to_string(src.join("config.json")).unwrap();
    let cfg = cfg.replace("\"n_embd\": 32", "\"n_embd\": 64");
    std::fs::write(dir.join("config.json"), cfg).unwrap();
    assert_usage_error(&args, &["wte.weight", "shape [50257, 32]", "[50257, 64]"]);

    std::fs::write(dir.join("config.json"), "{ not json").unwrap();
    assert_usage_error(&args, &["config.json"]);
}

#[test]
fn long_prompt_slides_by_default() {
    let m = model();
    let long = "word ".repeat(100);
    let v = json(&minigpt(&[
        "generate",
        "--model",
        &m,
        "--prompt",
        &long,
        "--greedy",
        "--max-new-tokens",
        "5",
        "--json",
    ]));
    assert_eq!(v["tokens"].as_array().unwrap().len(), 5);
}

fn configs() -> PathBuf {
    crate::util::root().join("configs/decode")
}

#[test]
fn strategy_files_and_flags_build_the_same_chain() {
    let m = model();
    let file = configs().join("top_p_0.9.toml").display().to_string();
    let base = [
        "generate",
        "--model",
        &m,
        "--prompt",
        "Once upon a time",
        "--seed",
        "3",
        "--max-new-tokens",
        "20",
        "--json",
    ];
    let mut a: Vec<&str> = base.to_vec();
    a.extend(["--strategy", &file, "--temperature", "0.8"]);
    let from_file = json(&minigpt(&a));
    let mut b: Vec<&str> = base.to_vec();
    b.extend(["--temperature", "0.8", "--top-p", "0.9"]);
    let from_flags = json(&minigpt(&b));
    assert_eq!(
        from_file["chain"],
        "logits -> temperature(0.8) -> top_p(0.9) -> multinomial"
    );
    assert_eq!(from_file["chain"], from_flags["chain"]);
    assert_eq!(from_file["tokens"], from_flags["tokens"]);
    // The built-in strategy of that name is the same chain.
    let mut c: Vec<&str> = base.to_vec();
    c.extend(["--strategy", "top_p_0.9", "--temperature", "0.8"]);
    let from_name = json(&minigpt(&c));
    assert_eq!(from_name["chain"], from_file["chain"]);
    assert_eq!(from_name["tokens"], from_file["tokens"]);
    let mut d: Vec<&str> = base.to_vec();
    d.extend(["--strategy", "top_p_0.99"]);
    assert_usage_error(
        &d,
        &[
            "--strategy top_p_0.99",
            "no built-in strategy",
            "top_p_0.95",
        ],
    );

    // Greedy with no repeated trigram never repeats a 3-gram of the continuation.
    let file = configs().join("no_repeat_3.toml").display().to_string();
    let v = json(&minigpt(&[
        "generate",
        "--model",
        &m,
        "--prompt",
        "Machine learning is",
        "--max-new-tokens",
        "40",
        "--strategy",
        &file,
        "--json",
    ]));
    let t: Vec<u64> = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    let mut grams: Vec<&[u64]> = t.windows(3).collect();
    let n = grams.len();
    grams.sort();
    grams.dedup();
    assert_eq!(grams.len(), n);
    // The plain greedy continuation of this prompt does repeat one (29262 three times).
    let greedy = &reference()["greedy_tokens"];
    assert_ne!(&v["tokens"], greedy);
}

#[test]
fn show_chain_and_strategies_listing() {
    let m = model();
    let out = minigpt(&[
        "generate",
        "--model",
        &m,
        "--prompt",
        "Hi",
        "--max-new-tokens",
        "2",
        "--seed",
        "1",
        "--repetition-penalty",
        "1.3",
        "--top-k",
        "40",
        "--min-p",
        "0.05",
        "--show-chain",
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "logits -> repetition_penalty(1.3) -> top_k(40) -> min_p(0.05) -> multinomial"
        ),
        "{err}"
    );
    let out = minigpt(&["strategies", "--configs", &configs().display().to_string()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "top_p",
        "mirostat_v2",
        "tau = float > 0",
        "default 5.0",
        "typical_0.95",
        "logits -> min_p(0.05) -> multinomial",
        // Every plugin's tie rule and reference are listed.
        "ties: every token tied with the crossing token's distance is kept (as transformers)",
        "tested against: transformers TopPLogitsWarper",
        "tested against: llama.cpp llama_sampler_dry_apply",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    // Against the shipped model (the default), every shipped file is valid; a file whose beams
    // outnumber the vocabulary of the model named is marked invalid.
    let shipped = minigpt(&["strategies", "--configs", &configs().display().to_string()]);
    let text = String::from_utf8_lossy(&shipped.stdout);
    assert!(
        text.contains("checked against minigpt-shakespeare"),
        "{text}"
    );
    assert!(!text.contains("invalid"), "{text}");
    let guard = crate::util::temp_dir("cli-list");
    std::fs::write(
        guard.path().join("wide_beam.toml"),
        "[search]\nname = \"beam_search\"\nnum_beams = 100\n",
    )
    .unwrap();
    let dir = guard.path().display().to_string();
    let small = crate::util::root().join("tests/fixtures/tiny-char-gelu");
    let out = minigpt(&[
        "strategies",
        "--configs",
        &dir,
        "--model",
        &small.display().to_string(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("wide_beam") && text.contains("invalid") && text.contains("num_beams = 100"),
        "{text}"
    );
}

#[test]
fn bad_strategy_use_exits_2() {
    let m = model();
    let guard = crate::util::temp_dir("cli-strategy");
    let dir = guard.path().to_path_buf();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[processors]]\nname = \"top_p\"\np = 1.5\n[selector]\nname = \"multinomial\"\n",
    )
    .unwrap();
    let b = bad.display().to_string();
    assert_usage_error(
        &[
            "generate",
            "--model",
            &m,
            "--prompt",
            "Hi",
            "--strategy",
            &b,
        ],
        &["bad.toml", "processors[0] (top_p)", "(0, 1]"],
    );
    let good = configs().join("top_k_40.toml").display().to_string();
    assert_usage_error(
        &[
            "generate",
            "--model",
            &m,
            "--prompt",
            "Hi",
            "--strategy",
            &good,
            "--top-k",
            "5",
        ],
        &["--top-k", "--strategy"],
    );
    assert_usage_error(
        &[
            "generate",
            "--model",
            &m,
            "--prompt",
            "Hi",
            "--strategy",
            "/no/such.toml",
        ],
        &["/no/such.toml", "cannot read"],
    );
    assert_usage_error(
        &["generate", "--model", &m, "--prompt", "Hi", "--min-p", "2"],
        &["--min-p", "[0, 1]"],
    );
    // An empty stop string; stop strings and --no-crop with a search, which ignores them.
    assert_usage_error(
        &["generate", "--model", &m, "--prompt", "Hi", "--stop", ""],
        &["--stop \"\""],
    );
    let beam = configs().join("beam_4.toml").display().to_string();
    for extra in [&["--stop", "x"][..], &["--no-crop"][..]] {
        let mut args = vec![
            "generate",
            "--model",
            &m,
            "--prompt",
            "Hi",
            "--strategy",
            &beam,
        ];
        args.extend(extra);
        assert_usage_error(&args, &[extra[0], "beam_4 (a search)"]);
    }
    // Settings that do not fit the model's 50257 tokens, refused before decoding (100000 beams
    // took 16 GB in a minute).
    for (name, text, needles) in [
        (
            "beams.toml",
            "[search]\nname = \"beam_search\"\nnum_beams = 100000\n",
            [
                "beams: search (beam_search)",
                "num_beams = 100000",
                "at most 50257",
            ],
        ),
        (
            "contrastive.toml",
            "[search]\nname = \"contrastive_search\"\ntop_k = 50258\npenalty_alpha = 0.6\n",
            [
                "contrastive: search (contrastive_search)",
                "top_k = 50258",
                "at most 50257",
            ],
        ),
        (
            "bias.toml",
            "[[processors]]\nname = \"logit_bias\"\n[processors.bias]\n\"60000\" = 2.0\n[selector]\nname = \"greedy\"\n",
            ["bias: logit_bias", "token id 60000", "0..50256"],
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        assert_usage_error(
            &[
                "generate",
                "--model",
                &m,
                "--prompt",
                "Hi",
                "--strategy",
                &path.display().to_string(),
            ],
            &needles,
        );
    }
}

/// A tokenizer with fewer ids than the model (a padded vocabulary): generation never picks an
/// id without text. At temperature 5 a quarter of the probability sits on the 10 ids past
/// the 30-character vocabulary, so 200 tokens would hit them without the mask.
#[test]
fn ids_the_tokenizer_lacks_are_never_generated() {
    let guard = crate::util::temp_dir("cli-padded");
    let dir = guard.path().to_path_buf();
    let src = crate::util::root().join("tests/fixtures/tiny-char-gelu");
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let mut vocab: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("char_vocab.json")).unwrap())
            .unwrap();
    vocab["chars"].as_array_mut().unwrap().truncate(30);
    std::fs::write(dir.join("char_vocab.json"), vocab.to_string()).unwrap();
    let v = json(&minigpt(&[
        "generate",
        "--model",
        &dir.display().to_string(),
        "--prompt",
        "to be",
        "--temperature",
        "5",
        "--max-new-tokens",
        "200",
        "--seed",
        "3",
        "--json",
    ]));
    let ids: Vec<u64> = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 200);
    assert!(ids.iter().all(|&t| t < 30), "{ids:?}");
    assert!(
        ids.iter().any(|&t| t >= 20),
        "a flat distribution reaches the high ids"
    );
}

/// Every shipped strategy file runs on the shipped model (`dry_0.8`'s default breakers include
/// characters its vocabulary lacks: they are skipped, not an error).
#[test]
fn every_shipped_strategy_runs_on_the_shipped_model() {
    let mut n = 0;
    for entry in std::fs::read_dir(configs()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let out = minigpt(&[
            "generate",
            "--prompt",
            "To be",
            "--strategy",
            &path.display().to_string(),
            "--max-new-tokens",
            "4",
            "--seed",
            "1",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {err}", path.display());
        n += 1;
    }
    assert!(n >= 17, "{n} strategy files");
}

#[test]
fn stop_string_ends_on_the_completing_token() {
    let m = model();
    let v = json(&minigpt(&[
        "generate",
        "--model",
        &m,
        "--prompt",
        "Machine learning is",
        "--greedy",
        "--max-new-tokens",
        "30",
        "--stop",
        " murderer",
        "--stop",
        "never produced",
        "--json",
    ]));
    let greedy = reference()["greedy_tokens"].as_array().unwrap().clone();
    // HF's greedy continuation: the 12th token (29262) is the first " murderer".
    assert_eq!(v["tokens"].as_array().unwrap()[..], greedy[..12]);
    assert_eq!(v["finish_reason"], "stop");
    assert!(v["text"].as_str().unwrap().ends_with(" murderer"));
}

#[test]
fn search_strategies_run_end_to_end() {
    let m = model();
    for (file, chain) in [
        (
            "beam_4.toml",
            "logits -> beam_search(num_beams=4, length_penalty=1, early_stopping=false)",
        ),
        (
            "contrastive_4_0.6.toml",
            "logits -> contrastive_search(top_k=4, penalty_alpha=0.6)",
        ),
    ] {
        let f = configs().join(file).display().to_string();
        let v = json(&minigpt(&[
            "generate",
            "--model",
            &m,
            "--prompt",
            "Machine learning is",
            "--max-new-tokens",
            "12",
            "--strategy",
            &f,
            "--json",
        ]));
        assert_eq!(v["chain"], chain);
        assert_eq!(v["tokens"].as_array().unwrap().len(), 12);
    }
}

/// Without `--prompt`: from a pipe, one JSON line per prompt line (a line the model cannot
/// take gets an error object); on a terminal (a pseudo-terminal from util-linux's `script`),
/// an interactive prompt whose commands change the chain between prompts.
#[test]
fn prompts_read_from_a_pipe_or_typed_at_a_terminal() {
    use std::io::Write;
    use std::process::Stdio;
    let one = |prompt: &str, extra: &[&str]| -> String {
        let mut a = vec!["generate", "--prompt", prompt, "--json"];
        a.extend_from_slice(extra);
        json(&crate::util::minigpt_ok(&a))["text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let sampling = [
        "--max-new-tokens",
        "12",
        "--temperature",
        "0.8",
        "--seed",
        "4",
    ];
    let mut child = command(&[&["generate"][..], &sampling[..]].concat())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"ROMEO:\n\nJULIET:\nnot <here>\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "the empty line is skipped");
    assert_eq!(lines[0]["text"], one("ROMEO:", &sampling));
    assert_eq!(lines[1]["text"], one("JULIET:", &sampling));
    assert_eq!(lines[1]["seed"], 4);
    assert!(
        lines[2]["error"].as_str().unwrap().contains('<'),
        "{}",
        lines[2]
    );

    // The terminal: greedy 20 tokens, then 5 after /set, a refused setting, /quit.
    let bin = env!("CARGO_BIN_EXE_minigpt");
    let mut child = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("{bin} generate --greedy --max-new-tokens 20"),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("util-linux's script runs");
    let mut stdin = child.stdin.take().unwrap();
    for line in [
        "ROMEO:",
        "/set max_new_tokens 5",
        "ROMEO:",
        "/set temperature -1",
        "/show",
        "/quit",
    ] {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let screen = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let long = one("ROMEO:", &["--greedy", "--max-new-tokens", "20"]);
    let short = one("ROMEO:", &["--greedy", "--max-new-tokens", "5"]);
    assert!(screen.contains("Type a prompt"), "{screen}");
    assert!(screen.contains(&format!("{long}\n[20 tokens")), "{screen}");
    assert!(screen.contains(&format!("{short}\n[5 tokens")), "{screen}");
    assert!(
        screen.contains("error: --temperature must be a finite number > 0"),
        "{screen}"
    );
    assert!(
        screen.contains("chain: logits -> greedy | max_new_tokens 5"),
        "{screen}"
    );
}

#[test]
fn bench_samples_through_a_strategy_and_times_a_prefill_alone() {
    // Sampling columns on the shipped model: every batch size reports its sample rate and
    // strategy; `--new-tokens 0` times the prefill alone (the full context) with no decode
    // figures.
    let o = minigpt_ok(&[
        "bench",
        "--prompt-len",
        "8",
        "--new-tokens",
        "6",
        "--batch",
        "1,3",
        "--repeats",
        "1",
        "--strategy",
        "top_p_0.9",
        "--temperature",
        "0.7",
        "--json",
    ]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (l, b) in lines.iter().zip([1, 3]) {
        assert_eq!(l["batch"], b);
        assert_eq!(l["strategy"], "top_p_0.9");
        assert!(l["sample_tokens_per_s"].as_f64().unwrap() > 0.0, "{l}");
    }
    let o = minigpt_ok(&[
        "bench",
        "--prompt-len",
        "128",
        "--new-tokens",
        "0",
        "--batch",
        "1",
        "--repeats",
        "1",
        "--json",
    ]);
    let l: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(l["prefill_tokens_per_s"].as_f64().unwrap() > 0.0);
    assert!(
        l["decode_tokens_per_s"].is_null() && l["sample_tokens_per_s"].is_null(),
        "{l}"
    );
}
