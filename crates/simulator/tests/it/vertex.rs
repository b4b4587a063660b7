//! End-to-end tests of the simulator's Vertex AI surface over real HTTP: the service-account
//! token endpoint and the control API that observes it, bearer-token enforcement on every Vertex
//! route, Claude's rawPredict and streamRawPredict, the OpenAI-compatible MaaS endpoint, text
//! embeddings (`:predict`, `:embedContent`) and regional locations in the request log.

use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// JSON bodies without reqwest's `json` feature.
trait JsonRequest {
    fn json_body(self, body: &Value) -> Self;
}

impl JsonRequest for reqwest::RequestBuilder {
    fn json_body(self, body: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(body.to_string())
    }
}

trait JsonResponse {
    async fn json_value(self) -> Value;
}

impl JsonResponse for reqwest::Response {
    async fn json_value(self) -> Value {
        serde_json::from_slice(&self.bytes().await.unwrap()).unwrap()
    }
}

/// A simulator on an ephemeral port, living as long as the test's runtime.
struct Sim {
    base: String,
    client: reqwest::Client,
}

async fn start() -> Sim {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(switchyard_simulator::serve(
        listener,
        std::future::pending(),
    ));
    Sim {
        base,
        client: reqwest::Client::new(),
    }
}

const PROJECT: &str = "switchyard-test";
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
const JWT_BEARER: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";
const GEMINI: &str = "gemini-sim";
const CLAUDE: &str = "claude-sonnet-4-5@20250929";

impl Sim {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `/{upstream}/v1/projects/{PROJECT}/locations/{location}/{rest}`.
    fn vertex_path(upstream: &str, location: &str, rest: &str) -> String {
        format!("/{upstream}/v1/projects/{PROJECT}/locations/{location}/{rest}")
    }

    async fn post_bearer(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json_body(body)
            .send()
            .await
            .unwrap()
    }

    /// Posts a form to the token endpoint.
    async fn token_form(&self, upstream: &str, form: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/{upstream}/token")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send()
            .await
            .unwrap()
    }

    /// Exchanges a good assertion for an access token.
    async fn access_token(&self, upstream: &str) -> String {
        let response = self
            .token_form(upstream, &grant(&assertion(&claims(now()))))
            .await;
        assert_eq!(response.status(), 200);
        response.json_value().await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn control(&self, upstream: &str, what: &str, body: &Value) -> Value {
        let response = self
            .client
            .post(self.url(&format!("/_sim/{upstream}/{what}")))
            .json_body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json_value().await
    }

    async fn get_json(&self, path: &str) -> Value {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json_value().await
    }

    async fn tokens(&self, upstream: &str) -> Value {
        self.get_json(&format!("/_sim/{upstream}/tokens")).await
    }

    async fn recorded(&self, upstream: &str) -> Vec<Value> {
        self.get_json(&format!("/_sim/{upstream}/requests"))
            .await
            .as_array()
            .unwrap()
            .clone()
    }

    /// `generateContent` on a Gemini model through Vertex AI with `token`.
    async fn vertex_generate(&self, upstream: &str, token: &str) -> reqwest::Response {
        let path = Sim::vertex_path(
            upstream,
            "us-central1",
            &format!("publishers/google/models/{GEMINI}:generateContent"),
        );
        self.post_bearer(&path, token, &gemini_body()).await
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Unpadded base64url.
fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A service account's claims, issued at `iat`, as Google's auth libraries build them.
fn claims(iat: i64) -> Value {
    json!({
        "iss": "gateway@switchyard-test.iam.gserviceaccount.com",
        "scope": CLOUD_PLATFORM,
        "aud": "https://oauth2.googleapis.com/token",
        "iat": iat,
        "exp": iat + 3600,
    })
}

/// A JWT with `claims` and a signature that is well-formed but made up (the simulator has no
/// public key to verify it with).
fn assertion(claims: &Value) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "0123456789abcdef"});
    format!(
        "{}.{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes()),
        b64url(&[7u8; 256])
    )
}

fn grant(assertion: &str) -> String {
    format!("grant_type={JWT_BEARER}&assertion={assertion}")
}

fn gemini_body() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "Hello, world!"}]}]})
}

fn claude_body() -> Value {
    json!({
        "anthropic_version": "vertex-2023-10-16",
        "max_tokens": 256,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "Hello, world!"}]
    })
}

/// `(event, data)` pairs of a named-event SSE stream.
fn named_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut lines = e.lines();
            let event = lines.next().unwrap().strip_prefix("event: ").unwrap();
            let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
            (event.to_owned(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The OAuth token endpoint (`POST /{upstream}/token`) and `/_sim/{upstream}/tokens`.

#[tokio::test]
async fn token_exchange_issues_and_counts_tokens() {
    let sim = start().await;
    assert_eq!(sim.tokens("tok").await["issued"], 0);

    let response = sim
        .token_form("tok", &grant(&assertion(&claims(now()))))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let body = response.json_value().await;
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("ya29.sim-"), "{token}");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["token_type"], "Bearer");

    // The endpoint's own URL is a valid audience too.
    let mut own = claims(now());
    own["aud"] = json!(sim.url("/tok/token"));
    let second = sim.token_form("tok", &grant(&assertion(&own))).await;
    assert_eq!(second.status(), 200);
    let second = second.json_value().await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second, token);

    let state = sim.tokens("tok").await;
    assert_eq!(state["issued"], 2);
    assert_eq!(state["ttl_s"], 3599);
    assert_eq!(state["tokens"][0]["access_token"], token.as_str());
    assert_eq!(
        state["tokens"][0]["client_email"],
        "gateway@switchyard-test.iam.gserviceaccount.com"
    );
    assert_eq!(state["tokens"][0]["scope"], CLOUD_PLATFORM);
    assert_eq!(state["tokens"][0]["expired"], false);
    assert!(state["tokens"][0]["expires_in"].as_u64().unwrap() > 3590);

    // Token requests are in the request log, form body and all.
    let recorded = sim.recorded("tok").await;
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0]["method"], "POST");
    assert_eq!(recorded[0]["path"], "/tok/token");
    assert!(recorded[0]["body"]
        .as_str()
        .unwrap()
        .starts_with(&format!("grant_type={JWT_BEARER}&assertion=")));

    // A shorter lifetime applies to tokens issued from then on.
    let state = sim.control("tok", "tokens", &json!({"ttl_s": 60})).await;
    assert_eq!(state["ttl_s"], 60);
    let short = sim
        .token_form("tok", &grant(&assertion(&claims(now()))))
        .await;
    assert_eq!(short.json_value().await["expires_in"], 60);

    // A reset forgets them all.
    let reset = sim
        .client
        .delete(sim.url("/_sim/tok"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    let state = sim.tokens("tok").await;
    assert_eq!(state["issued"], 0);
    assert_eq!(state["tokens"], json!([]));
    assert_eq!(state["ttl_s"], 3599);
}

#[tokio::test]
async fn token_exchange_rejects_bad_grants_with_oauth_errors() {
    let sim = start().await;
    // Token requests draw no faults: this one is left for the API call after them.
    sim.control("bad", "faults", &json!([{"status": 503}]))
        .await;
    let error = |form: String| {
        let sim = &sim;
        async move {
            let response = sim.token_form("bad", &form).await;
            assert_eq!(response.status(), 400, "{form}");
            let body = response.json_value().await;
            (
                body["error"].as_str().unwrap().to_owned(),
                body["error_description"].as_str().unwrap().to_owned(),
            )
        }
    };
    let good = assertion(&claims(now()));

    let (code, description) =
        error(format!("grant_type=client_credentials&assertion={good}")).await;
    assert_eq!(code, "unsupported_grant_type");
    assert_eq!(description, "Invalid grant_type: client_credentials");
    let (code, _) = error(format!("assertion={good}")).await;
    assert_eq!(code, "unsupported_grant_type");
    let (code, description) = error(format!("grant_type={JWT_BEARER}")).await;
    assert_eq!(code, "invalid_request");
    assert_eq!(description, "Missing required parameter: assertion");

    let expired = assertion(&claims(now() - 7200));
    let (code, description) = error(grant(&expired)).await;
    assert_eq!(code, "invalid_grant");
    assert!(
        description.starts_with("Invalid JWT: Token must be a short-lived token (60 minutes)"),
        "{description}"
    );
    let mut long = claims(now());
    long["exp"] = json!(now() + 7200);
    assert!(error(grant(&assertion(&long)))
        .await
        .1
        .contains("short-lived"));
    let mut elsewhere = claims(now());
    elsewhere["aud"] = json!("https://example.com/token");
    assert_eq!(
        error(grant(&assertion(&elsewhere))).await,
        (
            "invalid_grant".to_owned(),
            "Invalid JWT: Failed audience check.".to_owned()
        )
    );
    let mut narrow = claims(now());
    narrow["scope"] = json!("https://www.googleapis.com/auth/devstorage.read_only");
    assert_eq!(error(grant(&assertion(&narrow))).await.0, "invalid_scope");
    let unsigned = good.rsplit_once('.').unwrap().0.to_owned() + ".";
    assert_eq!(
        error(grant(&unsigned)).await,
        (
            "invalid_grant".to_owned(),
            "Invalid JWT Signature.".to_owned()
        )
    );
    let hs256 = format!(
        "{}.{}",
        b64url(json!({"alg": "HS256"}).to_string().as_bytes()),
        good.split_once('.').unwrap().1
    );
    assert!(error(grant(&hs256)).await.1.contains("RS256"));
    assert_eq!(error(grant("not-a-jwt")).await.0, "invalid_grant");

    assert_eq!(sim.tokens("bad").await["issued"], 0);
    let response = sim.vertex_generate("bad", "ya29.anything").await;
    assert_eq!(response.status(), 503, "the fault was still queued");
}

// ---------------------------------------------------------------------------------------------
// Bearer tokens on every Vertex AI route.

#[tokio::test]
async fn bearer_tokens_are_enforced_once_issued() {
    let sim = start().await;
    // Before any token was issued, any bearer passes (tests that never fetch one keep working).
    assert_eq!(sim.vertex_generate("auth", "whatever").await.status(), 200);

    let token = sim.access_token("auth").await;
    assert_eq!(sim.vertex_generate("auth", &token).await.status(), 200);

    sim.control("auth", "faults", &json!([{"status": 500}]))
        .await;
    let wrong = sim.vertex_generate("auth", "ya29.not-issued").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.headers()["www-authenticate"],
        "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\""
    );
    let error = wrong.json_value().await;
    assert_eq!(error["error"]["code"], 401);
    assert_eq!(error["error"]["status"], "UNAUTHENTICATED");
    assert!(error["error"]["message"].as_str().unwrap().starts_with(
        "Request had invalid authentication credentials. Expected OAuth 2 access token"
    ));
    assert_eq!(
        error["error"]["details"][0]["reason"],
        "ACCESS_TOKEN_TYPE_UNSUPPORTED"
    );
    assert_eq!(
        error["error"]["details"][0]["metadata"]["method"],
        "google.cloud.aiplatform.v1.PredictionService.GenerateContent"
    );

    // Every Vertex route checks it, and rejections draw no fault.
    let claude = Sim::vertex_path(
        "auth",
        "us-east5",
        &format!("publishers/anthropic/models/{CLAUDE}:rawPredict"),
    );
    let rejected = sim
        .post_bearer(&claude, "ya29.not-issued", &claude_body())
        .await;
    assert_eq!(rejected.status(), 401);
    assert_eq!(
        rejected.json_value().await["error"]["status"],
        "UNAUTHENTICATED"
    );
    let maas = Sim::vertex_path("auth", "us-central1", "endpoints/openapi/chat/completions");
    let chat = json!({"model": "meta/llama-3.3-70b-instruct-maas", "messages": [{"role": "user", "content": "Hi"}]});
    assert_eq!(
        sim.post_bearer(&maas, "ya29.not-issued", &chat)
            .await
            .status(),
        401
    );
    let predict = Sim::vertex_path(
        "auth",
        "us-central1",
        "publishers/google/models/text-embedding-005:predict",
    );
    let instances = json!({"instances": [{"content": "a"}]});
    assert_eq!(
        sim.post_bearer(&predict, "ya29.not-issued", &instances)
            .await
            .status(),
        401
    );
    assert_eq!(sim.vertex_generate("auth", &token).await.status(), 500);

    // An API key (express mode) passes on the Gemini routes, whatever the bearer.
    let generate = Sim::vertex_path(
        "auth",
        "us-central1",
        &format!("publishers/google/models/{GEMINI}:generateContent"),
    );
    let express = sim
        .client
        .post(sim.url(&generate))
        .header("x-goog-api-key", "express-key")
        .json_body(&gemini_body())
        .send()
        .await
        .unwrap();
    assert_eq!(express.status(), 200);
    // But not on the OpenAI-compatible endpoint.
    let keyed = sim
        .client
        .post(sim.url(&format!("{maas}?key=express-key")))
        .bearer_auth("ya29.not-issued")
        .json_body(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), 401);

    // No credentials at all.
    let missing = sim
        .client
        .post(sim.url(&claude))
        .json_body(&claude_body())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    let error = missing.json_value().await;
    assert_eq!(
        error["error"]["details"][0]["reason"],
        "CREDENTIALS_MISSING"
    );
    assert_eq!(
        error["error"]["details"][0]["metadata"]["method"],
        "google.cloud.aiplatform.v1.PredictionService.RawPredict"
    );

    // Expiring every issued token rejects the one in hand until a new one is fetched.
    let state = sim
        .control("auth", "tokens", &json!({"expire": true}))
        .await;
    assert_eq!(state["tokens"][0]["expired"], true);
    assert_eq!(state["tokens"][0]["expires_in"], 0);
    let expired = sim.vertex_generate("auth", &token).await;
    assert_eq!(expired.status(), 401);
    assert_eq!(
        expired.json_value().await["error"]["details"][0]["reason"],
        "ACCESS_TOKEN_EXPIRED"
    );
    let fresh = sim.access_token("auth").await;
    assert_eq!(sim.vertex_generate("auth", &fresh).await.status(), 200);
    assert_eq!(sim.tokens("auth").await["issued"], 2);
}

// ---------------------------------------------------------------------------------------------
// Claude on Vertex AI (`publishers/anthropic/models/{model}:rawPredict|streamRawPredict`).

#[tokio::test]
async fn claude_raw_predict_matches_the_messages_api() {
    let sim = start().await;
    let path = Sim::vertex_path(
        "claude",
        "us-east5",
        &format!("publishers/anthropic/models/{CLAUDE}:rawPredict"),
    );
    let response = sim.post_bearer(&path, "ya29.t", &claude_body()).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("request-id"));
    let reply = response.json_value().await;
    assert!(reply["id"].as_str().unwrap().starts_with("msg_vrtx_01"));
    assert_eq!(reply["type"], "message");
    assert_eq!(reply["model"], CLAUDE);
    assert_eq!(reply["stop_reason"], "end_turn");
    // system 4 + (3 + role 1 + "Hello, world!" 4) + 3 priming the reply.
    assert_eq!(reply["usage"]["input_tokens"], 15);
    assert_eq!(reply["usage"]["output_tokens"], 16);

    // The same body on Anthropic's own API (model in the body, version in a header) answers
    // the same text.
    let mut direct = claude_body();
    direct.as_object_mut().unwrap().remove("anthropic_version");
    direct["model"] = json!(CLAUDE);
    let native = sim
        .client
        .post(sim.url("/claude/v1/messages"))
        .header("x-api-key", "sk-ant")
        .header("anthropic-version", "2023-06-01")
        .json_body(&direct)
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(native["content"], reply["content"]);
    assert!(native["id"].as_str().unwrap().starts_with("msg_01"));

    // A `model` in the body is ignored: the URL's wins. A date version (what the anthropic
    // SDK sends) is accepted.
    let mut with_model = claude_body();
    with_model["model"] = json!("claude-other");
    with_model["anthropic_version"] = json!("2023-06-01");
    let answer = sim
        .post_bearer(&path, "ya29.t", &with_model)
        .await
        .json_value()
        .await;
    assert_eq!(answer["model"], CLAUDE);
    assert_eq!(answer["content"], reply["content"]);

    // Tools answer as on the Messages API.
    let mut tools = claude_body();
    tools["messages"] = json!([{"role": "user", "content": "Please call get_weather"}]);
    tools["tools"] = json!([{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    let called = sim
        .post_bearer(&path, "ya29.t", &tools)
        .await
        .json_value()
        .await;
    assert_eq!(called["stop_reason"], "tool_use");
    assert_eq!(called["content"][0]["name"], "get_weather");

    // Token counting.
    let count = Sim::vertex_path(
        "claude",
        "us-east5",
        "publishers/anthropic/models/count-tokens:rawPredict",
    );
    let body = json!({
        "anthropic_version": "vertex-2023-10-16", "model": CLAUDE, "system": "You are terse.",
        "messages": [{"role": "user", "content": "Hello, world!"}]
    });
    let counted = sim.post_bearer(&count, "ya29.t", &body).await;
    assert_eq!(counted.status(), 200);
    assert_eq!(counted.json_value().await, json!({"input_tokens": 15}));

    let recorded = sim.recorded("claude").await;
    assert_eq!(recorded[0]["location"], "us-east5");
    assert_eq!(recorded[0]["body"], claude_body());
}

#[tokio::test]
async fn claude_stream_raw_predict_streams_anthropic_events() {
    let sim = start().await;
    let model_path = |method: &str| {
        Sim::vertex_path(
            "claude",
            "global",
            &format!("publishers/anthropic/models/{CLAUDE}:{method}"),
        )
    };
    let whole = sim
        .post_bearer(&model_path("rawPredict"), "ya29.t", &claude_body())
        .await
        .json_value()
        .await;
    let mut body = claude_body();
    body["stream"] = json!(true);
    let response = sim
        .post_bearer(&model_path("streamRawPredict"), "ya29.t", &body)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let events = named_events(&response.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    let start = &events[0].1["message"];
    assert_eq!(start["model"], CLAUDE);
    assert!(start["id"].as_str().unwrap().starts_with("msg_vrtx_01"));
    let text: String = events
        .iter()
        .filter(|(name, _)| name == "content_block_delta")
        .map(|(_, data)| data["delta"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, whole["content"][0]["text"].as_str().unwrap());
    let delta = events
        .iter()
        .find(|(name, _)| name == "message_delta")
        .unwrap();
    assert_eq!(delta.1["usage"]["output_tokens"], 16);
}

#[tokio::test]
async fn claude_on_vertex_errors() {
    let sim = start().await;
    let model_path = |method: &str| {
        Sim::vertex_path(
            "cerr",
            "us-east5",
            &format!("publishers/anthropic/models/{CLAUDE}:{method}"),
        )
    };
    let invalid = |response: reqwest::Response| async move {
        assert_eq!(response.status(), 400);
        let error = response.json_value().await;
        assert_eq!(error["type"], "error");
        assert_eq!(error["error"]["type"], "invalid_request_error");
        error["error"]["message"].as_str().unwrap().to_owned()
    };

    let mut unversioned = claude_body();
    unversioned
        .as_object_mut()
        .unwrap()
        .remove("anthropic_version");
    let message = invalid(
        sim.post_bearer(&model_path("rawPredict"), "t", &unversioned)
            .await,
    )
    .await;
    assert_eq!(message, "anthropic_version: Field required");
    let mut bedrock = claude_body();
    bedrock["anthropic_version"] = json!("bedrock-2023-05-31");
    assert!(invalid(
        sim.post_bearer(&model_path("rawPredict"), "t", &bedrock)
            .await
    )
    .await
    .contains("vertex-2023-10-16"));

    // The body's `stream` must agree with the method.
    let message = invalid(
        sim.post_bearer(&model_path("streamRawPredict"), "t", &claude_body())
            .await,
    )
    .await;
    assert!(message.starts_with("stream:"), "{message}");
    let mut streamed = claude_body();
    streamed["stream"] = json!(true);
    assert!(invalid(
        sim.post_bearer(&model_path("rawPredict"), "t", &streamed)
            .await
    )
    .await
    .starts_with("stream:"));

    // Messages API validation applies.
    let mut empty = claude_body();
    empty["messages"] = json!([]);
    assert!(invalid(
        sim.post_bearer(&model_path("rawPredict"), "t", &empty)
            .await
    )
    .await
    .starts_with("messages:"));

    let unknown = sim
        .post_bearer(&model_path("predict"), "t", &claude_body())
        .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json_value().await["error"]["status"], "NOT_FOUND");

    // Faults: Claude's own statuses in Anthropic's envelope, the front end's in Google's.
    sim.control(
        "cerr",
        "faults",
        &json!([{"status": 529}, {"status": 429, "retry_after_s": 2}]),
    )
    .await;
    let overloaded = sim
        .post_bearer(&model_path("rawPredict"), "t", &claude_body())
        .await;
    assert_eq!(overloaded.status(), 529);
    assert_eq!(
        overloaded.json_value().await["error"]["type"],
        "overloaded_error"
    );
    let limited = sim
        .post_bearer(&model_path("rawPredict"), "t", &claude_body())
        .await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "2");
    let error = limited.json_value().await;
    assert_eq!(error["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(error["error"]["details"][0]["retryDelay"], "2s");
}

// ---------------------------------------------------------------------------------------------
// The OpenAI-compatible endpoint for open and partner models (MaaS).

#[tokio::test]
async fn maas_chat_completions() {
    let sim = start().await;
    let token = sim.access_token("maas").await;
    let path = Sim::vertex_path("maas", "us-central1", "endpoints/openapi/chat/completions");
    let body = json!({
        "model": "meta/llama-3.3-70b-instruct-maas",
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello, world!"}]
    });
    let response = sim.post_bearer(&path, &token, &body).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let reply = response.json_value().await;
    assert_eq!(reply["object"], "chat.completion");
    assert_eq!(reply["model"], "meta/llama-3.3-70b-instruct-maas");
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    assert_eq!(reply["usage"]["completion_tokens"], 16);

    let mut streamed = body.clone();
    streamed["model"] = json!("qwen3-coder-480b-a35b-instruct-maas");
    streamed["stream"] = json!(true);
    let response = sim.post_bearer(&path, &token, &streamed).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(text.contains("\"model\":\"qwen3-coder-480b-a35b-instruct-maas\""));

    // The v1beta1 path and any location work alike.
    let beta = format!(
        "/maas/v1beta1/projects/{PROJECT}/locations/global/endpoints/openapi/chat/completions"
    );
    let mut gpt = body.clone();
    gpt["model"] = json!("openai/gpt-oss-120b-maas");
    assert_eq!(sim.post_bearer(&beta, &token, &gpt).await.status(), 200);

    // OpenAI-shaped validation errors; Google-shaped credential errors.
    let invalid = sim.post_bearer(&path, &token, &json!({"model": "m"})).await;
    assert_eq!(invalid.status(), 400);
    assert_eq!(
        invalid.json_value().await["error"]["type"],
        "invalid_request_error"
    );
    let missing = sim
        .client
        .post(sim.url(&path))
        .json_body(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    let error = missing.json_value().await;
    assert_eq!(error["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(
        error["error"]["details"][0]["reason"],
        "CREDENTIALS_MISSING"
    );

    let recorded = sim.recorded("maas").await;
    let locations: Vec<&str> = recorded
        .iter()
        .filter_map(|r| r["location"].as_str())
        .collect();
    assert_eq!(
        locations,
        [
            "us-central1",
            "us-central1",
            "global",
            "us-central1",
            "us-central1"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Text embeddings (`:predict`, and `:embedContent` as google-genai sends it on Vertex AI).

#[tokio::test]
async fn predict_embeddings() {
    let sim = start().await;
    let predict = |model: &str| {
        Sim::vertex_path(
            "emb",
            "us-central1",
            &format!("publishers/google/models/{model}:predict"),
        )
    };
    let body = json!({
        "instances": [
            {"content": "Hello, world!", "task_type": "RETRIEVAL_QUERY"},
            {"content": "What is the weather", "task_type": "RETRIEVAL_DOCUMENT", "title": "Weather"}
        ],
        "parameters": {"outputDimensionality": 32, "autoTruncate": true}
    });
    let response = sim
        .post_bearer(&predict("text-embedding-005"), "t", &body)
        .await;
    assert_eq!(response.status(), 200);
    let out = response.json_value().await;
    let predictions = out["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 2);
    let first = &predictions[0]["embeddings"];
    let values: Vec<f64> = first["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(values.len(), 32);
    let norm = values.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    assert_eq!(
        first["statistics"],
        json!({"token_count": 4, "truncated": false})
    );
    assert_eq!(predictions[1]["embeddings"]["statistics"]["token_count"], 4);
    // Non-whitespace characters: 12 + 16.
    assert_eq!(out["metadata"]["billableCharacterCount"], 28);
    let again = sim
        .post_bearer(&predict("text-embedding-005"), "t", &body)
        .await
        .json_value()
        .await;
    assert_eq!(again, out, "deterministic");

    let single = json!({"instances": [{"content": "x"}]});
    let gemini = sim
        .post_bearer(&predict("gemini-embedding-001"), "t", &single)
        .await
        .json_value()
        .await;
    assert_eq!(
        gemini["predictions"][0]["embeddings"]["values"]
            .as_array()
            .unwrap()
            .len(),
        3072
    );

    let bad = |model: &'static str, body: Value| {
        let sim = &sim;
        let path = predict(model);
        async move {
            let response = sim.post_bearer(&path, "t", &body).await;
            assert_eq!(response.status(), 400, "{body}");
            let error = response.json_value().await;
            assert_eq!(error["error"]["status"], "INVALID_ARGUMENT");
            error["error"]["message"].as_str().unwrap().to_owned()
        }
    };
    assert!(bad("gemini-embedding-001", body.clone())
        .await
        .contains("one instance"));
    assert!(bad(
        "text-embedding-005",
        json!({"instances": [{"content": "x"}], "parameters": {"outputDimensionality": 3072}})
    )
    .await
    .contains("outputDimensionality"));
    assert!(bad(
        "text-embedding-005",
        json!({"instances": [{"content": "x", "title": "t"}]})
    )
    .await
    .contains("RETRIEVAL_DOCUMENT"));
    assert!(bad(
        "text-embedding-005",
        json!({"instances": [{"content": "w ".repeat(3000)}], "parameters": {"autoTruncate": false}})
    )
    .await
    .contains("autoTruncate"));
    bad("text-embedding-005", json!({"instances": []})).await;

    // Over 2048 tokens with autoTruncate on (the default): cut, and said so.
    let long = json!({"instances": [{"content": "w ".repeat(3000)}]});
    let cut = sim
        .post_bearer(&predict("text-multilingual-embedding-002"), "t", &long)
        .await
        .json_value()
        .await;
    assert_eq!(
        cut["predictions"][0]["embeddings"]["statistics"],
        json!({"token_count": 2048, "truncated": true})
    );

    // `:embedContent` in Vertex's shape, as google-genai sends it for gemini models.
    let embed = Sim::vertex_path(
        "emb",
        "us-central1",
        "publishers/google/models/gemini-embedding-001:embedContent",
    );
    let request = json!({
        "content": {"parts": [{"text": "Hello, world!"}]},
        "embedContentConfig": {"taskType": "RETRIEVAL_QUERY", "outputDimensionality": 32}
    });
    let response = sim.post_bearer(&embed, "t", &request).await;
    assert_eq!(response.status(), 200);
    let out = response.json_value().await;
    assert_eq!(out["embedding"]["values"], first["values"], "same vector");
    assert_eq!(out["usageMetadata"]["promptTokenCount"], 4);
    assert_eq!(out["truncated"], false);
}

// ---------------------------------------------------------------------------------------------
// Regional shape: any location, recorded in the request log.

#[tokio::test]
async fn any_location_is_served_and_recorded() {
    let sim = start().await;
    for location in ["us-central1", "europe-west1", "global", "us", "eu"] {
        let path = Sim::vertex_path(
            "regions",
            location,
            &format!("publishers/google/models/{GEMINI}:generateContent"),
        );
        let response = sim.post_bearer(&path, "ya29.t", &gemini_body()).await;
        assert_eq!(response.status(), 200, "{location}");
    }
    let locations: Vec<Value> = sim
        .recorded("regions")
        .await
        .iter()
        .map(|r| r["location"].clone())
        .collect();
    assert_eq!(
        locations,
        ["us-central1", "europe-west1", "global", "us", "eu"].map(|l| json!(l))
    );
    // Paths that name no location carry none.
    let plain = sim
        .client
        .post(sim.url(&format!("/regions/v1beta/models/{GEMINI}:generateContent")))
        .header("x-goog-api-key", "k")
        .json_body(&gemini_body())
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    let recorded = sim.recorded("regions").await;
    assert!(recorded.last().unwrap().get("location").is_none());
}
