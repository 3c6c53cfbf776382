//! `minigpt run` / `minigpt merge` end to end on a small character-level fixture model
//! (`tests/fixtures/tiny-char-gelu`, random weights: fast, and every text is different).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use minigpt_eval::metrics;
use minigpt_eval::row::{GenerationRow, format_num as opt};
use minigpt_eval::run_dir::header;

use crate::util::{command, minigpt, minigpt_ok as run_ok, root, temp_dir as dir};

/// A sweep config over the fixture: `prompts` × (greedy + beam_4 + two sampling strategies at
/// each temperature) × `samples`.
fn config(d: &Path, samples: usize, max_new: usize, batch: usize, temps: &str) -> PathBuf {
    let model = root().join("tests/fixtures/tiny-char-gelu");
    let decode = root().join("configs/decode");
    let text = format!(
        r#"
[experiment]
name = "t"
seed = 42
samples = {samples}
max_new_tokens = {max_new}
batch_size = {batch}
[model]
path = "{}"
[prompts]
items = ["TORIA:", "to be, or not", "it is the east, and"]
[sweep]
temperatures = [{temps}]
strategies = ["greedy", "top_p_0.9", "min_p_0.05", "beam_4"]
strategies_dir = "{}"
"#,
        model.display(),
        decode.display()
    );
    let p = d.join("sweep.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The records of a CSV file as strings, the header first (read with the `csv` crate, not
/// minigpt's own reader).
fn records(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.ends_with('\n'),
        "{} ends in a torn record",
        path.display()
    );
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect()
}

/// The position of a column of `generations.csv`.
fn col(name: &str) -> usize {
    header::<GenerationRow>()
        .iter()
        .position(|c| c == name)
        .unwrap()
}

/// Every column but the two timings.
fn deterministic(rows: &[Vec<String>]) -> Vec<Vec<String>> {
    let (s, t) = (col("seconds"), col("tokens_per_s"));
    rows.iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .filter(|&(i, _)| i != s && i != t)
                .map(|(_, v)| v.clone())
                .collect()
        })
        .collect()
}

#[test]
fn csv_has_the_documented_columns_one_row_per_cell_and_sample_and_recomputable_metrics() {
    let guard = dir("e2e");
    let d = guard.path().to_path_buf();
    let cfg = config(&d, 2, 12, 3, "0.7, 1.2");
    let out = d.join("out");
    run_ok(&[
        "run",
        "--config",
        &cfg.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    let recs = records(&out.join("generations.csv"));
    assert_eq!(
        recs[0],
        [
            "model",
            "prompt_id",
            "strategy",
            "temperature",
            "sample",
            "seed",
            "prompt",
            "text",
            "n_tokens",
            "finish_reason",
            "rep_2",
            "rep_3",
            "rep_4",
            "diversity",
            "distinct_1",
            "distinct_2",
            "repetition_rate",
            "holtzman_repeats",
            "mean_logprob",
            "perplexity",
            "mean_entropy",
            "mean_sampling_entropy",
            "judge_perplexity",
            "coherence",
            "seconds",
            "tokens_per_s"
        ]
    );
    let rows = &recs[1..];
    let [model, prompt_id, strategy, temperature, sample] =
        ["model", "prompt_id", "strategy", "temperature", "sample"].map(col);
    // 3 prompts × (greedy + beam_4 + 2 sampling strategies × 2 temperatures) × 2 samples.
    assert_eq!(rows.len(), 3 * (1 + 1 + 2 * 2) * 2);
    let mut keys = HashSet::new();
    for r in rows {
        assert!(keys.insert((
            r[prompt_id].clone(),
            r[strategy].clone(),
            r[temperature].clone(),
            r[sample].clone()
        )));
        let deterministic = r[strategy] == "greedy" || r[strategy] == "beam_4";
        assert_eq!(r[temperature].is_empty(), deterministic, "{r:?}");
        assert_eq!(r[model], "tiny-char-gelu");
        assert_eq!(r[col("n_tokens")], "12");
        assert_eq!(r[col("finish_reason")], "length");
        // The metrics are what the text gives.
        let (prompt, text) = (&r[col("prompt")], &r[col("text")]);
        assert_eq!(text.chars().count(), 12);
        let w = metrics::words(text);
        let pw = metrics::words(prompt);
        for n in 2..=4 {
            assert_eq!(r[col(&format!("rep_{n}"))], opt(metrics::rep_n(&w, n)));
        }
        assert_eq!(r[col("diversity")], opt(metrics::diversity(&w)));
        assert_eq!(r[col("distinct_1")], opt(metrics::distinct_n(&w, 1)));
        assert_eq!(r[col("distinct_2")], opt(metrics::distinct_n(&w, 2)));
        assert_eq!(
            r[col("repetition_rate")],
            opt(metrics::repetition_rate(&pw, &w, 32))
        );
        // A character-level model: one token per character, so the check over characters is
        // the check over token ids (equal ids are equal characters).
        let chars: Vec<u32> = text.chars().map(u32::from).collect();
        let repeats = metrics::holtzman_repetition(&chars, None).is_some();
        assert_eq!(r[col("holtzman_repeats")], if repeats { "1" } else { "0" });
        let lp: f64 = r[col("mean_logprob")].parse().unwrap();
        let ppl: f64 = r[col("perplexity")].parse().unwrap();
        assert!((ppl - (-lp).exp()).abs() <= 1e-9 * ppl);
        if r[strategy] == "greedy" {
            assert_eq!(r[col("mean_sampling_entropy")], "0");
        }
    }
    // Greedy is the same for every sample; sampling differs across samples.
    let text_of = |s: &str, t: &str, k: &str| {
        rows.iter()
            .find(|r| {
                r[prompt_id] == "0" && r[strategy] == s && r[temperature] == t && r[sample] == k
            })
            .unwrap()[col("text")]
        .clone()
    };
    assert_eq!(text_of("greedy", "", "0"), text_of("greedy", "", "1"));
    assert_ne!(
        text_of("top_p_0.9", "1.2", "0"),
        text_of("top_p_0.9", "1.2", "1")
    );

    // mean_logprob equals `minigpt score` of the same continuation after the same prompt.
    let model = root()
        .join("tests/fixtures/tiny-char-gelu")
        .display()
        .to_string();
    for r in rows.iter().step_by(7) {
        let out = minigpt(&[
            "score",
            "--model",
            &model,
            "--prompt",
            &r[col("prompt")],
            "--text",
            &r[col("text")],
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let lps: Vec<f64> = v["logprobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(lps.len(), 12);
        let score_mean = lps.iter().sum::<f64>() / 12.0;
        let row_mean: f64 = r[col("mean_logprob")].parse().unwrap();
        assert!(
            (score_mean - row_mean).abs() <= 1e-4,
            "{score_mean} vs {row_mean}"
        );
    }

    // The summary: one row per cell; plots and run.json beside it.
    let summary = records(&out.join("summary.csv"));
    assert_eq!(summary.len(), 1 + 6);
    assert_eq!(&summary[1][..4], ["tiny-char-gelu", "greedy", "", "6"]);
    // The metrics, then a 95 % bootstrap interval for each but the timings and MAUVE (a
    // distribution-level figure: resampled duplicates would form their own k-means clusters).
    let mut want = header::<minigpt_eval::SummaryRow>();
    let metrics: Vec<&str> = minigpt_eval::SummaryRow::default()
        .metrics()
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !n.contains("seconds") && !n.contains("tokens_per_s") && *n != "mauve")
        .collect();
    for m in &metrics {
        want.push(format!("{m}_lo"));
        want.push(format!("{m}_hi"));
    }
    assert_eq!(summary[0], want);
    for r in &summary[1..] {
        for m in &metrics {
            let at = |c: &str| summary[0].iter().position(|h| h == c).unwrap();
            let (lo, hi) = (&r[at(&format!("{m}_lo"))], &r[at(&format!("{m}_hi"))]);
            assert_eq!(lo.is_empty(), hi.is_empty(), "{m}");
            if !lo.is_empty() {
                let (lo, hi): (f64, f64) = (lo.parse().unwrap(), hi.parse().unwrap());
                assert!(lo <= hi, "{m}: [{lo}, {hi}]");
            }
        }
    }
    assert!(out.join("plots/pooled_rep_2.svg").is_file());
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["rows_in_grid"], 36);
    assert!(run["finished"].is_string());

    // Running it again generates nothing and changes no row.
    let before = records(&out.join("generations.csv"));
    let again = minigpt(&[
        "run",
        "--config",
        &cfg.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains("0 generated now in 0 model batches, 36 already there")
    );
    assert_eq!(records(&out.join("generations.csv")), before);
}

#[test]
fn killed_runs_resume_to_the_uninterrupted_result() {
    let guard = dir("kill");
    let d = guard.path().to_path_buf();
    let cfg = config(&d, 6, 24, 4, "0.6, 1.0, 1.4");
    let cfg_s = cfg.display().to_string();
    let whole = d.join("whole");
    run_ok(&[
        "run",
        "--config",
        &cfg_s,
        "--out",
        &whole.display().to_string(),
    ]);
    let want = records(&whole.join("generations.csv"));
    // 3 prompts × (1 + 1 + 2 × 3) cells × 6 samples.
    assert_eq!(want.len(), 1 + 144);

    let parts = d.join("parts");
    let gens = parts.join("generations.csv");
    let mut kills = 0;
    for at in [1, 40, 90] {
        let mut child = command(&[
            "run",
            "--config",
            &cfg_s,
            "--out",
            &parts.display().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let t0 = Instant::now();
        loop {
            let n = std::fs::read_to_string(&gens)
                .map(|t| t.matches('\n').count())
                .unwrap_or(0);
            if n > at || t0.elapsed() > Duration::from_secs(60) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if child.try_wait().unwrap().is_none() {
            kills += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    assert!(kills >= 2, "the run finished before it could be killed");
    // A write cut short: a torn record at the end of the file.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&gens)
        .unwrap();
    std::io::Write::write_all(&mut f, b"tiny-char-gelu,2,top_p_0.9,1,5,123,\"it is the").unwrap();
    drop(f);
    // And a torn per-token record.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(parts.join("tokens.jsonl"))
        .unwrap();
    std::io::Write::write_all(
        &mut f,
        b"{\"model\":\"tiny-char-gelu\",\"prompt_id\":2,\"str",
    )
    .unwrap();
    drop(f);
    run_ok(&[
        "run",
        "--config",
        &cfg_s,
        "--out",
        &parts.display().to_string(),
    ]);
    let got = records(&gens);
    assert_eq!(deterministic(&got), deterministic(&want));
    // The key columns: model, prompt_id, strategy, temperature, sample.
    let keys: HashSet<_> = got[1..]
        .iter()
        .map(|r| {
            ["model", "prompt_id", "strategy", "temperature", "sample"].map(|c| r[col(c)].clone())
        })
        .collect();
    assert_eq!(keys.len(), got.len() - 1, "duplicate rows");
    // The per-token records: one per row, in the CSV's order, the same as the uninterrupted
    // run's; no MAUVE features without human references.
    let tokens = std::fs::read_to_string(parts.join("tokens.jsonl")).unwrap();
    assert_eq!(tokens.lines().count(), got.len() - 1);
    assert_eq!(
        tokens,
        std::fs::read_to_string(whole.join("tokens.jsonl")).unwrap()
    );
    assert!(!parts.join("features.jsonl").exists());
}

/// Two runs on one folder: the second exits 2 naming the first's pid while the first goes on;
/// the first finishes with every row once.
#[test]
fn a_folder_in_use_is_refused_naming_its_holder() {
    let guard = dir("locked");
    let d = guard.path().to_path_buf();
    // 3 prompts × 8 cells × 20 samples of 64 tokens, one row per batch: long enough to overlap.
    let cfg = config(&d, 20, 64, 1, "0.6, 1.0, 1.4");
    let cfg_s = cfg.display().to_string();
    let out = d.join("out");
    let out_s = out.display().to_string();
    let mut first = command(&["run", "--config", &cfg_s, "--out", &out_s])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !out.join("generations.csv").exists() && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let second = minigpt(&["run", "--config", &cfg_s, "--out", &out_s]);
    let running = first.try_wait().unwrap().is_none();
    let err = String::from_utf8_lossy(&second.stderr);
    if running {
        assert_eq!(second.status.code(), Some(2), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(&format!("(pid {})", first.id())), "{err}");
    }
    assert!(first.wait().unwrap().success());
    assert!(running, "the first run finished before the second started");
    let rows = records(&out.join("generations.csv"));
    let keys: HashSet<_> = rows[1..]
        .iter()
        .map(|r| {
            ["model", "prompt_id", "strategy", "temperature", "sample"].map(|c| r[col(c)].clone())
        })
        .collect();
    assert_eq!((keys.len(), rows.len()), (480, 481));
    // Free again: a resume finds everything done.
    let again = minigpt(&["run", "--config", &cfg_s, "--out", &out_s]);
    assert!(again.status.success());
}

#[test]
fn texts_are_the_same_across_batch_sizes_and_shards() {
    let guard = dir("shards");
    let d = guard.path().to_path_buf();
    let text_col = |rows: &[Vec<String>]| -> Vec<String> {
        rows.iter().map(|r| r[col("text")].clone()).collect()
    };
    let base = config(&d, 3, 16, 4, "0.8, 1.3");
    let whole = d.join("whole");
    run_ok(&[
        "run",
        "--config",
        &base.display().to_string(),
        "--out",
        &whole.display().to_string(),
    ]);
    let want = records(&whole.join("generations.csv"));
    for batch in [1, 7] {
        let sub = d.join(format!("b{batch}"));
        std::fs::create_dir_all(&sub).unwrap();
        let cfg = config(&sub, 3, 16, batch, "0.8, 1.3");
        let out = sub.join("out");
        let o = minigpt(&[
            "run",
            "--config",
            &cfg.display().to_string(),
            "--out",
            &out.display().to_string(),
        ]);
        assert!(o.status.success());
        // The native engine's rows do not depend on their batch, so the runner packs rows of
        // every sampling cell together: 5 cells × 3 prompts × 3 samples = 45 rows in batches
        // of 7 → 7 batches, plus beam search's 9 rows per cell in 2 (per-cell batches would
        // need 6 × 2 = 12).
        let err = String::from_utf8_lossy(&o.stderr);
        if batch == 7 {
            assert!(err.contains("in 9 model batches"), "{err}");
        }
        assert_eq!(
            text_col(&records(&out.join("generations.csv"))),
            text_col(&want),
            "batch size {batch}"
        );
    }
    let mut parts = vec![];
    for k in 1..=3 {
        let out = d.join(format!("shard{k}"));
        run_ok(&[
            "run",
            "--config",
            &base.display().to_string(),
            "--out",
            &out.display().to_string(),
            "--shard",
            &format!("{k}/3"),
        ]);
        parts.push(out.display().to_string());
    }
    let merged = d.join("merged");
    let mut args = vec!["merge", "--out"];
    let merged_s = merged.display().to_string();
    args.push(&merged_s);
    args.extend(parts.iter().map(String::as_str));
    run_ok(&args);
    let got = records(&merged.join("generations.csv"));
    assert_eq!(deterministic(&got), deterministic(&want));
    assert_eq!(
        records(&merged.join("summary.csv")).len(),
        records(&whole.join("summary.csv")).len()
    );
    // The merged folder's report holds every row, as the whole run's does.
    let texts = |dir: &Path| {
        let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
        html.matches("\"x\":").count()
    };
    assert_eq!(texts(&merged), got.len() - 1);
    assert_eq!(texts(&merged), texts(&whole));
    // Shards of a different config do not merge.
    let other = d.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let cfg = config(&other, 3, 16, 4, "0.8, 1.4");
    let o = other.join("out");
    run_ok(&[
        "run",
        "--config",
        &cfg.display().to_string(),
        "--out",
        &o.display().to_string(),
        "--shard",
        "1/3",
    ]);
    let bad = minigpt(&[
        "merge",
        "--out",
        &d.join("bad").display().to_string(),
        &parts[0],
        &o.display().to_string(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("sweep.temperatures"));
}

#[test]
fn changed_config_is_refused_unless_forced() {
    let guard = dir("changed");
    let d = guard.path().to_path_buf();
    let cfg = config(&d, 1, 8, 4, "0.8");
    let out = d.join("out").display().to_string();
    run_ok(&["run", "--config", &cfg.display().to_string(), "--out", &out]);
    let cfg = config(&d, 1, 8, 4, "0.8, 1.1");
    let cfg_s = cfg.display().to_string();
    let refused = minigpt(&["run", "--config", &cfg_s, "--out", &out]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("differs in: sweep.temperatures"), "{err}");
    // --force adds the new cells to the folder and keeps the old rows.
    let forced = minigpt(&["run", "--config", &cfg_s, "--out", &out, "--force"]);
    let msg = String::from_utf8_lossy(&forced.stderr);
    assert!(
        msg.contains("6 generated now in 2 model batches, 12 already there"),
        "{msg}"
    );

    // What the rows depend on beyond the config's names: the weights' dtype, and the model
    // folder's content (a folder of the same name, changed in place).
    let dtype = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[model]", "[model]\ndtype = \"f16\"");
    std::fs::write(&cfg, dtype).unwrap();
    let refused = minigpt(&["run", "--config", &cfg_s, "--out", &out]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("differs in: model_dtype"), "{err}");
    let copy = d.join("tiny-char-gelu");
    std::fs::create_dir_all(&copy).unwrap();
    for f in ["config.json", "model.safetensors", "char_vocab.json"] {
        std::fs::copy(
            root().join("tests/fixtures/tiny-char-gelu").join(f),
            copy.join(f),
        )
        .unwrap();
    }
    let moved = config(&d, 1, 8, 4, "0.8");
    let text = std::fs::read_to_string(&moved).unwrap().replace(
        &root()
            .join("tests/fixtures/tiny-char-gelu")
            .display()
            .to_string(),
        &copy.display().to_string(),
    );
    std::fs::write(&moved, text).unwrap();
    let out2 = d.join("out2").display().to_string();
    run_ok(&[
        "run",
        "--config",
        &moved.display().to_string(),
        "--out",
        &out2,
    ]);
    let cfg_text = std::fs::read_to_string(copy.join("config.json")).unwrap();
    std::fs::write(copy.join("config.json"), format!("{cfg_text}\n")).unwrap();
    let refused = minigpt(&[
        "run",
        "--config",
        &moved.display().to_string(),
        "--out",
        &out2,
    ]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("differs in: model_files_sha256"), "{err}");
}

#[test]
fn bad_configs_exit_2_naming_file_and_key_and_leave_no_folder() {
    let guard = dir("bad");
    let d = guard.path().to_path_buf();
    let good = std::fs::read_to_string(config(&d, 1, 8, 4, "0.8")).unwrap();
    let cases: Vec<(String, &str)> = vec![
        (
            good.replace("seed = 42", "seed = 42\nsede = 1"),
            "unknown field `sede`",
        ),
        (
            good.replace("\"min_p_0.05\"", "\"min_p_0.05\", \"no_such_strategy\""),
            "sweep.strategies[3] = \"no_such_strategy\"",
        ),
        (
            good.replace(
                "items = [\"TORIA:\", \"to be, or not\", \"it is the east, and\"]",
                "items = []",
            ),
            "prompt list is empty",
        ),
        (
            good.replace("temperatures = [0.8]", "temperatures = [0.8, 0]"),
            "sweep.temperatures",
        ),
        (
            good.replace("temperatures = [0.8]", "temperatures = [-1.0]"),
            "sweep.temperatures",
        ),
        (
            good.replace("[prompts]", "[prompts]\nfile = \"nope.txt\""),
            "one of `file`, `items` and `corpus`",
        ),
        (
            good.replace("seed = 42", "seed = 42\ncontext = \"wrap\""),
            "experiment.context must be \"slide\" or \"shift\"",
        ),
        (
            good.replace("seed = 42", "seed = 42\ncontext = \"shift\"")
                .replace("[model]", "[model]\ndevice = \"flex\""),
            "runs on model.device = \"cpu\" only",
        ),
        (
            good.replace("[prompts]", "[prompts]\ncount = 3"),
            "prompts.count applies to `corpus` prompts only",
        ),
        (
            good.replace("items = [\"TORIA:\", \"to be, or not\", \"it is the east, and\"]", "corpus = \"c.txt\"\ncount = 2\nprompt_chars = 4"),
            "prompts.continuation_chars is required",
        ),
        (
            good.replace(
                "items = [\"TORIA:\", \"to be, or not\", \"it is the east, and\"]",
                "corpus = \"no-such-corpus.txt\"\ncount = 2\nprompt_chars = 4\ncontinuation_chars = 4",
            ),
            "no-such-corpus.txt",
        ),
        (
            good.replace(
                "items = [\"TORIA:\", \"to be, or not\", \"it is the east, and\"]",
                "corpus = \"small.txt\"\ncount = 9\nprompt_chars = 4\ncontinuation_chars = 4",
            ),
            "room for only 1 of the 9 prompts",
        ),
        (
            good.replace("items = [\"TORIA:\", \"to be, or not\", \"it is the east, and\"]", "file = \"refs.jsonl\""),
            "line 2 has no \"reference\"",
        ),
        (
            good.replace("max_new_tokens = 8", "max_new_tokens = 0"),
            "experiment.max_new_tokens",
        ),
        (
            good.replace("tiny-char-gelu", "no-such-model"),
            "no-such-model",
        ),
        // A prompt character the model's vocabulary lacks: refused before the folder exists.
        (
            good.replace("it is the east, and", "it is the east, and €"),
            "prompt 2:",
        ),
        // A batch whose KV cache would not fit in memory.
        (
            good.replace("batch_size = 4", "batch_size = 1000000000"),
            "lower experiment.batch_size",
        ),
        // 10^12 samples: refused before the grid is allocated (it aborted on 216 TB).
        (
            good.replace("samples = 1", "samples = 1000000000000"),
            "more than the 10000000 rows one run holds",
        ),
    ];
    // A held-out tenth (9 characters) with room for one prompt and its continuation; a JSONL file whose
    // second line lacks its reference.
    std::fs::write(d.join("small.txt"), "ab cd ef\ngh ij kl\n".repeat(5)).unwrap();
    std::fs::write(
        d.join("refs.jsonl"),
        "{\"prompt\": \"to be\", \"reference\": \" or not\"}\n{\"prompt\": \"it is\"}\n",
    )
    .unwrap();
    let cfg = d.join("bad.toml");
    let out = d.join("out");
    for (text, needle) in cases {
        std::fs::write(&cfg, &text).unwrap();
        let o = minigpt(&[
            "run",
            "--config",
            &cfg.display().to_string(),
            "--out",
            &out.display().to_string(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{needle}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err:?} lacks {needle:?}");
        assert!(!out.exists(), "{needle}: an output folder was left behind");
    }
    let missing = minigpt(&["run", "--config", "/nonexistent/sweep.toml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/sweep.toml"));
    // An output path that cannot be a folder.
    std::fs::write(&cfg, &good).unwrap();
    let file = d.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let o = minigpt(&[
        "run",
        "--config",
        &cfg.display().to_string(),
        "--out",
        &file.join("sub").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("a-file"));
}

#[test]
fn ctrl_c_keeps_finished_rows_writes_the_summary_and_exits_130() {
    use std::io::{BufRead, BufReader};
    let guard = dir("sigint");
    let d = guard.path().to_path_buf();
    let cfg = config(&d, 8, 24, 2, "0.6, 1.0, 1.4");
    let out = d.join("out");
    let mut child = command(&[
        "run",
        "--config",
        &cfg.display().to_string(),
        "--out",
        &out.display().to_string(),
    ])
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Without a terminal, progress is a line per tenth of the grid: interrupt after the first.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains(" rows, "), "{first}");
    crate::util::ctrl_c(&child);
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert_eq!(child.wait().unwrap().code(), Some(130), "{rest:?}");
    let rows = records(&out.join("generations.csv")).len() - 1;
    assert!(rows > 0 && rows < 192, "{rows} rows");
    assert!(out.join("summary.csv").is_file());
    assert!(
        rest.iter().any(|l| l.starts_with("interrupted after")),
        "{rest:?}"
    );
    // The signal is acknowledged before the batch in flight ends.
    let ack = rest
        .iter()
        .position(|l| l.starts_with("stopping: finishing the work in flight"));
    let end = rest.iter().position(|l| l.starts_with("interrupted after"));
    assert!(ack.is_some() && ack < end, "{rest:?}");
}

/// Rows with no practical end (10^9 new tokens each): Ctrl-C stops the batch within a step,
/// writes none of it, and exits 130.
#[test]
fn ctrl_c_stops_a_batch_of_endless_rows_within_a_step() {
    let guard = dir("endless");
    let d = guard.path().to_path_buf();
    let cfg = config(&d, 1, 1_000_000_000, 4, "1.0");
    let out = d.join("out");
    let child = command(&[
        "run",
        "--config",
        &cfg.display().to_string(),
        "--out",
        &out.display().to_string(),
    ])
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let t0 = Instant::now();
    while !out.join("generations.csv").exists() && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    crate::util::ctrl_c(&child);
    let stopped = Instant::now();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "took {:?}",
        stopped.elapsed()
    );
    assert!(
        err.contains("stopping: finishing the work in flight"),
        "{err}"
    );
    assert!(err.contains("interrupted after 0 rows"), "{err}");
    assert_eq!(
        records(&out.join("generations.csv")).len(),
        1,
        "the header only"
    );
}

#[test]
fn eval_compares_a_candidate_with_a_judging_baseline() {
    let guard = dir("eval");
    let d = guard.path().to_path_buf();
    let base = root().join("tests/fixtures/tiny-gpt2");
    let cfg = |baseline: &Path| crate::util::tiny_eval_config(&d, baseline);
    let path = d.join("eval.toml");
    std::fs::write(&path, cfg(&base)).unwrap();
    let out = d.join("out");
    run_ok(&[
        "eval",
        "--config",
        &path.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    let cmp = records(&out.join("comparison.csv"));
    assert_eq!(
        &cmp[0][..5],
        [
            "strategy",
            "temperature",
            "candidate",
            "baseline",
            "max_new_chars"
        ]
    );
    assert_eq!(cmp.len(), 1 + 2);
    assert_eq!(
        &cmp[1][..5],
        ["greedy", "", "tiny-char-gelu", "tiny-gpt2", "24"]
    );
    let h = |name: &str| cmp[0].iter().position(|c| c == name).unwrap();
    for r in &cmp[1..] {
        let c: f64 = r[h("mean_judge_perplexity_candidate")].parse().unwrap();
        let b: f64 = r[h("mean_judge_perplexity_baseline")].parse().unwrap();
        let diff: f64 = r[h("mean_judge_perplexity_diff")].parse().unwrap();
        assert!((diff - (c - b)).abs() <= 1e-9 * c.abs().max(1.0));
        // Each side's bootstrap interval, as its own summary.csv has it, brackets its value.
        for (side, v) in [("candidate", c), ("baseline", b)] {
            let lo: f64 = r[h(&format!("mean_judge_perplexity_{side}_lo"))]
                .parse()
                .unwrap();
            let hi: f64 = r[h(&format!("mean_judge_perplexity_{side}_hi"))]
                .parse()
                .unwrap();
            assert!(lo <= v && v <= hi, "{side}: {v} not in [{lo}, {hi}]");
            let own = records(&out.join(side).join("summary.csv"));
            let at = |c: &str| own[0].iter().position(|x| x == c).unwrap();
            let line = own[1..]
                .iter()
                .find(|l| l[1] == r[0] && l[2] == r[1])
                .unwrap();
            assert_eq!(
                (opt(Some(lo)), opt(Some(hi))),
                (
                    line[at("mean_judge_perplexity_lo")].clone(),
                    line[at("mean_judge_perplexity_hi")].clone()
                )
            );
        }
    }
    // Every continuation of both models has a judge perplexity, and both write 24
    // characters (the character model in 24 tokens, GPT-2's tokenizer in fewer) unless the
    // end-of-text token came first.
    for side in ["candidate", "baseline"] {
        let rows = records(&out.join(side).join("generations.csv"));
        assert_eq!(rows.len(), 1 + 2 * 2 * 2);
        for r in &rows[1..] {
            let chars = r[col("text")].chars().count();
            match r[col("finish_reason")].as_str() {
                "length" => assert_eq!(chars, 24, "{side}: {r:?}"),
                _ => assert!(chars <= 24, "{side}: {r:?}"),
            }
        }
        if side == "baseline" {
            let tokens: Vec<usize> = rows[1..]
                .iter()
                .map(|r| r[col("n_tokens")].parse().unwrap())
                .collect();
            assert!(tokens.iter().any(|&t| t < 24), "{tokens:?}");
        }
        assert!(
            rows[1..]
                .iter()
                .all(|r| !r[col("judge_perplexity")].is_empty())
        );
        // Coherence is the judge's mean log-probability per token: −ln of its perplexity.
        for r in &rows[1..] {
            let ppl: f64 = r[col("judge_perplexity")].parse().unwrap();
            let coherence: f64 = r[col("coherence")].parse().unwrap();
            assert!((coherence + ppl.ln()).abs() <= 1e-12 * ppl.ln().abs().max(1.0));
        }
    }
    let bpb = records(&out.join("bits_per_byte.csv"));
    assert_eq!(bpb.len(), 3);
    let bits = bpb[0].iter().position(|c| c == "bits_per_byte").unwrap();
    assert!(
        bpb[1..]
            .iter()
            .all(|r| r[bits].parse::<f64>().unwrap() > 0.0)
    );

    // No baseline directory: exit 2, saying what a GPT-2 directory holds and that a repo id
    // does too.
    std::fs::write(&path, cfg(&d.join("no-gpt2-here"))).unwrap();
    let o = minigpt(&[
        "eval",
        "--config",
        &path.display().to_string(),
        "--out",
        &d.join("o2").display().to_string(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1);
    for needle in [
        "baseline.path",
        "config.json",
        "model.safetensors",
        "repo id",
    ] {
        assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    }
    assert!(!d.join("o2").exists());

    // A shifted context on a baseline that cannot shift (a Burn device): refused before any
    // folder exists, naming the eval's own key.
    let shifted = cfg(&base).replace(
        "max_new_chars = 24",
        "max_new_chars = 24\ncontext = \"shift\"",
    );
    let shifted = shifted.replace(
        &format!("[baseline]\npath = \"{}\"", base.display()),
        &format!(
            "[baseline]\npath = \"{}\"\ndevice = \"ndarray\"",
            base.display()
        ),
    );
    assert!(shifted.contains("device = \"ndarray\""));
    std::fs::write(&path, shifted).unwrap();
    let o = minigpt(&[
        "eval",
        "--config",
        &path.display().to_string(),
        "--out",
        &d.join("o3").display().to_string(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("baseline.device"), "{err}");
    assert!(!d.join("o3").exists());

    // A held-out text too short to score: refused before either sweep runs.
    std::fs::write(&path, cfg(&base).replace("heldout.txt", "short.txt")).unwrap();
    std::fs::write(d.join("short.txt"), "to").unwrap();
    let o = minigpt(&[
        "eval",
        "--config",
        &path.display().to_string(),
        "--out",
        &d.join("o4").display().to_string(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("heldout.file is too short"), "{err}");
    assert!(!d.join("o4").exists());
    // No [heldout]: no bits_per_byte.csv, and the closing line does not claim one.
    let no_heldout = cfg(&base);
    let no_heldout = &no_heldout[..no_heldout.find("[heldout]").unwrap()];
    std::fs::write(&path, no_heldout).unwrap();
    let o5 = d.join("o5");
    let o = minigpt(&[
        "eval",
        "--config",
        &path.display().to_string(),
        "--out",
        &o5.display().to_string(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(o5.join("comparison.csv").is_file());
    assert!(!o5.join("bits_per_byte.csv").exists());
    assert!(!err.contains("bits_per_byte"), "{err}");
}

/// A config outside the repository names the standard strategies: they resolve to the
/// built-in ones (the same rows as the files), a file next to the config comes first, and an
/// unknown name exits 2 listing the built-in names.
#[test]
fn strategy_names_resolve_to_a_file_next_to_the_config_then_to_the_builtin() {
    let guard = dir("builtin-strategies");
    let d = guard.path().to_path_buf();
    let shipped = config(&d, 1, 8, 4, "0.8");
    let text = std::fs::read_to_string(&shipped).unwrap();
    // The same config without strategies_dir: names look in <config dir>/decode, which is
    // not there.
    let strategies_dir = text
        .lines()
        .find(|l| l.starts_with("strategies_dir"))
        .unwrap()
        .to_string();
    let alone = d.join("alone.toml");
    std::fs::write(&alone, text.replace(&strategies_dir, "")).unwrap();
    let (a, b) = (d.join("a"), d.join("b"));
    for (cfg, out) in [(&shipped, &a), (&alone, &b)] {
        let (cfg, out) = (cfg.display().to_string(), out.display().to_string());
        run_ok(&["run", "--config", &cfg, "--out", &out]);
    }
    let rows = |p: &Path| deterministic(&records(&p.join("generations.csv")));
    assert_eq!(rows(&a), rows(&b));
    assert_eq!(rows(&a).len(), 1 + 3 * 4);

    // A file of the same name next to the config wins (its chain is in run.json).
    std::fs::create_dir_all(d.join("decode")).unwrap();
    std::fs::write(
        d.join("decode/top_p_0.9.toml"),
        "description = \"local\"\n[[processors]]\nname = \"top_p\"\np = 0.5\n[selector]\nname = \"multinomial\"\n",
    )
    .unwrap();
    let c = d.join("c").display().to_string();
    run_ok(&["run", "--config", &alone.display().to_string(), "--out", &c]);
    let run_json = std::fs::read_to_string(d.join("c/run.json")).unwrap();
    assert!(run_json.contains("top_p(0.5)"), "{run_json}");
    assert!(!run_json.contains("top_p(0.9)"), "{run_json}");

    let bad = d.join("bad.toml");
    std::fs::write(&bad, text.replace("\"greedy\"", "\"greedyy\"")).unwrap();
    let out = minigpt(&[
        "run",
        "--config",
        &bad.display().to_string(),
        "--out",
        &d.join("never").display().to_string(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("sweep.strategies[0] = \"greedyy\"") && err.contains("built-in: beam_4, "),
        "{err}"
    );
    assert!(!d.join("never").exists());
}

/// Prompts sampled from the held-out end of a corpus carry their true continuations: the run
/// writes `human.csv` (the continuations, their text metrics, Holtzman's check over their
/// tokens, and the model's log-probabilities, equal to `minigpt score`'s), `summary.csv` ends
/// with the `human` row, the plots draw it, and a sharded run merges to the same rows.
#[test]
fn corpus_prompts_give_a_human_row_scored_like_generations() {
    let guard = dir("human");
    let d = guard.path().to_path_buf();
    // 40 lines, each opening with its own two-letter tag; the held-out last half holds lines
    // 20..40.
    let mut corpus = String::new();
    let words = [
        "to", "be", "or", "not", "it", "is", "the", "east", "and", "sun",
    ];
    for i in 0..40 {
        let line: Vec<&str> = (0..7)
            .map(|j| words[(i * 7 + j * 3) % words.len()])
            .collect();
        let tag: String = [b'a' + (i / 26) as u8, b'a' + (i % 26) as u8]
            .map(char::from)
            .iter()
            .collect();
        corpus.push_str(&format!("{tag} {}\n", line.join(" ")));
    }
    std::fs::write(d.join("corpus.txt"), &corpus).unwrap();
    let model = root().join("tests/fixtures/tiny-char-gelu");
    let text = format!(
        r#"
[experiment]
name = "h"
seed = 5
samples = 2
max_new_chars = 12
batch_size = 4
[model]
path = "{}"
[prompts]
corpus = "corpus.txt"
heldout_fraction = 0.5
count = 4
prompt_chars = 10
continuation_chars = 16
[sweep]
temperatures = [1.0]
strategies = ["greedy", "top_p_0.9"]
"#,
        model.display()
    );
    std::fs::write(d.join("sweep.toml"), text).unwrap();
    let cfg = d.join("sweep.toml").display().to_string();
    let out = d.join("out");
    run_ok(&["run", "--config", &cfg, "--out", &out.display().to_string()]);

    let human = records(&out.join("human.csv"));
    assert_eq!(human[0], header::<GenerationRow>());
    let rows = &human[1..];
    assert_eq!(rows.len(), 4);
    let held_from = corpus.len() / 2;
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(
            (r[col("model")].as_str(), r[col("strategy")].as_str()),
            ("human", "human")
        );
        assert_eq!(r[col("prompt_id")], i.to_string());
        let (prompt, text) = (&r[col("prompt")], &r[col("text")]);
        assert_eq!(prompt.chars().count(), 10);
        assert_eq!(text.chars().count(), 12, "cut to max_new_chars");
        let at = corpus
            .find(&format!("{prompt}{text}"))
            .expect("from the corpus");
        assert!(
            at >= held_from && (at == 0 || corpus.as_bytes()[at - 1] == b'\n'),
            "{prompt:?}{text:?} at {at} (held-out from {held_from})"
        );
        // The text metrics of the words; Holtzman's check over its characters (one token each).
        let w = metrics::words(text);
        assert_eq!(r[col("rep_2")], opt(metrics::rep_n(&w, 2)));
        assert_eq!(r[col("distinct_1")], opt(metrics::distinct_n(&w, 1)));
        let chars: Vec<u32> = text.chars().map(u32::from).collect();
        let repeats = metrics::holtzman_repetition(&chars, None).is_some();
        assert_eq!(r[col("holtzman_repeats")], if repeats { "1" } else { "0" });
        assert_eq!(r[col("n_tokens")], "12");
        assert_eq!(r[col("mean_sampling_entropy")], "");
        // The model's log-probabilities: what `minigpt score` computes for the same text.
        let scored = crate::util::json(&run_ok(&[
            "score",
            "--model",
            &model.display().to_string(),
            "--prompt",
            prompt,
            "--text",
            text,
            "--json",
        ]));
        let lps: Vec<f64> = scored["logprobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let want = lps.iter().sum::<f64>() / lps.len() as f64;
        let got: f64 = r[col("mean_logprob")].parse().unwrap();
        assert!(
            (got - want).abs() < 1e-5,
            "row {i}: {got} vs score's {want}"
        );
    }
    let summary = records(&out.join("summary.csv"));
    let last = summary.last().unwrap();
    assert_eq!((last[0].as_str(), last[1].as_str()), ("human", "human"));
    assert_eq!(summary.len(), 1 + 2 + 1, "greedy, top_p at 1.0, human");
    // MAUVE of each generated cell against the human continuations, from the named model.
    let at = |c: &str| summary[0].iter().position(|h| h == c).unwrap();
    for r in &summary[1..3] {
        let m: f64 = r[at("mauve")].parse().unwrap();
        assert!((0.0..=1.0).contains(&m), "{m}");
        assert_eq!(r[at("mauve_features")], "tiny-char-gelu");
    }
    assert_eq!(
        (
            last[at("mauve")].as_str(),
            last[at("mauve_features")].as_str()
        ),
        ("", "")
    );

    // Per-token records, one per generated and human row, keyed like generations.csv.
    let gens = records(&out.join("generations.csv"));
    let jsonl = |dir: &Path, name: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join(name))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let tokens = jsonl(&out, "tokens.jsonl");
    assert_eq!(tokens.len(), gens.len() - 1 + rows.len());
    for (t, r) in tokens.iter().zip(gens[1..].iter().chain(rows)) {
        let key = |c: &str| t[c].to_string().trim_matches('"').to_string();
        for c in ["model", "prompt_id", "strategy", "sample"] {
            assert_eq!(key(c), r[col(c)], "{c}");
        }
        assert_eq!(opt(t["temperature"].as_f64()), r[col("temperature")]);
        let f = |c: &str| -> Vec<f64> {
            t[c].as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        let (lps, sampled) = (f("logprobs"), f("sampled_logprobs"));
        let n: usize = r[col("n_tokens")].parse().unwrap();
        assert_eq!(
            (
                t["ids"].as_array().unwrap().len(),
                lps.len(),
                f("entropies").len()
            ),
            (n, n, n)
        );
        // One character per token: the token texts spell the row's text.
        let texts: Vec<&str> = t["texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(texts.concat(), r[col("text")]);
        let mean: f64 = r[col("mean_logprob")].parse().unwrap();
        assert!((lps.iter().sum::<f64>() / n as f64 - mean).abs() < 1e-5);
        match r[col("strategy")].as_str() {
            // A choice with no draw; human text is read, not sampled.
            "greedy" => assert!(sampled.iter().all(|&s| s == 0.0)),
            "human" => assert!(sampled.is_empty()),
            // Top-p at temperature 1 renormalises the nucleus: no kept token loses probability.
            _ => {
                assert_eq!(sampled.len(), n);
                assert!(
                    lps.iter()
                        .zip(&sampled)
                        .all(|(l, s)| s + 1e-6 >= *l && *s <= 0.0)
                );
                assert!(lps.iter().zip(&sampled).any(|(l, s)| s - l > 1e-3));
            }
        }
    }
    // MAUVE's features: one vector of the model's width (32) per row, human rows included.
    let features = jsonl(&out, "features.jsonl");
    assert_eq!(features.len(), tokens.len());
    for f in &features {
        assert_eq!(f["features"].as_array().unwrap().len(), 32);
        assert_eq!(f["feature_model"], "tiny-char-gelu");
    }

    // With a judge, MAUVE's features come from it, and it is named.
    let judged = d.join("judged.toml");
    let judge = root().join("tests/fixtures/tiny-gpt2");
    std::fs::write(
        &judged,
        format!(
            "{}\n[judge]\npath = \"{}\"\n",
            std::fs::read_to_string(d.join("sweep.toml")).unwrap(),
            judge.display()
        ),
    )
    .unwrap();
    let out_j = d.join("out-judged");
    run_ok(&[
        "run",
        "--config",
        &judged.display().to_string(),
        "--out",
        &out_j.display().to_string(),
    ]);
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_j.join("run.json")).unwrap()).unwrap();
    let judge_name = run["grid"]["judge"].as_str().unwrap().to_string();
    assert_ne!(judge_name, "tiny-char-gelu");
    let summary_j = records(&out_j.join("summary.csv"));
    for r in &summary_j[1..3] {
        assert_eq!(r[at("mauve_features")], judge_name);
        assert!(!r[at("mean_coherence")].is_empty());
    }
    let features_j = jsonl(&out_j, "features.jsonl");
    assert_eq!(features_j.len(), features.len());
    for (fj, f) in features_j.iter().zip(&features) {
        assert_eq!(fj["feature_model"].as_str(), Some(judge_name.as_str()));
        assert_ne!(fj["features"], f["features"]);
    }

    // A run killed midway (rows, records and features cut at different points, torn last
    // lines, no human rows or summary yet) resumes to the same files.
    let cut = d.join("cut");
    std::fs::create_dir_all(&cut).unwrap();
    let keep_lines = |name: &str, n: usize, torn: &str| {
        let text = std::fs::read_to_string(out.join(name)).unwrap();
        let mut kept: String = text.lines().take(n).map(|l| format!("{l}\n")).collect();
        kept.push_str(torn);
        std::fs::write(cut.join(name), kept).unwrap();
    };
    std::fs::copy(out.join("run.json"), cut.join("run.json")).unwrap();
    keep_lines("generations.csv", 1 + 5, "tiny-char-gelu,3,top_p_0.9,1,");
    keep_lines("tokens.jsonl", 9, "{\"model\":\"tiny");
    keep_lines("features.jsonl", 3, "{\"model\":");
    run_ok(&["run", "--config", &cfg, "--out", &cut.display().to_string()]);
    assert_eq!(
        deterministic(&records(&cut.join("generations.csv"))),
        deterministic(&gens)
    );
    for name in ["tokens.jsonl", "features.jsonl", "human.csv"] {
        assert_eq!(
            std::fs::read_to_string(cut.join(name)).unwrap(),
            std::fs::read_to_string(out.join(name)).unwrap(),
            "{name}"
        );
    }
    let plot = std::fs::read_to_string(out.join("plots/pooled_distinct_1.svg")).unwrap();
    assert!(plot.contains(">human</text>"));

    // Two shards merged: the same human rows and summary.
    let parts: Vec<String> = (1..=2)
        .map(|k| {
            let p = d.join(format!("part{k}"));
            run_ok(&[
                "run",
                "--config",
                &cfg,
                "--shard",
                &format!("{k}/2"),
                "--out",
                &p.display().to_string(),
            ]);
            p.display().to_string()
        })
        .collect();
    let merged = d.join("merged");
    let mut args = vec!["merge", "--out"];
    let merged_s = merged.display().to_string();
    args.push(&merged_s);
    args.extend(parts.iter().map(String::as_str));
    run_ok(&args);
    assert_eq!(records(&merged.join("human.csv")), human);
    for name in ["tokens.jsonl", "features.jsonl"] {
        assert_eq!(
            std::fs::read_to_string(merged.join(name)).unwrap(),
            std::fs::read_to_string(out.join(name)).unwrap(),
            "{name}"
        );
    }
    // Summary rows without the timing columns.
    let untimed = |rows: Vec<Vec<String>>| -> Vec<Vec<String>> {
        let keep: Vec<bool> = rows[0]
            .iter()
            .map(|h| h != "mean_seconds" && h != "mean_tokens_per_s")
            .collect();
        rows.iter()
            .map(|r| {
                r.iter()
                    .zip(&keep)
                    .filter(|(_, k)| **k)
                    .map(|(v, _)| v.clone())
                    .collect()
            })
            .collect()
    };
    assert_eq!(
        untimed(records(&merged.join("summary.csv"))),
        untimed(summary.clone())
    );
    assert_eq!(untimed(records(&cut.join("summary.csv"))), untimed(summary));
}

#[test]
fn batch_size_auto_fills_batches_on_the_native_engine_and_stays_at_one_on_burn() {
    // No `batch_size`: "auto". On the native engine (batch-invariant) the 3 prompts × 1 sample
    // of 4 strategies at one temperature fit in the cap of 64; on Burn's `flex` (rows padded
    // to their batch) auto stays at one row and says why. `run.json` keeps the choice.
    let guard = dir("auto-batch");
    let d = guard.path().to_path_buf();
    let cfg = config(&d, 1, 6, 4, "1.0");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("batch_size = 4\n"));
    for (device, rows, said) in [
        ("cpu", 64, "64 rows per model batch (the cap of 64)"),
        (
            "flex",
            1,
            "1 row per model batch (this device's batched rows depend",
        ),
    ] {
        let sub = d.join(device);
        std::fs::create_dir_all(&sub).unwrap();
        let p = sub.join("sweep.toml");
        let body = text
            .replace("batch_size = 4\n", "")
            .replace("[model]\n", &format!("[model]\ndevice = \"{device}\"\n"));
        std::fs::write(&p, body).unwrap();
        let out = sub.join("out");
        let o = minigpt(&[
            "run",
            "--config",
            &p.display().to_string(),
            "--out",
            &out.display().to_string(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{device}: {err}");
        assert!(
            err.contains(&format!("experiment.batch_size = \"auto\": {said}")),
            "{device}: {err}"
        );
        let info: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
        assert_eq!(info["batch_size"], rows, "{device}");
        assert_eq!(
            info["config"]["experiment"]["batch_size"], "auto",
            "{device}"
        );
        // 3 prompts × (greedy + 2 samplers + beam) = 12 rows.
        assert_eq!(records(&out.join("generations.csv")).len(), 13, "{device}");
    }
}
