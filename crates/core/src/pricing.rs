//! Cost of a generation: token and unit counts times the serving endpoint's prices.
//!
//! Conventions follow OpenAI's usage object: `prompt_tokens` includes cached and cache-write tokens,
//! `completion_tokens` includes reasoning tokens. Each part is charged at its own price when the
//! endpoint sets one, else at the plain prompt or completion price. The endpoint's discount applies to
//! the total. All arithmetic is exact in pico-dollars; one rounding to nano-dollars at the end.

use crate::catalog::Pricing;
use crate::money::{Money, Price};

/// Normalised counts of one generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Prompt tokens read from the provider's cache.
    pub cached_tokens: u64,
    /// Prompt tokens written to the provider's cache.
    pub cache_write_tokens: u64,
    /// Completion tokens spent on reasoning.
    pub reasoning_tokens: u64,
    /// Images in the prompt.
    pub images: u64,
    /// Web searches run for the request.
    pub web_searches: u64,
}

impl Usage {
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// The two halves of a cost, as OpenRouter reports them in `cost_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    pub total: Money,
    pub prompt: Money,
    pub completion: Money,
}

/// What the account is charged for a generation: the endpoint's price, or for BYOK requests
/// (served with the account's own provider key) a fee on that price.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Charge {
    /// The generation at the endpoint's prices.
    pub cost: Cost,
    /// What the account pays.
    pub charged: Money,
    pub is_byok: bool,
}

impl Charge {
    pub fn platform(cost: Cost) -> Charge {
        Charge {
            cost,
            charged: cost.total,
            is_byok: false,
        }
    }

    pub fn byok(cost: Cost, fee: Money) -> Charge {
        Charge {
            cost,
            charged: fee,
            is_byok: true,
        }
    }

    /// The BYOK-equivalent usage (zero for platform requests).
    pub fn byok_usage(&self) -> Money {
        if self.is_byok {
            self.cost.total
        } else {
            Money::ZERO
        }
    }
}

/// What a generation with `usage` costs on an endpoint with `pricing` (one request).
pub fn cost(pricing: &Pricing, usage: &Usage) -> Cost {
    let or = |specific: Price, fallback: Price| {
        if specific.is_zero() {
            fallback
        } else {
            specific
        }
    };
    let cached = usage.cached_tokens.min(usage.prompt_tokens);
    let written = usage.cache_write_tokens.min(usage.prompt_tokens - cached);
    let plain_prompt = usage.prompt_tokens - cached - written;
    let reasoning = usage.reasoning_tokens.min(usage.completion_tokens);
    let plain_completion = usage.completion_tokens - reasoning;

    let prompt_picos = pricing.prompt.times(plain_prompt)
        + or(pricing.input_cache_read, pricing.prompt).times(cached)
        + or(pricing.input_cache_write, pricing.prompt).times(written)
        + pricing.image.times(usage.images)
        + pricing.request.times(1)
        + pricing.web_search.times(usage.web_searches);
    let completion_picos = pricing.completion.times(plain_completion)
        + or(pricing.internal_reasoning, pricing.completion).times(reasoning);
    let keep = discount_keep_ppm(pricing.discount);
    let prompt = Money::from_picos(prompt_picos * keep / 1_000_000);
    let completion = Money::from_picos(completion_picos * keep / 1_000_000);
    Cost {
        total: prompt.saturating_add(completion),
        prompt,
        completion,
    }
}

/// The most a request can cost: every prompt token uncached, `max_output` completion tokens at the
/// dearer of completion and reasoning prices. This is what gets reserved before the upstream call.
pub fn worst_case(pricing: &Pricing, prompt_tokens: u64, max_output: u64) -> Money {
    let output_price = pricing.completion.max(pricing.internal_reasoning);
    let input_price = pricing.prompt.max(pricing.input_cache_write);
    let picos = input_price.times(prompt_tokens)
        + output_price.times(max_output)
        + pricing.request.times(1);
    Money::from_picos(picos * discount_keep_ppm(pricing.discount) / 1_000_000)
}

/// Parts per million of the price that remain after the discount.
fn discount_keep_ppm(discount: f64) -> i128 {
    let discount_ppm = (discount.clamp(0.0, 1.0) * 1_000_000.0).round() as i128;
    1_000_000 - discount_ppm
}

#[cfg(test)]
mod tests;
