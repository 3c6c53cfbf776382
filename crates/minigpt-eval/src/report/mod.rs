//! `report.html`: one self-contained page per run or eval folder, to look at rather than read.
//! The folder's data (header, summary with intervals, every plot, every text with its tokens'
//! log-probabilities and entropies) is embedded as one JSON document; the page's own script
//! (`report.js`, inline, no network) draws the sortable table, the metric selector and the
//! generation browser from it. Texts only ever reach the page as `textContent`, and the JSON is
//! escaped so that nothing in it can close its `<script>` element.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::compare::BITS_PER_BYTE;
use crate::error::RunError;
use crate::metric_info::definition;
use crate::metrics::holtzman_repetition;
use crate::records::{Keyed, TokenRecord};
use crate::row::{GenerationRow, HUMAN, RowKey};
use crate::run_dir::{RunDir, RunInfo, atomic_write};
use crate::summary::SummaryLine;

/// The report's file name, in the run or eval folder.
pub const REPORT: &str = "report.html";

const PAGE: &str = include_str!("page.html");
const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

/// Everything the page shows.
#[derive(Debug, Serialize)]
struct Data {
    /// `run` or `eval`.
    kind: &'static str,
    title: String,
    /// Label and value pairs, in display order.
    header: Vec<(String, String)>,
    /// The resolved config(s), pretty JSON.
    config: String,
    /// Summary columns: name and one-line definition.
    metrics: Vec<Metric>,
    summary: Vec<Cell>,
    /// Each plotted metric's chart (SVG drawn by [`crate::plot`]).
    plots: Vec<Plot>,
    prompts: Vec<String>,
    /// Models and strategies of the texts (indexed by [`Text::m`] and [`Text::s`]).
    models: Vec<String>,
    strategies: Vec<String>,
    texts: Vec<Text>,
    /// `bits_per_byte.csv` of an eval, as its lines.
    bits_per_byte: Vec<Vec<String>>,
    /// Each side's label and model: `run`, or `candidate` and `baseline`.
    sides: Vec<(String, String)>,
}

#[derive(Debug, Serialize)]
struct Metric {
    name: String,
    def: &'static str,
}

/// One summary line.
#[derive(Debug, Serialize)]
struct Cell {
    model: String,
    strategy: String,
    temperature: Option<f64>,
    rows: usize,
    /// Per metric of [`Data::metrics`], in order: value, interval low, interval high.
    values: Vec<Option<f64>>,
    lo: Vec<Option<f64>>,
    hi: Vec<Option<f64>>,
}

#[derive(Debug, Serialize)]
struct Plot {
    metric: String,
    svg: String,
}

/// One text, kept short: the page holds thousands.
#[derive(Debug, Serialize)]
struct Text {
    /// Index into [`Data::models`].
    m: usize,
    /// Prompt id.
    p: usize,
    /// Index into [`Data::strategies`].
    s: usize,
    /// Temperature.
    t: Option<f64>,
    /// Sample.
    k: usize,
    /// The text as `generations.csv` holds it.
    x: String,
    /// Finish reason.
    f: String,
    /// Per token, from `tokens.jsonl` (absent without a record): its text, its raw
    /// log-probability and the step's entropy, both in tenths of a nat (rounded).
    #[serde(skip_serializing_if = "Option::is_none")]
    tok: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lp: Option<Vec<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    h: Option<Vec<i32>>,
    /// The first token of the loop the text ends in (Holtzman et al.'s check), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    lf: Option<usize>,
}

/// One run folder's part of a report: its summary lines and texts (generated and human).
struct Side {
    info: RunInfo,
    lines: Vec<SummaryLine>,
    rows: Vec<GenerationRow>,
    tokens: HashMap<RowKey, TokenRecord>,
}

impl Side {
    fn read(dir: &RunDir) -> Result<Self, RunError> {
        let mut rows = dir.read_generations()?;
        rows.extend(dir.read_human()?);
        let tokens = dir
            .read_tokens()?
            .into_iter()
            .map(|r| (r.key(), r))
            .collect();
        Ok(Self {
            info: dir.read_info()?,
            lines: dir.read_summary()?,
            rows,
            tokens,
        })
    }
}

/// Whether `dir` is an eval folder (a run for each model under `candidate/` and `baseline/`).
pub fn is_eval(dir: &Path) -> bool {
    dir.join("candidate")
        .join(crate::run_dir::RUN_JSON)
        .exists()
        && dir.join("baseline").join(crate::run_dir::RUN_JSON).exists()
}

/// Writes `report.html` into a run folder, or an eval folder (both models side by side), and
/// returns its path.
pub fn write_report(dir: &Path) -> Result<std::path::PathBuf, RunError> {
    let html = render(dir)?;
    let path = dir.join(REPORT);
    atomic_write(&path, html.as_bytes())?;
    Ok(path)
}

/// The page of a run or eval folder.
pub fn render(dir: &Path) -> Result<String, RunError> {
    let data = if is_eval(dir) {
        let c = Side::read(&RunDir::new(dir.join("candidate")))?;
        let b = Side::read(&RunDir::new(dir.join("baseline")))?;
        let bpb_path = dir.join(BITS_PER_BYTE);
        let bits_per_byte = if bpb_path.exists() {
            csv_lines(&bpb_path)?
        } else {
            vec![]
        };
        let name = |s: &Side| s.info.grid["model"].as_str().unwrap_or("model").to_string();
        let title = format!("eval: {} against {}", name(&c), name(&b));
        let mut data = assemble("eval", title, &[("candidate", c), ("baseline", b)]);
        data.bits_per_byte = bits_per_byte;
        data
    } else {
        let side = Side::read(&RunDir::new(dir))?;
        let title = side.info.config["experiment"]["name"]
            .as_str()
            .map_or_else(|| dir.display().to_string(), |n| format!("run: {n}"));
        assemble("run", title, &[("run", side)])
    };
    Ok(page(&data))
}

/// The data of one or two sides. With two, each side's human rows are labelled with its model
/// (their token-level figures come from that model's tokenizer).
fn assemble(kind: &'static str, title: String, sides: &[(&str, Side)]) -> Data {
    let eval = sides.len() > 1;
    let human_label = |side: &Side| {
        if eval {
            format!(
                "{HUMAN} ({} tokens)",
                side.info.grid["model"].as_str().unwrap_or("model")
            )
        } else {
            HUMAN.to_string()
        }
    };
    let metric_names: Vec<&'static str> = crate::row::SummaryRow::default()
        .metrics()
        .iter()
        .map(|(n, _)| *n)
        .collect();
    let mut header = vec![];
    let mut configs = serde_json::Map::new();
    let mut lines_all: Vec<SummaryLine> = vec![];
    let mut summary = vec![];
    let mut models: Vec<String> = vec![];
    let mut strategies: Vec<String> = vec![];
    let mut texts = vec![];
    let mut prompts: Vec<String> = vec![];
    let mut side_models = vec![];
    for (label, side) in sides {
        side_models.push((
            label.to_string(),
            side.info.grid["model"].as_str().unwrap_or("").to_string(),
        ));
        header.extend(header_of(label, &side.info, &side.rows, eval));
        configs.insert(label.to_string(), side.info.config.clone());
        if prompts.is_empty()
            && let Some(p) = side.info.grid["prompts"].as_array()
        {
            prompts = p
                .iter()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect();
        }
        for line in &side.lines {
            let mut line = line.clone();
            if line.row.model == HUMAN {
                line.row.model = human_label(side);
            }
            let r = &line.row;
            let iv = |f: fn(crate::bootstrap::Interval) -> f64| {
                metric_names
                    .iter()
                    .map(|m| line.interval(m).map(f))
                    .collect::<Vec<_>>()
            };
            summary.push(Cell {
                model: r.model.clone(),
                strategy: r.strategy.clone(),
                temperature: r.temperature,
                rows: r.rows,
                values: r.metrics().iter().map(|(_, v)| *v).collect(),
                lo: iv(|i| i.lo),
                hi: iv(|i| i.hi),
            });
            lines_all.push(line);
        }
        for row in &side.rows {
            let model = if row.model == HUMAN {
                human_label(side)
            } else {
                row.model.clone()
            };
            let rec = side.tokens.get(&row.key());
            texts.push(Text {
                m: index_of(&mut models, &model),
                p: row.prompt_id,
                s: index_of(&mut strategies, &row.strategy),
                t: row.temperature,
                k: row.sample,
                x: row.text.clone(),
                f: row.finish_reason.clone(),
                tok: rec.map(|r| r.texts.clone()),
                lp: rec.map(|r| tenths(&r.logprobs)),
                h: rec.map(|r| tenths(&r.entropies)),
                lf: rec.and_then(|r| {
                    let rep = holtzman_repetition(&r.ids, None)?;
                    Some(r.ids.len() - rep.phrase_len * rep.times)
                }),
            });
        }
    }
    let plots = crate::plot::charts(&lines_all)
        .into_iter()
        .map(|(metric, svg)| Plot {
            metric: metric.to_string(),
            svg,
        })
        .collect();
    Data {
        kind,
        title,
        header,
        config: serde_json::to_string_pretty(&Value::Object(configs)).unwrap_or_default(),
        metrics: metric_names
            .iter()
            .map(|m| Metric {
                name: m.to_string(),
                def: definition(m).unwrap_or(""),
            })
            .collect(),
        summary,
        plots,
        prompts,
        models,
        strategies,
        texts,
        bits_per_byte: vec![],
        sides: side_models,
    }
}

/// The header lines of one side: models, devices, command, commit, threads, rows, tokens,
/// wall time and date.
fn header_of(
    label: &str,
    info: &RunInfo,
    rows: &[GenerationRow],
    prefixed: bool,
) -> Vec<(String, String)> {
    let (grid, meta) = (&info.grid, &info.meta);
    let s = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let mut model = format!(
        "{} ({}, {})",
        s(&grid["model"]),
        s(&grid["model_device"]),
        s(&grid["model_dtype"])
    );
    if !grid["judge"].is_null() {
        model.push_str(&format!(
            "; judge {} ({}, {})",
            s(&grid["judge"]),
            s(&grid["judge_device"]),
            s(&grid["judge_dtype"])
        ));
    }
    let generated: Vec<&GenerationRow> = rows.iter().filter(|r| r.model != HUMAN).collect();
    let tokens: usize = generated.iter().map(|r| r.n_tokens).sum();
    let wall = match (meta["started"].as_str(), info.finished.as_deref()) {
        (Some(a), Some(b)) => match (humantime::parse_rfc3339(a), humantime::parse_rfc3339(b)) {
            (Ok(a), Ok(b)) => b
                .duration_since(a)
                .map(|d| format!("{} s", d.as_secs()))
                .unwrap_or_default(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    let mut out = vec![
        ("model".to_string(), model),
        ("command".into(), s(&meta["command"])),
        ("commit".into(), s(&meta["git_commit"])),
        (
            "minigpt".into(),
            format!(
                "{} (Burn {})",
                s(&meta["minigpt_version"]),
                s(&meta["burn_version"])
            ),
        ),
        ("device".into(), s(&meta["device"])),
        ("threads".into(), s(&meta["threads"])),
        (
            "rows".into(),
            format!(
                "{} generated of {} in the grid",
                generated.len(),
                info.rows_in_grid
            ),
        ),
        ("tokens".into(), tokens.to_string()),
        ("wall time".into(), wall),
        ("started".into(), s(&meta["started"])),
        (
            "finished".into(),
            info.finished.clone().unwrap_or_else(|| "not yet".into()),
        ),
    ];
    if let Some(shard) = &info.shard {
        out.push(("shard".into(), shard.clone()));
    }
    if let Some(parts) = &info.merged_from {
        out.push(("merged from".into(), format!("{} folders", parts.len())));
    }
    out.retain(|(_, v)| !v.is_empty());
    if prefixed {
        for (k, _) in &mut out {
            *k = format!("{label} {k}");
        }
    }
    out
}

fn index_of(list: &mut Vec<String>, name: &str) -> usize {
    match list.iter().position(|n| n == name) {
        Some(i) => i,
        None => {
            list.push(name.to_string());
            list.len() - 1
        }
    }
}

/// Values in tenths, rounded (non-finite ones as 0, which records never hold).
fn tenths(v: &[f32]) -> Vec<i32> {
    v.iter()
        .map(|x| {
            if x.is_finite() {
                (x * 10.0).round() as i32
            } else {
                0
            }
        })
        .collect()
}

/// A CSV file's lines, header first.
fn csv_lines(path: &Path) -> Result<Vec<Vec<String>>, RunError> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .map_err(|e| RunError::io("read", path, e))?;
    r.records()
        .map(|rec| {
            rec.map(|rec| rec.iter().map(str::to_string).collect())
                .map_err(|e| RunError::io("parse", path, e))
        })
        .collect()
}

/// JSON that is safe inside `<script>`: `<`, `>` and `&` (only ever inside strings) become
/// `\u` escapes, so no `</script>` or `<!--` can appear; U+2028/9 are escaped for old parsers.
fn script_json(data: &Data) -> String {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "{}".into());
    let mut out = String::with_capacity(json.len() + json.len() / 50);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Text for an HTML element's content.
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The template with its four markers filled, each once and in the template only (a title
/// holding `{{DATA}}` stays text).
fn page(data: &Data) -> String {
    let title = html_escape(&data.title);
    let json = script_json(data);
    let mut out = String::with_capacity(PAGE.len() + CSS.len() + JS.len() + json.len() + 256);
    let mut rest = PAGE;
    while let Some(at) = rest.find("{{") {
        let end = rest[at..].find("}}").map_or(rest.len(), |e| at + e + 2);
        out.push_str(&rest[..at]);
        out.push_str(match &rest[at..end] {
            "{{TITLE}}" => &title,
            "{{CSS}}" => CSS,
            "{{JS}}" => JS,
            "{{DATA}}" => &json,
            other => other,
        });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
