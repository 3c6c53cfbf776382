//! `report.html` in a real browser: the shipped sweep's report opened in headless Chromium
//! (Debian's `chromium`) by `scripts/browser_check.py`, which reads, sorts, switches and picks
//! as a reader would; what it saw is held here to the run folder's own files.
//!
//! `.ci/run` installs chromium and sets `MINIGPT_REQUIRE_BROWSER=1`, so that in CI a browser
//! that cannot start fails these tests. Elsewhere, without chromium, they say so and check only
//! the file.

use std::path::Path;

use minigpt_eval::RunDir;
use serde_json::Value;

use crate::util::{browser_here, fixtures, minigpt_ok, root, script_json, temp_dir};

/// What the browser saw, from `scripts/browser_check.py`.
fn open(report: &Path, shot: &Path, prompt: usize) -> Value {
    let prompt = prompt.to_string();
    script_json(
        "python3",
        "browser_check.py",
        &[report.as_os_str(), shot.as_os_str(), prompt.as_ref()],
    )
}

#[test]
fn the_shipped_sweeps_report_works_in_chromium() {
    let guard = temp_dir("report");
    let out = guard.path().join("run");
    let config = root().join("configs/sweep.toml");
    minigpt_ok(&[
        "run",
        "--config",
        &config.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    let report = out.join("report.html");
    let size = std::fs::metadata(&report).unwrap().len();
    eprintln!("report.html: {size} bytes");
    assert!(size <= 5_000_000, "{size} bytes");
    if !browser_here() {
        return;
    }
    let shot = guard.path().join("report.png");
    let seen = open(&report, &shot, 2);
    eprintln!(
        "ready {} ms after navigation starts (page clock); {} ms from navigate to ready (wall); screenshot {}",
        seen["ready_ms"], seen["load_to_ready_wall_ms"], seen["screenshot"]
    );
    assert_eq!(seen["console_errors"], serde_json::json!([]));
    assert_eq!(seen["network_requests"], serde_json::json!([]));
    // The table: one row per summary line; every metric column explained on hover.
    let run = RunDir::new(&out);
    let summary = run.read_summary().unwrap();
    assert_eq!(seen["summary_rows"], summary.len());
    let columns = seen["summary_columns"].as_array().unwrap();
    let titles = seen["header_titles"].as_array().unwrap();
    assert!(columns.iter().any(|c| c == "pooled_rep_4") && columns.iter().any(|c| c == "mauve"));
    assert!(titles.iter().all(|t| !t.as_str().unwrap().is_empty()));
    // Sorting by a column orders it both ways (blank cells last).
    let nums = |k: &str| -> Vec<f64> {
        seen["sorted"][k]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str().unwrap().parse().ok())
            .collect()
    };
    let (up, down) = (nums("up"), nums("down"));
    assert!(
        up.len() > 10 && up.windows(2).all(|w| w[0] <= w[1]),
        "{up:?}"
    );
    assert!(down.windows(2).all(|w| w[0] >= w[1]), "{down:?}");
    // The plot selector: one entry per chart, and switching changes the chart drawn.
    let plots = std::fs::read_dir(out.join("plots")).unwrap().count();
    assert_eq!(seen["metrics"].as_array().unwrap().len(), plots);
    assert!(seen["plot_before"].is_string() && seen["plot_after"].is_string());
    assert_ne!(seen["plot_before"], seen["plot_after"]);
    // The browser, prompt 2: the human continuation first, then the generated texts, a page
    // of 24 at most, shaded token by token.
    let rows: Vec<_> = run
        .read_generations()
        .unwrap()
        .into_iter()
        .filter(|r| r.prompt_id == 2)
        .collect();
    let human = run.read_human().unwrap();
    let human = human.iter().find(|r| r.prompt_id == 2).unwrap();
    let b = &seen["browser"];
    let n = rows.len() + 1;
    assert_eq!(b["cards"], n.min(24));
    assert_eq!(b["human_cards"], 1);
    assert!(
        b["count"].as_str().unwrap().contains(&format!("of {n} ")),
        "{}",
        b["count"]
    );
    assert_eq!(b["texts"][0], human.text.as_str());
    assert_eq!(
        b["prompt_text"],
        run.read_info().unwrap().grid["prompts"][2]
    );
    // Every text shown is a generated text of this prompt, and the shading covers its tokens.
    for t in b["texts"].as_array().unwrap().iter().skip(1) {
        assert!(rows.iter().any(|r| r.text == t.as_str().unwrap()), "{t}");
    }
    assert!(
        b["shaded_tokens"].as_u64().unwrap() >= 23 * 8,
        "{}",
        b["shaded_tokens"]
    );
    let title = b["token_title"].as_str().unwrap();
    assert!(
        title.starts_with("p = ") && title.contains("entropy"),
        "{title}"
    );
    assert!(seen["paged"].as_str().unwrap().contains("page 2 of"));
    assert_eq!(seen["searched"], 0);
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
}

#[test]
fn markup_in_prompts_and_texts_renders_as_text_in_chromium() {
    let guard = temp_dir("report-markup");
    let d = guard.path();
    let evil_prompt = "</script><img src=x onerror=\"document.body.dataset.pwned=1\"> & <b>";
    let evil_reference = "<script>document.body.dataset.pwned=1</script><!--";
    std::fs::write(
        d.join("prompts.jsonl"),
        format!(
            "{}\n",
            serde_json::json!({"prompt": evil_prompt, "reference": evil_reference})
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("sweep.toml"),
        format!(
            r#"[experiment]
name = "<img src=x onerror=alert(1)>"
seed = 1
samples = 2
max_new_tokens = 12
[model]
path = "{}"
[prompts]
file = "prompts.jsonl"
[sweep]
temperatures = [1.0]
strategies = ["greedy", "sampling"]
strategies_dir = "{}"
"#,
            fixtures().join("tiny-gpt2").display(),
            root().join("configs/decode").display()
        ),
    )
    .unwrap();
    let out = d.join("out");
    minigpt_ok(&[
        "run",
        "--config",
        &d.join("sweep.toml").display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!html.contains("<img") && !html.contains("<b>"));
    if !browser_here() {
        return;
    }
    let seen = open(&out.join("report.html"), &d.join("shot.png"), 0);
    assert_eq!(seen["pwned"], Value::Null, "markup in the data ran");
    assert_eq!(seen["console_errors"], serde_json::json!([]));
    let b = &seen["browser"];
    assert_eq!(b["prompt_text"], evil_prompt);
    assert_eq!(b["texts"][0], evil_reference);
    assert_eq!(
        b["cards"],
        1 + 2 + 2,
        "the reference and two samples of each strategy"
    );
}

/// An eval's report: both models in the table, the plot and the texts, the chosen metric side
/// by side, and the bits per byte of both.
#[test]
fn an_eval_report_shows_both_models_side_by_side_in_chromium() {
    let guard = temp_dir("report-eval");
    let d = guard.path();
    std::fs::write(
        d.join("eval.toml"),
        crate::util::tiny_eval_config(d, &fixtures().join("tiny-gpt2")),
    )
    .unwrap();
    let out = d.join("out");
    minigpt_ok(&[
        "eval",
        "--config",
        &d.join("eval.toml").display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    let report = out.join("report.html");
    assert!(report.exists());
    if !browser_here() {
        return;
    }
    let seen = open(&report, &d.join("shot.png"), 0);
    assert_eq!(seen["console_errors"], serde_json::json!([]));
    // Each model's cells and each one's human row.
    let lines = |side: &str| RunDir::new(out.join(side)).read_summary().unwrap().len();
    assert_eq!(seen["summary_rows"], lines("candidate") + lines("baseline"));
    assert_eq!(seen["summary_columns"][0], "model");
    // The chosen metric side by side: a header and one line per candidate cell (greedy, top-p).
    assert_eq!(seen["compare_rows"], 1 + 2);
    assert_eq!(seen["bits_per_byte_rows"], 1 + 2);
    // Prompt 0 (no references here): 2 strategies × 2 samples of each model, both named.
    let b = &seen["browser"];
    assert_eq!(b["human_cards"], 0);
    assert_eq!(b["cards"], 2 * 2 * 2);
    let models = ["tiny-char-gelu", "tiny-gpt2"];
    for m in models {
        assert_eq!(
            b["titles"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t.as_str().unwrap().starts_with(m))
                .count(),
            4,
            "{m}"
        );
    }
    assert_eq!(b["prompt_text"], "TORIA:");
}
