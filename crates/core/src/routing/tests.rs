//! Tests of candidate selection: each preference, their combinations, variants, and the
//! inverse-square distribution of the default load balancing.

use super::*;
use crate::catalog::CatalogFiles;

const PROVIDERS: &str = r#"{"providers":[
  {"slug":"cheap","name":"Cheap","protocol":"openai","base_url":"https://c","data_policy":{"training":true}},
  {"slug":"mid","name":"Mid Co","protocol":"openai","base_url":"https://m","data_policy":{"zdr":true}},
  {"slug":"dear","name":"Dear","protocol":"openai","base_url":"https://d","data_policy":{"zdr":true}}]}"#;
const MODELS: &str = r#"{"version":"t","models":[
  {"id":"a/one","canonical_slug":"a/one","name":"One","created":1,"context_length":8000,
   "architecture":{"modality":"text->text","input_modalities":["text"],"output_modalities":["text"]}},
  {"id":"a/two","canonical_slug":"a/two","name":"Two","created":2,"context_length":8000,
   "architecture":{"modality":"text->text","input_modalities":["text"],"output_modalities":["text"]}},
  {"id":"a/one:free","canonical_slug":"a/one","name":"One (free)","created":1,"context_length":8000,
   "architecture":{"modality":"text->text","input_modalities":["text"],"output_modalities":["text"]}}]}"#;
// a/one: cheap $1+$1 /M (fp8, no tools), mid $2+$2 (bf16, tools), dear $4+$4 (tools, response_format).
const ENDPOINTS: &str = r#"{"endpoints":[
  {"model":"a/one","provider":"cheap","tag":"cheap/fp8","upstream_model":"one","context_length":8000,"quantization":"fp8",
   "pricing":{"prompt":"0.000001","completion":"0.000001"},"supported_parameters":["temperature"]},
  {"model":"a/one","provider":"mid","tag":"mid","upstream_model":"one","context_length":8000,"quantization":"bf16",
   "pricing":{"prompt":"0.000002","completion":"0.000002"},"supported_parameters":["temperature","tools"]},
  {"model":"a/one","provider":"dear","tag":"dear","upstream_model":"one","context_length":8000,
   "pricing":{"prompt":"0.000004","completion":"0.000004"},"supported_parameters":["temperature","tools","response_format"]},
  {"model":"a/two","provider":"cheap","tag":"cheap","upstream_model":"two","context_length":8000,
   "pricing":{"prompt":"0.0000005","completion":"0.0000005"}},
  {"model":"a/one:free","provider":"mid","tag":"mid","upstream_model":"one","context_length":8000,
   "pricing":{"prompt":"0","completion":"0"}}]}"#;

fn catalog() -> Catalog {
    Catalog::from_files(CatalogFiles {
        providers: PROVIDERS,
        models: MODELS,
        endpoints: ENDPOINTS,
    })
    .unwrap()
}

/// Tags chosen for `models` with `provider` preferences and request `params`, seed fixed.
fn check(models: &[&str], provider: Value, params: &[&str]) -> Result<Vec<String>, ApiError> {
    let c = catalog();
    let prefs = ProviderPrefs::parse(Some(&provider), None)?;
    let models: Vec<String> = models.iter().map(|m| m.to_string()).collect();
    let params: Vec<String> = params.iter().map(|p| p.to_string()).collect();
    let plan = plan(
        &c,
        &request(&models, &prefs, &params, 7, &Unobserved),
        &|_| true,
    )?;
    Ok(plan
        .candidates
        .iter()
        .map(|c| format!("{}@{}", c.endpoint.tag, c.model.id))
        .collect())
}

fn request<'a>(
    models: &'a [String],
    prefs: &'a ProviderPrefs,
    params: &'a [String],
    seed: u64,
    observed: &'a dyn Observed,
) -> RouteRequest<'a> {
    RouteRequest {
        models,
        prefs,
        params,
        seed,
        prompt_tokens: 10,
        observed,
        now_ms: NOW,
    }
}

const NOW: i64 = 1_800_000_000_000;

fn tags(models: &[&str], provider: Value) -> Vec<String> {
    check(models, provider, &[])
        .unwrap()
        .into_iter()
        .map(|t| t.split('@').next().unwrap().to_owned())
        .collect()
}

#[test]
fn sort_by_price_and_partitions() {
    assert_eq!(
        tags(&["a/one"], json!({"sort": "price"})),
        ["cheap/fp8", "mid", "dear"]
    );
    assert_eq!(
        check(&["a/one", "a/two"], json!({"sort": "price"}), &[]).unwrap(),
        ["cheap/fp8@a/one", "mid@a/one", "dear@a/one", "cheap@a/two"]
    );
    assert_eq!(
        check(
            &["a/one", "a/two"],
            json!({"sort": {"by": "price", "partition": "none"}}),
            &[]
        )
        .unwrap(),
        ["cheap@a/two", "cheap/fp8@a/one", "mid@a/one", "dear@a/one"]
    );
}

#[test]
fn only_ignore_and_order_by_slug_tag_or_name() {
    assert_eq!(
        tags(
            &["a/one"],
            json!({"only": ["mid", "Dear"], "sort": "price"})
        ),
        ["mid", "dear"]
    );
    assert_eq!(
        tags(
            &["a/one"],
            json!({"ignore": ["cheap/fp8"], "sort": "price"})
        ),
        ["mid", "dear"]
    );
    assert_eq!(
        tags(&["a/one"], json!({"order": ["dear", "mid co"]})),
        ["dear", "mid", "cheap/fp8"]
    );
    assert_eq!(
        tags(
            &["a/one"],
            json!({"order": ["dear"], "allow_fallbacks": false})
        ),
        ["dear"]
    );
}

#[test]
fn hard_filters_and_their_errors() {
    assert_eq!(
        tags(&["a/one"], json!({"zdr": true, "sort": "price"})),
        ["mid", "dear"]
    );
    assert_eq!(
        tags(
            &["a/one"],
            json!({"data_collection": "deny", "sort": "price"})
        ),
        ["mid", "dear"]
    );
    assert_eq!(
        tags(
            &["a/one"],
            json!({"quantizations": ["fp8", "unknown"], "sort": "price"})
        ),
        ["cheap/fp8", "dear"]
    );
    assert_eq!(
        tags(
            &["a/one"],
            json!({"max_price": {"prompt": 2.5}, "sort": "price"})
        ),
        ["cheap/fp8", "mid"]
    );
    let err = check(
        &["a/one"],
        json!({"max_price": {"prompt": 0.5}, "zdr": true}),
        &[],
    )
    .unwrap_err();
    assert_eq!(err.code.status(), 404);
    let availability = err.availability.unwrap();
    assert_eq!(availability["code"], "constraint_filtered");
    assert_eq!(
        availability["excluded_by"],
        json!(["data_policy:zdr", "max_price"])
    );
}

#[test]
fn required_and_soft_parameters() {
    // Tools act as a soft filter: endpoints without them go when others have them.
    assert_eq!(
        check(&["a/one"], json!({"sort": "price"}), &["tools"])
            .unwrap()
            .len(),
        2
    );
    // response_format only on `dear`.
    assert_eq!(tags(&["a/one"], json!({})).len(), 3);
    let only_dear = check(
        &["a/one"],
        json!({}),
        &["response_format", "messages", "model"],
    )
    .unwrap();
    assert_eq!(only_dear, ["dear@a/one"]);
    // require_parameters excludes endpoints lacking any sent parameter (bookkeeping keys aside).
    let strict = check(
        &["a/one"],
        json!({"require_parameters": true, "sort": "price"}),
        &["temperature", "tools", "messages"],
    );
    assert_eq!(strict.unwrap(), ["mid@a/one", "dear@a/one"]);
    let none = check(&["a/two"], json!({"require_parameters": true}), &["seed"]).unwrap_err();
    assert_eq!(
        none.availability.unwrap()["excluded_by"],
        json!(["require_parameters"])
    );
}

#[test]
fn variants() {
    assert_eq!(
        tags(&["a/one:floor"], json!({})),
        ["cheap/fp8", "mid", "dear"]
    );
    assert_eq!(tags(&["a/one:nitro"], json!({})).len(), 3);
    assert_eq!(tags(&["a/one:online"], json!({"sort": "price"})).len(), 3);
    // `:free` is a model of its own when the catalog has it.
    assert_eq!(
        check(&["a/one:free"], json!({}), &[]).unwrap(),
        ["mid@a/one:free"]
    );
    assert_eq!(
        check(&["a/none"], json!({}), &[])
            .unwrap_err()
            .code
            .status(),
        400
    );
}

#[test]
fn bad_preferences_are_400s() {
    for bad in [
        json!({"order": "mid"}),
        json!({"sort": "fastest"}),
        json!({"data_collection": "maybe"}),
        json!({"max_price": {"prompt": "cheap"}}),
        json!({"allow_fallbacks": "no"}),
        json!({"sort": {"by": "price", "partition": "sometimes"}}),
    ] {
        assert_eq!(
            ProviderPrefs::parse(Some(&bad), None)
                .unwrap_err()
                .code
                .status(),
            400,
            "{bad}"
        );
    }
    assert!(
        ProviderPrefs::parse(None, Some(&json!("sort")))
            .unwrap()
            .partition_none
    );
    assert!(ProviderPrefs::parse(None, Some(&json!("nope"))).is_err());
}

#[test]
fn default_balancing_follows_the_inverse_square_of_price() {
    // Prices 2, 4, 8 (sum per token): weights 1/4, 1/16, 1/64, i.e. 16:4:1.
    let c = catalog();
    let prefs = ProviderPrefs::default();
    let models = vec!["a/one".to_owned()];
    let mut counts = [0f64; 3];
    let draws = 21_000;
    for seed in 0..draws {
        let plan = plan(
            &c,
            &request(&models, &prefs, &[], seed, &Unobserved),
            &|_| true,
        )
        .unwrap()
        .candidates;
        let first = ["cheap/fp8", "mid", "dear"]
            .iter()
            .position(|t| *t == plan[0].endpoint.tag)
            .unwrap();
        counts[first] += 1.0;
        // The others follow by price.
        let rest: Vec<i128> = plan[1..].iter().map(price_key).collect();
        assert!(rest.windows(2).all(|w| w[0] <= w[1]));
    }
    let expected = [16.0 / 21.0, 4.0 / 21.0, 1.0 / 21.0].map(|p| p * draws as f64);
    let chi_square: f64 = counts
        .iter()
        .zip(expected)
        .map(|(o, e)| (o - e) * (o - e) / e)
        .sum();
    // 2 degrees of freedom: 13.8 is the 0.1% critical value.
    assert!(
        chi_square < 13.8,
        "chi-square {chi_square}: counts {counts:?} vs {expected:?}"
    );
}

#[test]
fn bundled_catalog_cheapest_first_and_enabled_only() {
    let catalog = Catalog::from_files(crate::catalog::BUNDLED).unwrap();
    let models = vec!["meta-llama/llama-3.3-70b-instruct".to_owned()];
    let three = ["deepinfra", "groq", "together"];
    let prefs = ProviderPrefs {
        sort: Some(SortBy::Price),
        ..ProviderPrefs::default()
    };
    let request = request(&models, &prefs, &[], 0, &Unobserved);
    let some = plan(&catalog, &request, &|p| three.contains(&p.slug.as_str())).unwrap();
    assert_eq!(some.strategy, Strategy::Sorted);
    let tags: Vec<&str> = some
        .candidates
        .iter()
        .map(|c| c.endpoint.tag.as_str())
        .collect();
    assert_eq!(tags, ["deepinfra/turbo", "groq", "together/fp8"]);
    assert_eq!(
        plan(&catalog, &request, &|_| false)
            .unwrap_err()
            .code
            .status(),
        404
    );
    assert!(resolve_model(&catalog, "openai/gpt-4o-mini:nitro").is_some());
}

/// Observations scripted per endpoint tag.
#[derive(Default)]
struct Fake {
    gates: Vec<(&'static str, Gate)>,
    /// (tag, p50 throughput tokens/s, p50 latency ms)
    perf: Vec<(&'static str, f64, f64)>,
}

impl Observed for Fake {
    fn gate(&self, c: &Candidate) -> Gate {
        self.gates
            .iter()
            .find(|(t, _)| *t == c.endpoint.tag)
            .map_or(Gate::Up, |(_, g)| *g)
    }
    fn stats(&self, c: &Candidate) -> LiveStats {
        let flat = |v: f64| Percentiles {
            p50: v,
            p75: v * 1.5,
            p90: v * 2.0,
            p99: v * 3.0,
        };
        self.perf
            .iter()
            .find(|(t, _, _)| *t == c.endpoint.tag)
            .map_or(LiveStats::default(), |(_, tps, ms)| LiveStats {
                throughput_30m: Some(flat(*tps)),
                latency_30m: Some(flat(*ms)),
                ..LiveStats::default()
            })
    }
}

fn observed_tags(provider: Value, observed: &Fake, seed: u64) -> Result<Vec<String>, ApiError> {
    let c = catalog();
    let prefs = ProviderPrefs::parse(Some(&provider), None)?;
    let models = vec!["a/one".to_owned()];
    let plan = plan(&c, &request(&models, &prefs, &[], seed, observed), &|_| {
        true
    })?;
    Ok(plan
        .candidates
        .iter()
        .map(|c| c.endpoint.tag.clone())
        .collect())
}

#[test]
fn throughput_and_latency_sorts_use_live_statistics_with_ties_by_price() {
    let fake = Fake {
        perf: vec![
            ("cheap/fp8", 50.0, 900.0),
            ("mid", 200.0, 300.0),
            ("dear", 200.0, 100.0),
        ],
        ..Fake::default()
    };
    // mid and dear tie on throughput: the cheaper goes first.
    assert_eq!(
        observed_tags(json!({"sort": "throughput"}), &fake, 0).unwrap(),
        ["mid", "dear", "cheap/fp8"]
    );
    assert_eq!(
        observed_tags(json!({"sort": "latency"}), &fake, 0).unwrap(),
        ["dear", "mid", "cheap/fp8"]
    );
    // Unmeasured endpoints come after measured ones, by price among themselves.
    let partial = Fake {
        perf: vec![("dear", 10.0, 5000.0)],
        ..Fake::default()
    };
    assert_eq!(
        observed_tags(json!({"sort": "throughput"}), &partial, 0).unwrap(),
        ["dear", "cheap/fp8", "mid"]
    );
    // `:nitro` is a throughput sort.
    let c = catalog();
    let prefs = ProviderPrefs::default();
    let models = vec!["a/one:nitro".to_owned()];
    let nitro = plan(&c, &request(&models, &prefs, &[], 0, &fake), &|_| true).unwrap();
    let nitro: Vec<&str> = nitro
        .candidates
        .iter()
        .map(|c| c.endpoint.tag.as_str())
        .collect();
    assert_eq!(nitro, ["mid", "dear", "cheap/fp8"]);
}

#[test]
fn preferred_thresholds_move_endpoints_back_without_dropping_them() {
    let fake = Fake {
        perf: vec![
            ("cheap/fp8", 50.0, 900.0),
            ("mid", 200.0, 300.0),
            ("dear", 120.0, 100.0),
        ],
        ..Fake::default()
    };
    assert_eq!(
        observed_tags(
            json!({"sort": "price", "preferred_min_throughput": 100}),
            &fake,
            0
        )
        .unwrap(),
        ["mid", "dear", "cheap/fp8"]
    );
    // Latency is given in seconds: 0.2 s = 200 ms. Only `dear` meets it at p50.
    assert_eq!(
        observed_tags(
            json!({"sort": "price", "preferred_max_latency": 0.2}),
            &fake,
            0
        )
        .unwrap(),
        ["dear", "cheap/fp8", "mid"]
    );
    // Percentile objects: p90 = 2 × p50 in the fake; mid's p90 throughput 400 ≥ 300, dear's 240 not.
    assert_eq!(
        observed_tags(
            json!({"sort": "price", "preferred_min_throughput": {"p90": 300}}),
            &fake,
            0
        )
        .unwrap(),
        ["mid", "cheap/fp8", "dear"]
    );
    // Nothing measured: nothing moves.
    assert_eq!(
        observed_tags(
            json!({"sort": "price", "preferred_min_throughput": 1000}),
            &Fake::default(),
            0
        )
        .unwrap(),
        ["cheap/fp8", "mid", "dear"]
    );
    for bad in [
        json!({"preferred_min_throughput": -1}),
        json!({"preferred_max_latency": "fast"}),
        json!({"preferred_max_latency": {"p42": 1}}),
    ] {
        assert_eq!(
            ProviderPrefs::parse(Some(&bad), None)
                .unwrap_err()
                .code
                .status(),
            400,
            "{bad}"
        );
    }
}

#[test]
fn endpoints_in_an_outage_are_skipped_and_never_drawn() {
    let down = Gate::Down {
        until_ms: NOW + 20_000,
        rate_limited: false,
    };
    let fake = Fake {
        gates: vec![("cheap/fp8", down)],
        ..Fake::default()
    };
    // Whatever the seed, the cheapest (and most likely) endpoint is never first, nor present.
    for seed in 0..200 {
        let tags = observed_tags(json!({}), &fake, seed).unwrap();
        assert_eq!(tags.len(), 2, "{tags:?}");
        assert!(!tags.contains(&"cheap/fp8".to_owned()));
    }
    // Half-open endpoints stay: the server grants their single probe.
    let probing = Fake {
        gates: vec![("cheap/fp8", Gate::HalfOpen)],
        ..Fake::default()
    };
    assert_eq!(
        observed_tags(json!({"sort": "price"}), &probing, 0).unwrap(),
        ["cheap/fp8", "mid", "dear"]
    );
    // Everything down: 503 temporarily_unavailable, retryable after the earliest recovery.
    let all = Fake {
        gates: vec![
            ("cheap/fp8", down),
            ("mid", down),
            (
                "dear",
                Gate::Down {
                    until_ms: NOW + 1_500,
                    rate_limited: true,
                },
            ),
        ],
        ..Fake::default()
    };
    let err = observed_tags(json!({}), &all, 0).unwrap_err();
    assert_eq!(err.code.status(), 503);
    assert_eq!(err.retry_after, Some(2));
    let availability = err.availability.unwrap();
    assert_eq!(availability["code"], "temporarily_unavailable");
    assert_eq!(availability["retryable"], true);
    // Every one rate limited by its provider: 429 capacity_exhausted.
    let limited = Gate::Down {
        until_ms: NOW + 30_000,
        rate_limited: true,
    };
    let all_limited = Fake {
        gates: vec![("cheap/fp8", limited), ("mid", limited), ("dear", limited)],
        ..Fake::default()
    };
    let err = observed_tags(json!({}), &all_limited, 0).unwrap_err();
    assert_eq!(err.code.status(), 429);
    assert_eq!(err.retry_after, Some(30));
    assert_eq!(err.availability.unwrap()["code"], "capacity_exhausted");
}

#[test]
fn prompts_longer_than_the_context_are_filtered() {
    let c = catalog();
    let prefs = ProviderPrefs::default();
    let models = vec!["a/one".to_owned()];
    let mut long = request(&models, &prefs, &[], 0, &Unobserved);
    long.prompt_tokens = 9_000;
    let err = plan(&c, &long, &|_| true).unwrap_err();
    assert_eq!(
        err.availability.unwrap()["excluded_by"],
        json!(["context_length"])
    );
}

#[test]
fn account_defaults_merge_with_the_request() {
    let defaults = json!({"ignore": ["cheap"], "only": ["cheap", "mid", "dear"], "sort": "price"});
    let merged = ProviderPrefs::parse_with_defaults(
        Some(&json!({"ignore": ["dear"], "only": ["mid", "dear", "other"]})),
        None,
        Some(&defaults),
    )
    .unwrap();
    assert_eq!(merged.ignore, ["cheap", "dear"]);
    assert_eq!(merged.only, ["mid", "dear"]);
    assert_eq!(merged.sort, Some(SortBy::Price));
    // The request's own fields win over the defaults.
    let own = ProviderPrefs::parse_with_defaults(
        Some(&json!({"sort": "latency"})),
        None,
        Some(&defaults),
    )
    .unwrap();
    assert_eq!(own.sort, Some(SortBy::Latency));
    // An `only` outside the account's allow-list cannot escape it.
    let escaped = ProviderPrefs::parse_with_defaults(
        Some(&json!({"only": ["other"]})),
        None,
        Some(&defaults),
    )
    .unwrap();
    let c = catalog();
    let models = vec!["a/one".to_owned()];
    let err = plan(
        &c,
        &request(&models, &escaped, &[], 0, &Unobserved),
        &|_| true,
    )
    .unwrap_err();
    assert_eq!(err.availability.unwrap()["code"], "constraint_filtered");
    // No defaults: plain parsing.
    assert_eq!(
        ProviderPrefs::parse_with_defaults(None, None, None).unwrap(),
        ProviderPrefs::default()
    );
}

/// SplitMix64, for reproducible random preference combinations.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn property_random_preference_combinations_respect_every_rule() {
    let c = catalog();
    let names = ["cheap", "mid", "dear", "cheap/fp8", "Mid Co", "nobody"];
    let mut rng = 42u64;
    let pick = |rng: &mut u64| -> Vec<Value> {
        names
            .iter()
            .filter(|_| next(rng).is_multiple_of(3))
            .map(|n| json!(n))
            .collect()
    };
    for _ in 0..3_000 {
        let mut provider = Map::new();
        if next(&mut rng).is_multiple_of(2) {
            provider.insert("order".into(), Value::Array(pick(&mut rng)));
        }
        if next(&mut rng).is_multiple_of(3) {
            provider.insert("only".into(), Value::Array(pick(&mut rng)));
        }
        if next(&mut rng).is_multiple_of(3) {
            provider.insert("ignore".into(), Value::Array(pick(&mut rng)));
        }
        let fallbacks = !next(&mut rng).is_multiple_of(4);
        provider.insert("allow_fallbacks".into(), json!(fallbacks));
        let zdr = next(&mut rng).is_multiple_of(4);
        provider.insert("zdr".into(), json!(zdr));
        let deny = next(&mut rng).is_multiple_of(4);
        if deny {
            provider.insert("data_collection".into(), json!("deny"));
        }
        let sorted = next(&mut rng).is_multiple_of(2);
        if sorted {
            provider.insert("sort".into(), json!("price"));
        }
        let max_prompt = [None, Some(1.5), Some(3.0)][(next(&mut rng) % 3) as usize];
        if let Some(m) = max_prompt {
            provider.insert("max_price".into(), json!({"prompt": m}));
        }
        let provider = Value::Object(provider);
        let prefs = ProviderPrefs::parse(Some(&provider), None).unwrap();
        let models = vec!["a/one".to_owned()];
        let seed = next(&mut rng);
        let result = plan(
            &c,
            &request(&models, &prefs, &[], seed, &Unobserved),
            &|_| true,
        );
        let Ok(result) = result else {
            let err = result.unwrap_err();
            assert_eq!(err.code.status(), 404, "{provider}: {err}");
            continue;
        };
        let out = result.candidates;
        assert!(!out.is_empty());
        let named = |list: &[String], c: &Candidate| {
            list.iter().any(|n| matches(n, c.provider, c.endpoint))
        };
        let mut seen = std::collections::HashSet::new();
        for cand in &out {
            assert!(seen.insert(&cand.endpoint.tag), "{provider}: duplicate");
            assert!(
                prefs.only.is_empty() || named(&prefs.only, cand),
                "{provider}: only"
            );
            assert!(!named(&prefs.ignore, cand), "{provider}: ignore");
            assert!(!zdr || cand.provider.data_policy.zdr, "{provider}: zdr");
            assert!(
                !deny || !cand.provider.data_policy.training,
                "{provider}: training"
            );
            if let Some(m) = max_prompt {
                assert!(
                    cand.endpoint.pricing.prompt.picos() as f64 <= m * 1e6,
                    "{provider}: max_price"
                );
            }
            if !fallbacks && !prefs.order.is_empty() {
                assert!(named(&prefs.order, cand), "{provider}: fallbacks");
            }
        }
        // Endpoints named in `order` come first, in that order.
        let ranks: Vec<usize> = out
            .iter()
            .map(|c| {
                prefs
                    .order
                    .iter()
                    .position(|o| matches(o, c.provider, c.endpoint))
                    .unwrap_or(usize::MAX)
            })
            .collect();
        assert!(
            ranks.windows(2).all(|w| w[0] <= w[1]),
            "{provider}: order {ranks:?}"
        );
        // A price sort without `order` is monotone.
        if sorted && prefs.order.is_empty() {
            let prices: Vec<i128> = out.iter().map(price_key).collect();
            assert!(
                prices.windows(2).all(|w| w[0] <= w[1]),
                "{provider}: price sort"
            );
        }
    }
}
