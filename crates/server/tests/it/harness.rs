//! The test harness: a simulator, a gateway in front of it, a funded account and its keys.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchyard_core::money::Money;
use switchyard_server::config::{Config, Overrides};
use switchyard_server::{create_key, unix_ms, Gateway};
use switchyard_store::Store;
use tokio::net::TcpListener;

pub struct Harness {
    pub gateway: String,
    pub sim: String,
    pub key: String,
    pub management_key: String,
    pub account: String,
    pub store: Store,
    pub http: reqwest::Client,
    /// The gateway's shared state, for assertions on in-memory accounting.
    pub state: Arc<switchyard_server::AppState>,
    _stop: tokio::sync::broadcast::Sender<()>,
}

pub struct Options {
    pub credits: &'static str,
    pub max_body_bytes: usize,
    // --- BYOK (tests/it/byok.rs): `[byok]` with BYOK_TEST_KEY when set.
    pub byok: bool,
    /// More TOML appended to the generated config (e.g. `[limits]`).
    pub extra_config: &'static str,
    /// A clock the test moves; `None` = the real time.
    pub clock: Option<Arc<AtomicI64>>,
    /// A fresh PostgreSQL database on the server of `SWITCHYARD_TEST_POSTGRES_URL` instead of SQLite.
    pub postgres: bool,
    /// Also enable Google AI Studio, Cohere and Azure (Azure serves `openai/gpt-4o-mini` too, so
    /// tests that expect OpenAI for it leave this off).
    pub native: bool,
    /// Also enable Google Vertex AI (a service account whose tokens come from the simulator) and
    /// Amazon Bedrock (SigV4 with the simulator's test keys). Both serve Claude and open models
    /// too, so tests that expect another provider for those leave this off.
    pub cloud: bool,
}

/// The simulator's one AWS credential (see the simulator's Bedrock module).
pub const SIM_AWS_ACCESS_KEY_ID: &str = "AKIDSWITCHYARDTEST";
pub const SIM_AWS_SECRET: &str = "switchyard/test/secret/key/EXAMPLE";

/// The test service account, with its token endpoint moved to the simulator; returns its path.
pub fn service_account_file(sim: &str, upstream: &str) -> String {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/vertex-service-account.json"
    );
    let mut account: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    account["token_uri"] = json!(format!("{sim}/{upstream}/token"));
    let path = std::path::Path::new(&temp_db()).with_extension("sa.json");
    std::fs::write(&path, account.to_string()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The `[byok] encryption_key` of harnesses started with `byok: true`.
pub const BYOK_TEST_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

impl Default for Options {
    fn default() -> Options {
        Options {
            credits: "10",
            max_body_bytes: 64 * 1024,
            byok: false,
            extra_config: "",
            clock: None,
            // scripts/test.sh runs this whole suite a second time on PostgreSQL.
            postgres: std::env::var("SWITCHYARD_IT_DATABASE").is_ok_and(|v| v == "postgres"),
            native: false,
            cloud: false,
        }
    }
}

fn temp_db() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let path =
        std::env::temp_dir().join(format!("switchyard-it-{}-{nanos}.db", std::process::id()));
    path.to_str().unwrap().to_owned()
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Harness {
        let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
        let sim_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim_addr = sim_listener.local_addr().unwrap();
        let mut sim_stop = stop.subscribe();
        tokio::spawn(switchyard_simulator::serve(sim_listener, async move {
            let _ = sim_stop.recv().await;
        }));

        let db = if options.postgres {
            let admin = std::env::var("SWITCHYARD_TEST_POSTGRES_URL")
                .expect("checked by postgres_available");
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let name = format!("sy_it_{}_{nanos}", std::process::id());
            Store::create_postgres_database(&admin, &name)
                .await
                .unwrap()
        } else {
            temp_db()
        };
        let mut text = format!(
            "database = \"{db}\"\nkeepalive_ms = 100\nfirst_byte_timeout_ms = 2000\nidle_timeout_ms = 2000\nmax_body_bytes = {}\n",
            options.max_body_bytes
        );
        text.push_str(options.extra_config);
        text.push('\n');
        let mut providers = vec![
            ("openai", "/v1"),
            ("deepinfra", "/v1"),
            ("groq", "/v1"),
            ("together", "/v1"),
            ("mistral", "/v1"),
            ("anthropic", "/v1"),
        ];
        if options.native {
            providers.extend([
                ("google-ai-studio", "/v1beta"),
                ("cohere", "/v2"),
                ("azure", "/openai"),
            ]);
        }
        for (slug, path) in providers {
            text.push_str(&format!(
                "[providers.{slug}]\nbase_url = \"http://{sim_addr}/{slug}{path}\"\napi_key = \"sim-key\"\n"
            ));
        }
        if options.cloud {
            let sa = service_account_file(&format!("http://{sim_addr}"), "google-vertex");
            text.push_str(&format!(
                "[providers.google-vertex]\nbase_url = \"http://{sim_addr}/google-vertex/v1\"\ncredentials_file = \"{sa}\"\n\
                 [providers.amazon-bedrock]\nbase_url = \"http://{sim_addr}/amazon-bedrock\"\n\
                 access_key_id = \"{SIM_AWS_ACCESS_KEY_ID}\"\nsecret_access_key = \"{SIM_AWS_SECRET}\"\n"
            ));
        }
        if options.byok {
            text.push_str(&format!(
                "[byok]\nencryption_key = \"{BYOK_TEST_KEY}\"\nfee_percent = 5\n"
            ));
        }
        let env = |_: &str| None;
        let config = Config::from_toml(&text, &env, &Overrides::default()).unwrap();
        let store = Store::connect(&db).await.unwrap();
        let account = "acct_test".to_owned();
        store
            .create_account(&account, "test", unix_ms())
            .await
            .unwrap();
        let credits = Money::parse_usd(options.credits).unwrap();
        if credits > Money::ZERO {
            store
                .grant_credits(&account, credits, None, unix_ms())
                .await
                .unwrap();
        }
        let key = create_key(&store, &account, "test", false, None)
            .await
            .unwrap()
            .key;
        let management_key = create_key(&store, &account, "admin", true, None)
            .await
            .unwrap()
            .key;

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gateway = format!("http://{}", listener.local_addr().unwrap());
        let gw = match options.clock.clone() {
            Some(clock) => {
                let clock: switchyard_server::Clock =
                    Arc::new(move || clock.load(Ordering::SeqCst));
                Gateway::with_clock(config, store.clone(), clock).unwrap()
            }
            None => Gateway::new(config, store.clone()).unwrap(),
        };
        let state = gw.state().clone();
        let mut gw_stop = stop.subscribe();
        tokio::spawn(gw.serve(listener, async move {
            let _ = gw_stop.recv().await;
        }));
        Harness {
            gateway,
            sim: format!("http://{sim_addr}"),
            key,
            management_key,
            account,
            store,
            http: reqwest::Client::new(),
            state,
            _stop: stop,
        }
    }

    /// Signals graceful shutdown to the gateway and the simulator.
    pub fn shutdown(&self) {
        let _ = self._stop.send(());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
    }

    /// POSTs a chat request with the inference key.
    pub async fn chat(&self, body: Value) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/chat/completions"))
            .bearer_auth(&self.key)
            .header("HTTP-Referer", "https://example.test")
            .header("X-Title", "Harness")
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Scripts the simulated upstream named `upstream`.
    pub async fn sim_post(&self, upstream: &str, what: &str, body: Value) {
        let response = self
            .http
            .post(format!("{}/_sim/{upstream}/{what}", self.sim))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "simulator refused {what}: {}",
            response.text().await.unwrap()
        );
    }

    pub async fn sim_requests(&self, upstream: &str) -> Vec<Value> {
        let response = self
            .http
            .get(format!("{}/_sim/{upstream}/requests", self.sim))
            .send()
            .await
            .unwrap();
        response.json::<Vec<Value>>().await.unwrap()
    }

    /// The generation record, waiting for it to be queued (the relay finishes after the response).
    pub async fn generation(&self, id: &str) -> Value {
        for _ in 0..100 {
            let (status, body) = self
                .get(&format!("/api/v1/generation?id={id}"), &self.key)
                .await;
            if status == 200 {
                return body["data"].clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("generation {id} never appeared");
    }

    /// The account's usage (USD) as the gateway reports it.
    pub async fn usage(&self) -> f64 {
        let (status, body) = self.get("/api/v1/credits", &self.management_key).await;
        assert_eq!(status, 200, "{body}");
        body["data"]["total_usage"].as_f64().unwrap()
    }

    /// The account's usage as written to the database, once the writer has caught up.
    pub async fn stored_usage_nanos(&self, want: i64) -> i64 {
        let mut last = 0;
        for _ in 0..100 {
            last = self
                .store
                .account(&self.account)
                .await
                .unwrap()
                .unwrap()
                .total_usage
                .nanos();
            if last == want {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        last
    }
}

impl Harness {
    /// A key's charged usage (nano-dollars) in the database, once the writer has caught up.
    pub async fn stored_key_usage(&self, hash: &str) -> i64 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.store
            .key_by_hash(hash)
            .await
            .unwrap()
            .unwrap()
            .usage
            .nanos()
    }
}

/// Whether PostgreSQL tests can run; prints a SKIP line when they cannot.
pub fn postgres_available(test: &str) -> bool {
    match std::env::var("SWITCHYARD_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => true,
        _ => {
            use std::io::Write;
            let line = format!("SKIP postgres: {test} (SWITCHYARD_TEST_POSTGRES_URL is not set; scripts/test.sh sets it)\n");
            let _ = std::io::stderr().write_all(line.as_bytes());
            false
        }
    }
}

/// The `X-Generation-Id` of an inference response (every one carries it).
pub fn generation_id(response: &reqwest::Response) -> String {
    response.headers()["x-generation-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

/// Cost in nano-dollars of `usage` at a per-token prompt and completion price (in pico-dollars).
pub fn nanos(
    prompt_tokens: u64,
    completion_tokens: u64,
    prompt_picos: i64,
    completion_picos: i64,
) -> i64 {
    let picos = prompt_tokens as i128 * prompt_picos as i128
        + completion_tokens as i128 * completion_picos as i128;
    ((picos + 500) / 1000) as i64
}
