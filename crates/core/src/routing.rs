//! Routing: the ordered list of (model, endpoint) candidates for a request.
//!
//! This first version resolves model ids (with or without a `:variant` suffix), keeps endpoints of
//! enabled providers and orders them cheapest first, model by model in the order requested. Provider
//! preferences, load balancing and health come with the routing work; they extend this function.

use crate::catalog::{Catalog, Endpoint, Model, Provider};
use crate::error::ApiError;

/// One endpoint that may serve the request.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'c> {
    pub model: &'c Model,
    pub endpoint: &'c Endpoint,
    pub provider: &'c Provider,
}

/// Resolves a requested model id: exact match first, then without a `:variant` suffix.
pub fn resolve_model<'c>(catalog: &'c Catalog, requested: &str) -> Option<&'c Model> {
    catalog.model(requested).or_else(|| {
        let (base, _variant) = requested.rsplit_once(':')?;
        catalog.model(base)
    })
}

/// Candidates for `models` (tried in order), restricted to providers for which `enabled` holds.
pub fn candidates<'c>(
    catalog: &'c Catalog,
    models: &[String],
    enabled: &dyn Fn(&Provider) -> bool,
) -> Result<Vec<Candidate<'c>>, ApiError> {
    let mut out = Vec::new();
    for requested in models {
        let Some(model) = resolve_model(catalog, requested) else {
            return Err(ApiError::model_not_found(requested));
        };
        let start = out.len();
        for endpoint in &model.endpoints {
            let Some(provider) = catalog.provider(&endpoint.provider) else {
                continue;
            };
            if enabled(provider) {
                out.push(Candidate {
                    model,
                    endpoint,
                    provider,
                });
            }
        }
        // Cheapest first within each model; stable, so catalog order breaks ties.
        out[start..].sort_by_key(|c| {
            c.endpoint.pricing.prompt.picos() as i128
                + c.endpoint.pricing.completion.picos() as i128
        });
    }
    if out.is_empty() {
        return Err(ApiError::no_endpoints(&models[0]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_cheapest_first_and_respects_enabled() {
        let catalog = Catalog::from_files(crate::catalog::BUNDLED).unwrap();
        let models = vec!["meta-llama/llama-3.3-70b-instruct".to_owned()];
        let three = ["deepinfra", "groq", "together"];
        let some = candidates(&catalog, &models, &|p| three.contains(&p.slug.as_str())).unwrap();
        let tags: Vec<&str> = some.iter().map(|c| c.endpoint.tag.as_str()).collect();
        assert_eq!(tags, ["deepinfra/turbo", "groq", "together/fp8"]);
        let all = candidates(&catalog, &models, &|_| true).unwrap();
        let price = |c: &Candidate| {
            c.endpoint.pricing.prompt.picos() + c.endpoint.pricing.completion.picos()
        };
        assert!(all.windows(2).all(|w| price(&w[0]) <= price(&w[1])));
        let groq_only = candidates(&catalog, &models, &|p| p.slug == "groq").unwrap();
        assert_eq!(groq_only.len(), 1);
        let none = candidates(&catalog, &models, &|_| false).unwrap_err();
        assert_eq!(none.code.status(), 404);
    }

    #[test]
    fn unknown_models_and_variants() {
        let catalog = Catalog::from_files(crate::catalog::BUNDLED).unwrap();
        let err = candidates(&catalog, &["acme/unknown".to_owned()], &|_| true).unwrap_err();
        assert_eq!(err.code.status(), 400);
        assert!(resolve_model(&catalog, "openai/gpt-4o-mini:nitro").is_some());
    }
}
