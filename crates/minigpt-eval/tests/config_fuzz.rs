//! Property test: sweep configs with random numbers (huge, tiny, negative, NaN, ±∞) and random
//! shard specs either are refused with an error or plan their grid; none panics, aborts or
//! allocates without bound (a grid past `MAX_GRID_ROWS` is refused before it is built).

use minigpt_decode::{BuildContext, Registry};
use minigpt_eval::grid::parse_shard;
use minigpt_eval::sweep::MAX_GRID_ROWS;
use minigpt_eval::{Plan, SweepConfig};
use proptest::prelude::*;

/// A number as TOML: ordinary, huge, tiny, negative, NaN or infinite.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        (0i64..6).prop_map(|v| v.to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        (-1.0f64..3.0).prop_map(|v| format!("{v:?}")),
        prop::sample::select(vec![
            "nan",
            "inf",
            "-inf",
            "1e300",
            "1e-300",
            "0",
            "-1",
            "0.0",
            "1000000000000",
            "9223372036854775807",
            "18446744073709551615",
        ])
        .prop_map(String::from),
    ]
}

/// Three times in four a value from `range` (written as TOML), else any [`number`].
fn mostly<T: std::fmt::Debug + 'static>(
    range: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = String> {
    prop_oneof![3 => range.prop_map(|v| format!("{v:?}")), 1 => number()]
}

fn config() -> impl Strategy<Value = String> {
    (
        mostly(1usize..4),
        mostly(1usize..64),
        prop::option::of(mostly(1usize..200)),
        mostly(1usize..16),
        prop::collection::vec(mostly(0.1f64..2.0), 0..4),
        prop::sample::subsequence(vec!["greedy", "top_p_0.9", "beam_4", "min_p_0.05"], 0..4),
    )
        .prop_map(|(samples, max_new, chars, batch, temps, strategies)| {
            let strategies: Vec<String> = strategies.iter().map(|s| format!("\"{s}\"")).collect();
            let chars = chars.map(|c| format!("max_new_chars = {c}\n")).unwrap_or_default();
            format!(
                "[experiment]\nname = \"f\"\nseed = 1\nsamples = {samples}\nmax_new_tokens = {max_new}\n{chars}batch_size = {batch}\n[prompts]\nitems = [\"a\", \"b c\"]\n[sweep]\ntemperatures = [{}]\nstrategies = [{}]\n",
                temps.join(", "),
                strategies.join(", ")
            )
        })
}

/// Plans `text` with `shard`: `None` when refused; panics are the caller's failure.
fn plan(text: &str, shard: &str) -> Option<Plan> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sweep.toml");
    std::fs::write(&path, text).unwrap();
    let cfg = SweepConfig::load(&path).ok()?;
    let prompts = cfg.prompt_set().ok()?;
    let shard = parse_shard(shard).ok();
    let registry = Registry::builtin();
    let cx = BuildContext::default();
    Plan::new(cfg, &path, "m", None, prompts, &registry, &cx, shard).ok()
}

/// The generator reaches planning often, so the property is not vacuous.
#[test]
fn the_generator_reaches_planning() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let planned = (0..300)
        .filter(|_| plan(&config().new_tree(&mut runner).unwrap().current(), "").is_some())
        .count();
    assert!(planned >= 30, "{planned} of 300 planned");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn random_configs_are_refused_or_planned(text in config(), shard in "[0-9]{0,20}/[0-9]{0,20}") {
        if let Some(plan) = plan(&text, &shard) {
            prop_assert!(plan.rows.len() <= MAX_GRID_ROWS);
        }
    }
}
