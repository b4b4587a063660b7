//! The discovery API over the live catalog: only enabled providers' models, OpenRouter's shapes.

use crate::harness::Harness;
use serde_json::Value;

async fn get(h: &Harness, path: &str) -> (u16, Value) {
    let response = h.http.get(h.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn models_list_count_and_paging() {
    let h = Harness::start().await;
    let (status, all) = get(&h, "/api/v1/models").await;
    assert_eq!(status, 200);
    let models = all["data"].as_array().unwrap();
    assert_eq!(all["total_count"].as_u64().unwrap() as usize, models.len());
    assert!(all["links"]["next"].is_null());
    let enabled = [
        "openai",
        "deepinfra",
        "groq",
        "together",
        "mistral",
        "anthropic",
    ];
    // Every listed model is served by an enabled provider, and the list is not empty.
    assert!(models.iter().any(|m| m["id"] == "openai/gpt-4o-mini"));
    for m in models {
        let id = m["id"].as_str().unwrap();
        let (status, endpoints) = get(&h, &format!("/api/v1/models/{id}/endpoints")).await;
        assert_eq!(status, 200, "{id}");
        let endpoints = endpoints["data"]["endpoints"].as_array().unwrap();
        assert!(!endpoints.is_empty());
        for e in endpoints {
            let tag = e["tag"].as_str().unwrap();
            assert!(
                enabled.contains(&tag.split('/').next().unwrap()),
                "{id}: {tag}"
            );
        }
    }
    let (_, count) = get(&h, "/api/v1/models/count").await;
    assert_eq!(
        count["data"]["count"].as_u64().unwrap() as usize,
        models.len()
    );

    let (_, page) = get(&h, "/api/v1/models?limit=2&offset=1").await;
    assert_eq!(
        page["data"].as_array().unwrap().len(),
        2.min(models.len().saturating_sub(1))
    );
    assert_eq!(page["data"][0]["id"], models[1]["id"]);
    if models.len() > 3 {
        assert_eq!(page["links"]["next"], "/api/v1/models?offset=3&limit=2");
    }
    let (status, bad) = get(&h, "/api/v1/models?limit=0").await;
    assert_eq!(status, 400);
    assert_eq!(bad["error"]["code"], 400);
}

#[tokio::test]
async fn model_endpoints_providers_and_errors() {
    let h = Harness::start().await;
    let (status, m) = get(&h, "/api/v1/model/openai/gpt-4o-mini").await;
    assert_eq!(status, 200);
    assert_eq!(m["data"]["id"], "openai/gpt-4o-mini");
    assert_eq!(m["data"]["pricing"]["prompt"], "0.00000015");
    let (status, variant) = get(&h, "/api/v1/model/openai/gpt-4o-mini:nitro").await;
    assert_eq!(status, 200);
    assert_eq!(variant["data"]["id"], "openai/gpt-4o-mini");

    let (status, e) = get(&h, "/api/v1/models/openai/gpt-4o-mini/endpoints").await;
    assert_eq!(status, 200);
    let openai = e["data"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["tag"] == "openai")
        .cloned()
        .unwrap();
    assert_eq!(openai["provider_name"], "OpenAI");
    assert!(openai["latency_last_30m"].is_null());

    let (status, providers) = get(&h, "/api/v1/providers").await;
    assert_eq!(status, 200);
    let slugs: Vec<&str> = providers["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap())
        .collect();
    assert!(slugs.contains(&"openai") && slugs.contains(&"groq"));
    assert!(
        slugs.len() <= 6,
        "only enabled providers are listed: {slugs:?}"
    );

    let (status, err) = get(&h, "/api/v1/model/acme/none").await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], 404);
    let (status, _) = get(&h, "/api/v1/endpoints/zdr").await;
    assert_eq!(status, 200);
    let (status, _) = get(&h, "/api/v1/embeddings/models").await;
    assert_eq!(status, 200);

    let (status, _) = get(&h, "/api/v1/models/user").await;
    assert_eq!(status, 401);
    let (status, user) = h.get("/api/v1/models/user", &h.key).await;
    assert_eq!(status, 200);
    assert_eq!(
        user["total_count"],
        get(&h, "/api/v1/models").await.1["total_count"]
    );
}

#[tokio::test]
async fn endpoints_report_live_uptime_latency_and_throughput() {
    let h = Harness::start().await;
    let llama = "meta-llama/llama-3.3-70b-instruct";
    let path = format!("/api/v1/models/{llama}/endpoints");
    let groq = |body: &Value| {
        body["data"]["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["provider_name"] == "Groq")
            .cloned()
            .unwrap()
    };
    let (_, before) = get(&h, &path).await;
    assert!(groq(&before)["uptime_last_5m"].is_null());
    assert!(groq(&before)["latency_last_30m"].is_null());

    // Groq: one failure and three successes (a paced simulator so throughput is measurable).
    h.sim_post(
        "groq",
        "behaviour",
        serde_json::json!({"ttft_ms": 30, "tokens_per_s": 400, "output_tokens": 12}),
    )
    .await;
    h.sim_post("groq", "faults", serde_json::json!([{"status": 500}]))
        .await;
    for stream in [false, false, true, false] {
        let response = h
            .chat(serde_json::json!({"model": llama, "stream": stream, "messages": crate::harness::user("hi"),
                "provider": {"only": ["groq"]}}))
            .await;
        let _ = response.text().await;
    }
    let (status, after) = get(&h, &path).await;
    assert_eq!(status, 200);
    let e = groq(&after);
    for window in ["uptime_last_5m", "uptime_last_30m", "uptime_last_1d"] {
        assert_eq!(e[window], 75.0, "{window}: {e}");
    }
    let latency = &e["latency_last_30m"];
    let p50 = latency["p50"].as_f64().unwrap();
    assert!(
        (25.0..2000.0).contains(&p50),
        "time to first token {latency}"
    );
    assert!(latency["p99"].as_f64().unwrap() >= p50);
    let throughput = e["throughput_last_30m"]["p50"].as_f64().unwrap();
    assert!(throughput > 0.0, "{e}");
    // Endpoints that served nothing stay null.
    let deepinfra = after["data"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["provider_name"] == "DeepInfra")
        .unwrap();
    assert!(deepinfra["uptime_last_1d"].is_null());
}
