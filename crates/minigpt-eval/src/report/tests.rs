use super::*;
use crate::records::RecordKey;

const EVIL: &str = "</script><img src=x onerror=\"document.title='pwned'\"><!-- & \u{2028}";

fn row(
    model: &str,
    prompt: usize,
    strategy: &str,
    t: Option<f64>,
    k: usize,
    text: &str,
) -> GenerationRow {
    GenerationRow {
        model: model.into(),
        prompt_id: prompt,
        strategy: strategy.into(),
        temperature: t,
        sample: k,
        text: text.into(),
        n_tokens: text.chars().count(),
        finish_reason: "length".into(),
        rep_2: Some(10.0 * k as f64),
        mean_logprob: Some(-1.0),
        ..Default::default()
    }
}

/// A run folder with two prompts, a greedy and a sampled cell, human rows, token records (one
/// text ending in a loop) and a text full of markup.
fn folder(dir: &Path, name: &str) {
    let run = RunDir::new(dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut rows = vec![];
    for p in 0..2 {
        rows.push(row(
            "m",
            p,
            "greedy",
            None,
            0,
            "the cat the cat the cat the cat",
        ));
        for k in 0..3 {
            let text = if p == 1 && k == 2 {
                EVIL
            } else {
                "a plain text"
            };
            rows.push(row("m", p, "sampling", Some(0.8), k, text));
        }
    }
    run.write_generations(&rows).unwrap();
    run.write_human(&[
        row(HUMAN, 0, HUMAN, None, 0, "what a person wrote"),
        row(HUMAN, 1, HUMAN, None, 0, "more"),
    ])
    .unwrap();
    let records: Vec<TokenRecord> = rows
        .iter()
        .map(|r| {
            let texts: Vec<String> = r.text.chars().map(String::from).collect();
            // Character ids, so that "the cat the cat ..." ends in a loop of whole copies.
            let ids: Vec<u32> = r.text.chars().map(|c| c as u32).collect();
            TokenRecord {
                row: RecordKey::of(r),
                logprobs: (0..ids.len()).map(|i| -(i as f32) / 4.0).collect(),
                entropies: vec![1.25; ids.len()],
                sampled_logprobs: vec![],
                ids,
                texts,
            }
        })
        .collect();
    run.append_jsonl(crate::run_dir::TOKENS, &records).unwrap();
    run.write_summary(&rows).unwrap();
    run.write_info(&RunInfo {
        config: serde_json::json!({"experiment": {"name": name}}),
        finished: Some("2026-12-03T00:35:37Z".into()),
        grid: serde_json::json!({
            "model": "m", "model_device": "cpu", "model_dtype": "f32", "judge": null,
            "prompts": ["first prompt", "second </script> prompt"],
        }),
        meta: serde_json::json!({
            "command": "minigpt run --config x.toml", "started": "2026-12-03T00:35:10Z",
            "threads": 2, "device": "cpu", "git_commit": "abc", "minigpt_version": "0.1.0",
        }),
        rows_in_grid: rows.len(),
        rows_in_this_run: rows.len(),
        ..Default::default()
    })
    .unwrap();
}

/// The JSON document the page embeds.
fn embedded(html: &str) -> Value {
    let start = html
        .find(r#"<script type="application/json" id="data">"#)
        .unwrap();
    let body = &html[start..];
    let body = &body[body.find('>').unwrap() + 1..];
    serde_json::from_str(&body[..body.find("</script>").unwrap()]).unwrap()
}

#[test]
fn markup_in_texts_and_names_cannot_leave_its_script_element() {
    let tmp = tempfile::tempdir().unwrap();
    folder(tmp.path(), "{{DATA}} <b>bold</b>");
    let html = render(tmp.path()).unwrap();
    // Only the template's two scripts close, and no markup from the data is in the page.
    assert_eq!(html.matches("</script>").count(), 2);
    assert!(!html.contains("<img"), "an <img> reached the page");
    assert!(!html.contains("<!-- &"));
    assert!(!html.contains("<b>bold"));
    assert!(html.contains("<title>run: {{DATA}} &lt;b&gt;bold&lt;/b&gt;</title>"));
    // Read back, the JSON holds every text exactly.
    let data = embedded(&html);
    let texts = data["texts"].as_array().unwrap();
    assert!(texts.iter().any(|t| t["x"] == EVIL));
    assert_eq!(data["prompts"][1], "second </script> prompt");
    assert_eq!(data["title"], "run: {{DATA}} <b>bold</b>");
}

#[test]
fn the_page_holds_every_summary_line_text_and_token() {
    let tmp = tempfile::tempdir().unwrap();
    folder(tmp.path(), "r");
    let path = write_report(tmp.path()).unwrap();
    let data = embedded(&std::fs::read_to_string(path).unwrap());
    let summary = RunDir::new(tmp.path()).read_summary().unwrap();
    let cells = data["summary"].as_array().unwrap();
    assert_eq!(cells.len(), summary.len());
    assert_eq!(cells.len(), 3, "greedy, sampling and human");
    let metrics = data["metrics"].as_array().unwrap();
    let rep2 = metrics
        .iter()
        .position(|m| m["name"] == "pooled_rep_2")
        .unwrap();
    for (cell, line) in cells.iter().zip(&summary) {
        assert_eq!(cell["strategy"], line.row.strategy.as_str());
        assert_eq!(cell["values"][rep2].as_f64(), line.row.pooled_rep_2);
        assert_eq!(
            cell["lo"][rep2].as_f64(),
            line.interval("pooled_rep_2").map(|i| i.lo)
        );
        assert!(!metrics[rep2]["def"].as_str().unwrap().is_empty());
    }
    // 8 generated texts and 2 human ones, each generated one with its tokens in tenths.
    let texts = data["texts"].as_array().unwrap();
    assert_eq!(texts.len(), 10);
    let greedy = texts
        .iter()
        .find(|t| t["x"] == "the cat the cat the cat the cat")
        .unwrap();
    assert_eq!(greedy["tok"].as_array().unwrap().len(), 31);
    assert_eq!(
        greedy["lp"][3], -8,
        "-0.75 nats is -7.5 tenths, rounded away from zero"
    );
    assert_eq!(greedy["h"][0], 13, "1.25 nats is 12.5 tenths, rounded");
    // By Holtzman's check on the character ids, the text ends in 3 copies of " the cat".
    let lf = greedy["lf"].as_u64().unwrap() as usize;
    assert_eq!(lf, 31 - 3 * 8);
    let human: Vec<_> = texts
        .iter()
        .filter(|t| data["models"][t["m"].as_u64().unwrap() as usize] == HUMAN)
        .collect();
    assert_eq!(human.len(), 2);
    assert!(human.iter().all(|t| t.get("tok").is_none()));
    // Header: the wall time from the start and finish stamps, and the tokens generated.
    let header: Vec<(String, String)> = serde_json::from_value(data["header"].clone()).unwrap();
    let get = |k: &str| header.iter().find(|(l, _)| l == k).map(|(_, v)| v.clone());
    assert_eq!(get("wall time").as_deref(), Some("27 s"));
    assert_eq!(get("tokens"), Some(rows_tokens(tmp.path()).to_string()));
    assert!(data["plots"].as_array().unwrap().len() > 5);
}

fn rows_tokens(dir: &Path) -> usize {
    RunDir::new(dir)
        .read_generations()
        .unwrap()
        .iter()
        .map(|r| r.n_tokens)
        .sum()
}

#[test]
fn an_eval_folder_shows_both_models() {
    let tmp = tempfile::tempdir().unwrap();
    folder(&tmp.path().join("candidate"), "c");
    folder(&tmp.path().join("baseline"), "b");
    // The baseline's rows under another model name.
    let b = RunDir::new(tmp.path().join("baseline"));
    let mut rows = b.read_generations().unwrap();
    rows.iter_mut().for_each(|r| r.model = "gpt2".into());
    b.write_generations(&rows).unwrap();
    b.write_summary(&rows).unwrap();
    let mut info = b.read_info().unwrap();
    info.grid["model"] = "gpt2".into();
    b.write_info(&info).unwrap();
    assert!(is_eval(tmp.path()));
    let data = embedded(&render(tmp.path()).unwrap());
    assert_eq!(data["kind"], "eval");
    assert_eq!(data["title"], "eval: m against gpt2");
    let models: Vec<String> = serde_json::from_value(data["models"].clone()).unwrap();
    assert_eq!(
        models,
        ["m", "human (m tokens)", "gpt2", "human (gpt2 tokens)"]
    );
    assert_eq!(data["summary"].as_array().unwrap().len(), 6);
    assert_eq!(data["sides"][1][1], "gpt2");
}
