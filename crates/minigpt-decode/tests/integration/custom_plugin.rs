//! Runs `examples/custom_strategy.rs` (a user plugin registered through `Registry`), so CI both
//! builds and runs it.

#[path = "../../examples/custom_strategy.rs"]
mod example;

#[test]
fn user_plugin_is_registered_named_and_applied() {
    let (chain, tokens) = example::run().unwrap();
    assert_eq!(chain, "logits -> softcap(2) -> multinomial");
    assert_eq!(tokens.len(), 12);
    // Without the cap the favoured token has logit 30 and is always drawn. Capped at 2 it has
    // p = e^2 / (e^2 + 7) = 0.51 (2 tanh 15 = 2.0, the others 0): some draws must miss it.
    let mut prev = 0;
    let mut misses = 0;
    for &t in &tokens {
        if t != (prev + 1) % 8 {
            misses += 1;
        }
        prev = t;
    }
    assert!(misses > 0, "{tokens:?}");
}
