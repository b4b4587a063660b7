//! Tests of cost arithmetic.

use super::*;

fn price(s: &str) -> Price {
    Price::parse_usd(s).unwrap()
}

fn check(pricing: Pricing, usage: Usage, want_nanos: i64) {
    assert_eq!(
        cost(&pricing, &usage).total.nanos(),
        want_nanos,
        "{usage:?}"
    );
}

#[test]
fn plain_prompt_and_completion() {
    let p = Pricing {
        prompt: price("0.00000015"),
        completion: price("0.0000006"),
        ..Pricing::default()
    };
    // 1000 × 150 nano + 500 × 600 nano = 150,000 + 300,000 nano.
    check(
        p,
        Usage {
            prompt_tokens: 1000,
            completion_tokens: 500,
            ..Usage::default()
        },
        450_000,
    );
}

#[test]
fn cached_and_reasoning_tokens_use_their_prices() {
    let p = Pricing {
        prompt: price("0.000001"),
        completion: price("0.000002"),
        input_cache_read: price("0.0000001"),
        input_cache_write: price("0.00000125"),
        internal_reasoning: price("0.000003"),
        request: price("0.001"),
        ..Pricing::default()
    };
    let usage = Usage {
        prompt_tokens: 100,
        cached_tokens: 60,
        cache_write_tokens: 20,
        completion_tokens: 10,
        reasoning_tokens: 4,
        ..Usage::default()
    };
    // prompt: 20×1000 + 60×100 + 20×1250 = 51,000; request 1,000,000; completion 6×2000 + 4×3000 = 24,000.
    check(p, usage, 51_000 + 1_000_000 + 24_000);
}

#[test]
fn missing_cache_price_falls_back_to_prompt_price() {
    let p = Pricing {
        prompt: price("0.000001"),
        ..Pricing::default()
    };
    check(
        p,
        Usage {
            prompt_tokens: 10,
            cached_tokens: 10,
            ..Usage::default()
        },
        10_000,
    );
}

#[test]
fn discount_applies_to_the_total_and_rounds_once() {
    let p = Pricing {
        prompt: price("0.00000045"),
        completion: price("0.0000009"),
        discount: 0.25,
        ..Pricing::default()
    };
    check(
        p,
        Usage {
            prompt_tokens: 3,
            completion_tokens: 1,
            ..Usage::default()
        },
        1_688,
    );
}

#[test]
fn worst_case_covers_any_real_cost() {
    let p = Pricing {
        prompt: price("0.000001"),
        completion: price("0.000002"),
        internal_reasoning: price("0.000004"),
        ..Pricing::default()
    };
    let reserve = worst_case(&p, 100, 50);
    for completion in 0..=50 {
        for reasoning in [0, completion / 2, completion] {
            let usage = Usage {
                prompt_tokens: 100,
                completion_tokens: completion,
                reasoning_tokens: reasoning,
                ..Usage::default()
            };
            assert!(cost(&p, &usage).total <= reserve);
        }
    }
}
