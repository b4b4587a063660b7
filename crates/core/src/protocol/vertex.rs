//! Google Vertex AI: one provider that speaks three wire formats, chosen by the model.
//!
//! - Google's own models (`gemini-*`, `gemma-*`) take the Gemini body at
//!   `.../publishers/google/models/{model}:generateContent` (or `:streamGenerateContent?alt=sse`);
//! - Claude (`claude-*`) takes the Anthropic Messages body, without `model` and with
//!   `anthropic_version: vertex-2023-10-16`, at `.../publishers/anthropic/models/{model}:rawPredict`
//!   (or `:streamRawPredict`);
//! - partner and open models served as a service (ids ending in `-maas`, or `publisher/model`)
//!   take OpenAI Chat Completions at `.../endpoints/openapi/chat/completions`.
//!
//! Every path lives under `{base}/projects/{project}/locations/{location}`. The location comes
//! from the endpoint's tag (`google-vertex/us-east5`), else the configured default; Google's
//! hosts are regional (`{location}-aiplatform.googleapis.com`, `aiplatform.googleapis.com` for
//! `global`, `aiplatform.{us|eu}.rep.googleapis.com` for the multi-regions), so a base URL on
//! Google's domain is rewritten for the location while any other base URL (a proxy, the
//! simulator) is used as given. Pure string work: credentials are the server's business.

use crate::catalog::Protocol;
use crate::embeddings;

/// The wire format a Vertex model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Gemini,
    Anthropic,
    OpenAi,
}

/// Which wire format `upstream_model` speaks on Vertex AI.
pub fn dialect(upstream_model: &str) -> Dialect {
    let model = upstream_model
        .rsplit_once("/models/")
        .map_or(upstream_model, |(_, m)| m);
    if model.starts_with("claude") {
        Dialect::Anthropic
    } else if model.ends_with("-maas") || model.contains('/') {
        Dialect::OpenAi
    } else {
        Dialect::Gemini
    }
}

/// The Vertex location an endpoint tagged `tag` is served from. A tag names a location after
/// the provider slug (`google-vertex/europe-west4`); `europe` is taken as `europe-west1`, the
/// location Google lists first for Europe. Untagged endpoints use `default`.
pub fn location<'a>(tag: &'a str, default: &'a str) -> &'a str {
    match tag.split_once('/').map(|(_, l)| l) {
        Some("europe") => "europe-west1",
        Some(l) if !l.is_empty() => l,
        _ => default,
    }
}

/// `base` rewritten for `location` when it is a Google Vertex host; otherwise `base` unchanged.
pub fn regional_base(base: &str, location: &str) -> String {
    let Some(rest) = base.strip_prefix("https://") else {
        return base.to_owned();
    };
    let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
    if !(host.ends_with("aiplatform.googleapis.com") || host.ends_with(".rep.googleapis.com")) {
        return base.to_owned();
    }
    let host = match location {
        "global" => "aiplatform.googleapis.com".to_owned(),
        "us" | "eu" => format!("aiplatform.{location}.rep.googleapis.com"),
        l => format!("{l}-aiplatform.googleapis.com"),
    };
    if path.is_empty() {
        format!("https://{host}")
    } else {
        format!("https://{host}/{path}")
    }
}

/// Where one Vertex model lives: the regional base URL, project and location.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    /// The provider's base URL, ending in the API version (`.../v1`).
    pub base: &'a str,
    pub project: &'a str,
    pub location: &'a str,
}

impl Site<'_> {
    fn prefix(&self) -> String {
        format!(
            "{}/projects/{}/locations/{}",
            regional_base(self.base, self.location),
            self.project,
            self.location
        )
    }

    /// The chat URL for `upstream_model`, streaming or not.
    pub fn chat_url(&self, upstream_model: &str, stream: bool) -> String {
        let prefix = self.prefix();
        match dialect(upstream_model) {
            Dialect::Gemini => format!(
                "{prefix}/publishers/google{}",
                super::gemini::path(upstream_model, stream)
            ),
            Dialect::Anthropic => {
                let method = if stream {
                    "streamRawPredict"
                } else {
                    "rawPredict"
                };
                format!("{prefix}/publishers/anthropic/models/{upstream_model}:{method}")
            }
            Dialect::OpenAi => format!("{prefix}/endpoints/openapi/chat/completions"),
        }
    }

    /// The embeddings URL for `upstream_model` (Google's text embedding models, `:predict`).
    pub fn embeddings_url(&self, upstream_model: &str) -> String {
        format!(
            "{}{}",
            self.prefix(),
            embeddings::path(Protocol::Vertex, upstream_model)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: Site<'static> = Site {
        base: "https://us-central1-aiplatform.googleapis.com/v1",
        project: "p1",
        location: "us-east5",
    };

    #[test]
    fn dialects_follow_the_model() {
        assert_eq!(dialect("gemini-2.5-pro"), Dialect::Gemini);
        assert_eq!(dialect("gemma-4-26b-a4b-it"), Dialect::Gemini);
        assert_eq!(dialect("claude-sonnet-4@20250514"), Dialect::Anthropic);
        assert_eq!(dialect("meta/llama-3.3-70b-instruct-maas"), Dialect::OpenAi);
        assert_eq!(
            dialect("qwen3-coder-480b-a35b-instruct-maas"),
            Dialect::OpenAi
        );
    }

    #[test]
    fn locations_come_from_the_tag() {
        assert_eq!(
            location("google-vertex/us-east5", "us-central1"),
            "us-east5"
        );
        assert_eq!(location("google-vertex/global", "us-central1"), "global");
        assert_eq!(
            location("google-vertex/europe", "us-central1"),
            "europe-west1"
        );
        assert_eq!(location("google-vertex", "us-central1"), "us-central1");
    }

    #[test]
    fn google_hosts_are_regional_and_others_kept() {
        assert_eq!(
            regional_base("https://us-central1-aiplatform.googleapis.com/v1", "global"),
            "https://aiplatform.googleapis.com/v1"
        );
        assert_eq!(
            regional_base("https://us-central1-aiplatform.googleapis.com/v1", "eu"),
            "https://aiplatform.eu.rep.googleapis.com/v1"
        );
        assert_eq!(
            regional_base("https://aiplatform.googleapis.com/v1", "europe-west4"),
            "https://europe-west4-aiplatform.googleapis.com/v1"
        );
        assert_eq!(
            regional_base("http://127.0.0.1:9/vertex/v1", "europe-west4"),
            "http://127.0.0.1:9/vertex/v1"
        );
    }

    /// Claude on Vertex: the Messages body without `model`, with Vertex's `anthropic_version`.
    #[test]
    fn claude_bodies_name_the_vertex_version_not_the_model() {
        let serde_json::Value::Object(map) = serde_json::json!({
            "model": "anthropic/claude-sonnet-4.5", "max_tokens": 100, "stream": true,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
        }) else {
            unreachable!()
        };
        let req = crate::chat::ChatRequest::from_map(map).unwrap();
        let body: serde_json::Value = serde_json::from_slice(
            &super::super::anthropic::vertex_request_body(&req, 8192).unwrap(),
        )
        .unwrap();
        let direct: serde_json::Value = serde_json::from_slice(
            &super::super::anthropic::request_body(&req, "claude-sonnet-4-5@20250929", 8192)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(body["anthropic_version"], "vertex-2023-10-16");
        assert!(body.get("model").is_none(), "{body}");
        let mut without = direct.as_object().unwrap().clone();
        without.remove("model");
        let mut vertex = body.as_object().unwrap().clone();
        vertex.remove("anthropic_version");
        assert_eq!(
            vertex, without,
            "otherwise the same body as Anthropic's API"
        );
        assert_eq!(body["stream"], true);
        assert!(body["system"].to_string().contains("Be brief."));
    }

    #[test]
    fn urls_per_dialect() {
        let p = "https://us-east5-aiplatform.googleapis.com/v1/projects/p1/locations/us-east5";
        assert_eq!(
            SITE.chat_url("gemini-2.5-pro", true),
            format!("{p}/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse")
        );
        assert_eq!(
            SITE.chat_url("claude-sonnet-4@20250514", false),
            format!("{p}/publishers/anthropic/models/claude-sonnet-4@20250514:rawPredict")
        );
        assert_eq!(
            SITE.chat_url("claude-sonnet-4@20250514", true),
            format!("{p}/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict")
        );
        assert_eq!(
            SITE.chat_url("openai/gpt-oss-120b-maas", true),
            format!("{p}/endpoints/openapi/chat/completions")
        );
    }
}
