//! Strategy files: valid chains build and display in order; bad files name the file, the key
//! and what is allowed; random TOML never panics the parser.

use minigpt_decode::{BuildContext, Registry, Rng, StepContext, Strategy};
use proptest::prelude::*;

fn parse(text: &str) -> Result<Strategy, String> {
    Strategy::parse(
        "s",
        "configs/decode/s.toml",
        text,
        &Registry::builtin(),
        &BuildContext::default(),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn chain_displays_in_user_order_and_runs() {
    let s = parse(
        r#"
        description = "penalised nucleus"
        [[processors]]
        name = "repetition_penalty"
        penalty = 1.2
        [[processors]]
        name = "temperature"
        t = 0.8
        [[processors]]
        name = "top_p"
        p = 0.9
        [selector]
        name = "multinomial"
        "#,
    )
    .unwrap();
    assert_eq!(s.description, "penalised nucleus");
    let mut pipe = s
        .pipeline(&Registry::builtin(), &BuildContext::default())
        .unwrap();
    assert_eq!(
        pipe.to_string(),
        "logits -> repetition_penalty(1.2) -> temperature(0.8) -> top_p(0.9) -> multinomial"
    );
    let cx = StepContext {
        tokens: &[0],
        prompt_len: 1,
        eos_token_id: None,
        seed: 1,
    };
    // Token 0 is penalised below token 1; top_p 0.9 then keeps tokens 1 and 0 only.
    let mut rng = Rng::new(3);
    for _ in 0..100 {
        let c = pipe.choose(&cx, &mut [2.0, 1.9, -5.0], &mut rng).unwrap();
        assert!(c.token < 2);
    }
}

#[test]
fn temperature_is_set_or_put_first() {
    let s = parse("[[processors]]\nname = \"top_k\"\nk = 5\n[selector]\nname = \"multinomial\"")
        .unwrap();
    let r = Registry::builtin();
    let hot = s.with_temperature(1.3);
    let chain = hot
        .pipeline(&r, &BuildContext::default())
        .unwrap()
        .to_string();
    assert_eq!(
        chain,
        "logits -> temperature(1.3) -> top_k(5) -> multinomial"
    );
    let again = hot.with_temperature(0.5);
    let chain = again
        .pipeline(&r, &BuildContext::default())
        .unwrap()
        .to_string();
    assert_eq!(
        chain,
        "logits -> temperature(0.5) -> top_k(5) -> multinomial"
    );
    assert!(!s.is_deterministic());
    assert!(
        parse("[selector]\nname = \"greedy\"")
            .unwrap()
            .is_deterministic()
    );
    assert!(
        parse("[search]\nname = \"beam_search\"")
            .unwrap()
            .is_deterministic()
    );
}

fn assert_err(text: &str, needles: &[&str]) {
    let e = parse(text).expect_err(text);
    assert!(e.starts_with("configs/decode/s.toml: "), "{e}");
    for n in needles {
        assert!(e.contains(n), "{e:?} lacks {n:?}");
    }
}

#[test]
fn bad_files_say_where_and_what_is_allowed() {
    assert_err(
        "[[processors]]\nname = \"top_q\"\n[selector]\nname = \"greedy\"",
        &[
            "processors[0]",
            "unknown processor \"top_q\"",
            "top_p",
            "min_p",
        ],
    );
    assert_err(
        "[[processors]]\nname = \"top_p\"\npp = 0.9\n[selector]\nname = \"greedy\"",
        &["processors[0] (top_p)", "unknown field `pp`", "`p`"],
    );
    assert_err(
        "[[processors]]\nname = \"top_k\"\nk = \"forty\"\n[selector]\nname = \"greedy\"",
        &["processors[0] (top_k)", "invalid type"],
    );
    assert_err(
        "[[processors]]\nname = \"top_p\"\np = 1.5\n[selector]\nname = \"multinomial\"",
        &["processors[0] (top_p)", "p must be in (0, 1] (got 1.5)"],
    );
    assert_err(
        "[selector]\nname = \"greedy\"\n[[processors]]\nname = \"multinomial\"",
        &[
            "processors[0]",
            "`multinomial` is a selector",
            "exactly one selector",
        ],
    );
    assert_err(
        "[[selector]]\nname = \"greedy\"\n[[selector]]\nname = \"multinomial\"",
        &["exactly one selector"],
    );
    assert_err(
        "[[processors]]\nname = \"top_k\"\nk = 3",
        &["no [selector]", "greedy, multinomial, mirostat_v2"],
    );
    assert_err(
        "[selector]\nname = \"top_k\"",
        &["\"top_k\" is a processor", "not a selector"],
    );
    assert_err(
        "[selector]\nname = \"beam\"",
        &["unknown selector \"beam\"", "multinomial"],
    );
    assert_err(
        "temperature = 0.7\n[selector]\nname = \"greedy\"",
        &[
            "unknown key `temperature`",
            "description, processors, selector",
        ],
    );
    assert_err(
        "[selector]\nnom = \"greedy\"",
        &["selector has no `name` key"],
    );
    assert_err("[selector\nname = 1", &["not valid TOML"]);
    assert_err(
        "[[processors]]\nname = \"temperature\"\nt = nan\n[selector]\nname = \"multinomial\"",
        &["t must be"],
    );
}

#[test]
fn missing_file_is_named() {
    let e = Strategy::load(
        std::path::Path::new("/no/such/top_p.toml"),
        &Registry::builtin(),
        &BuildContext::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("/no/such/top_p.toml") && e.contains("cannot read"),
        "{e}"
    );
}

/// Random documents built from the pieces a strategy file is made of.
fn toml_doc() -> impl Strategy_<Value = String> {
    let names = prop::sample::select(vec![
        "temperature",
        "top_k",
        "top_p",
        "min_p",
        "typical_p",
        "epsilon",
        "eta",
        "top_n_sigma",
        "repetition_penalty",
        "no_repeat_ngram",
        "logit_bias",
        "min_new_tokens",
        "greedy",
        "multinomial",
        "mirostat_v2",
        "bogus",
        "",
    ]);
    let keys = prop::sample::select(vec![
        "t", "k", "p", "n", "penalty", "window", "tau", "eta", "bias", "x", "name",
    ]);
    let values = prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| if v.is_finite() {
            format!("{v:?}")
        } else {
            "nan".into()
        }),
        Just("-inf".to_string()),
        Just("\"text\"".to_string()),
        Just("{ \"1\" = 2.0, \" a\" = -inf }".to_string()),
        Just("[1, 2]".to_string()),
        Just("true".to_string()),
    ];
    let table = (names, prop::collection::vec((keys, values), 0..3)).prop_map(|(name, kv)| {
        let mut s = format!("name = \"{name}\"\n");
        for (k, v) in kv {
            s.push_str(&format!("{k} = {v}\n"));
        }
        s
    });
    (
        prop::collection::vec(table.clone(), 0..4),
        prop::option::of(table),
        any::<bool>(),
        ".{0,20}",
    )
        .prop_map(|(procs, sel, desc, junk)| {
            let mut s = String::new();
            if desc {
                s.push_str("description = \"x\"\n");
            }
            for p in procs {
                s.push_str("[[processors]]\n");
                s.push_str(&p);
            }
            if let Some(t) = sel {
                s.push_str("[selector]\n");
                s.push_str(&t);
            }
            s.push_str(&junk);
            s
        })
}

use proptest::strategy::Strategy as Strategy_;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parser_never_panics(doc in toml_doc()) {
        let _ = parse(&doc);
    }

    #[test]
    fn arbitrary_text_never_panics(doc in ".{0,200}") {
        let _ = parse(&doc);
    }

    #[test]
    fn valid_chains_always_leave_a_token(doc in toml_doc(), logits in prop::collection::vec(prop_oneof![-10.0f32..10.0, Just(f32::NEG_INFINITY)], 1..8)) {
        if let Ok(s) = parse(&doc) {
            let mut pipe = s.pipeline(&Registry::builtin(), &BuildContext::default()).unwrap();
            let tokens = [0u32, 1, 0, 1];
            let cx = StepContext { tokens: &tokens, prompt_len: 2, eos_token_id: Some(0), seed: 1 };
            let mut l = logits.clone();
            match pipe.choose(&cx, &mut l, &mut Rng::new(1)) {
                // The chosen token was finite after every processor.
                Ok(c) => prop_assert!(l[c.token as usize].is_finite()),
                // Only a row that had no finite logit to begin with is refused.
                Err(e) => {
                    prop_assert!(logits.iter().all(|x| *x == f32::NEG_INFINITY), "{e}");
                    prop_assert!(e.after == "the model's logits");
                }
            }
        }
    }
}

#[test]
fn shipped_strategy_files_all_load_with_descriptions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/decode");
    let mut names = Vec::new();
    // Text tokens (dry breakers) need a tokenizer: one byte per token stands in for it here.
    let bytes = |s: &str| -> Vec<u32> { s.bytes().map(u32::from).collect() };
    let cx = BuildContext {
        encode: Some(&bytes),
    };
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let s = Strategy::load(&path, &Registry::builtin(), &cx).unwrap();
        assert!(!s.description.is_empty(), "{}", path.display());
        names.push(s.name);
    }
    names.sort();
    for want in [
        "greedy",
        "sampling",
        "top_k_40",
        "top_p_0.9",
        "min_p_0.05",
        "typical_0.95",
        "mirostat_v2_5",
        "no_repeat_3",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
}

#[test]
fn tiny_temperature_gives_the_greedy_token() {
    let s = parse("[selector]\nname = \"multinomial\"")
        .unwrap()
        .with_temperature(0.01);
    let mut pipe = s
        .pipeline(&Registry::builtin(), &BuildContext::default())
        .unwrap();
    let cx = StepContext {
        tokens: &[0],
        prompt_len: 1,
        eos_token_id: None,
        seed: 1,
    };
    let mut rng = Rng::new(4);
    for _ in 0..200 {
        assert_eq!(
            pipe.choose(&cx, &mut [0.1, 0.4, 0.35, -2.0], &mut rng)
                .unwrap()
                .token,
            1
        );
    }
}
