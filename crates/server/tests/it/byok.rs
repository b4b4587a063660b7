//! BYOK credentials through `/api/v1/byok`: management keys only, secrets never echoed, encrypted
//! at rest and bound to their account.

use crate::harness::{Harness, Options, BYOK_TEST_KEY};
use serde_json::{json, Value};
use switchyard_server::byok;
use switchyard_server::config::EncryptionKey;
use switchyard_store::ByokRow;

const SECRET: &str = "sk-proj-0123456789abcdefghijklmnopWXYZ";
const OTHER_SECRET: &str = "gsk_live_abcdefghijklmnop9876";

async fn byok_harness() -> Harness {
    Harness::with(Options {
        byok: true,
        ..Options::default()
    })
    .await
}

async fn send(
    h: &Harness,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut request = match method {
        "POST" => h.http.post(h.url(path)),
        "DELETE" => h.http.delete(h.url(path)),
        _ => h.http.get(h.url(path)),
    }
    .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn test_key() -> EncryptionKey {
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&BYOK_TEST_KEY[2 * i..2 * i + 2], 16).unwrap();
    }
    EncryptionKey(key)
}

#[tokio::test]
async fn credentials_crud_for_management_keys_only() {
    let h = byok_harness().await;
    let m = h.management_key.clone();

    // Inference keys and no key at all are refused on every verb.
    let body = json!({"provider": "openai", "key": SECRET});
    for (method, path) in [
        ("GET", "/api/v1/byok"),
        ("POST", "/api/v1/byok"),
        ("DELETE", "/api/v1/byok/x"),
    ] {
        let (status, text) = send(&h, method, path, &h.key, Some(body.clone())).await;
        assert_eq!(status, 403, "{method} {path}: {text}");
        assert!(text.contains("management key"), "{text}");
    }
    let response = h.http.get(h.url("/api/v1/byok")).send().await.unwrap();
    assert_eq!(response.status(), 401);

    let (status, text) = send(&h, "GET", "/api/v1/byok", &m, None).await;
    assert_eq!(
        (status, parse(&text)),
        (200, json!({"data": [], "total_count": 0}))
    );

    // Create with OpenRouter's field name `key`, and with `api_key`.
    let (status, text) = send(
        &h,
        "POST",
        "/api/v1/byok",
        &m,
        Some(json!({"provider": "openai", "key": SECRET, "name": "prod"})),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    assert!(
        !text.contains(SECRET) && !text.contains("0123456789abcdef"),
        "{text}"
    );
    let created = parse(&text)["data"].clone();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    assert_eq!(created["provider"], "openai");
    assert_eq!(created["name"], "prod");
    assert_eq!(created["label"], "sk-...WXYZ");
    assert_eq!(created["disabled"], false);
    assert_eq!(created["sort_order"], 0);
    assert!(created["created_at"].as_str().unwrap().ends_with("+00:00"));
    for field in [
        "allowed_models",
        "allowed_api_key_hashes",
        "allowed_user_ids",
        "workspace_id",
    ] {
        assert!(created[field].is_null(), "{field}");
    }
    let (status, text) = send(
        &h,
        "POST",
        "/api/v1/byok",
        &m,
        Some(json!({"provider": "openai", "api_key": OTHER_SECRET})),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let second = parse(&text)["data"].clone();
    assert_eq!(second["name"], Value::Null);
    assert_eq!(second["sort_order"], 1);

    // Bad requests say what to fix.
    for (body, message) in [
        (
            json!({"provider": "nope", "key": SECRET}),
            "unknown provider `nope`",
        ),
        (json!({"key": SECRET}), "`provider` is required"),
        (json!({"provider": "openai"}), "`key`"),
        (json!({"provider": "openai", "key": "  "}), "empty"),
        (json!(["not", "an", "object"]), "JSON object"),
    ] {
        let (status, text) = send(&h, "POST", "/api/v1/byok", &m, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(message), "{body}: {text}");
        assert!(!text.contains(SECRET), "{text}");
    }

    // Listing and fetching never show the secrets.
    let (status, text) = send(&h, "GET", "/api/v1/byok", &m, None).await;
    assert_eq!(status, 200);
    assert!(
        !text.contains(SECRET) && !text.contains(OTHER_SECRET),
        "{text}"
    );
    let list = parse(&text);
    assert_eq!(list["total_count"], 2);
    assert_eq!(list["data"][0]["id"], id.as_str());
    let (_, text) = send(&h, "GET", "/api/v1/byok?provider=groq", &m, None).await;
    assert_eq!(parse(&text)["total_count"], 0);
    let (_, text) = send(&h, "GET", "/api/v1/byok?limit=1&offset=1", &m, None).await;
    assert_eq!(parse(&text)["data"][0]["id"], second["id"]);
    let (status, text) = send(&h, "GET", "/api/v1/byok?limit=500", &m, None).await;
    assert_eq!(status, 400, "{text}");
    let (status, text) = send(&h, "GET", &format!("/api/v1/byok/{id}"), &m, None).await;
    assert_eq!(status, 200);
    assert_eq!(parse(&text)["data"]["label"], "sk-...WXYZ");

    // At rest: encrypted, and bound to the account and provider.
    let rows = h.store.list_byok(&h.account).await.unwrap();
    assert_eq!(rows.len(), 2);
    let row = rows.iter().find(|r| r.id == id).unwrap();
    assert!(!row.ciphertext.contains(SECRET));
    let key = test_key();
    let opened = byok::decrypt(&key, &h.account, "openai", &row.ciphertext).unwrap();
    assert_eq!(opened.expose(), SECRET);
    assert!(byok::decrypt(&key, "acct_other", "openai", &row.ciphertext).is_err());
    assert!(byok::decrypt(&key, &h.account, "groq", &row.ciphertext).is_err());

    // Another account's credential is invisible and cannot be deleted from here.
    h.store
        .create_account("acct_other", "other", 0)
        .await
        .unwrap();
    let foreign = ByokRow {
        id: byok::new_id(),
        account_id: "acct_other".into(),
        provider: "openai".into(),
        name: String::new(),
        ciphertext: byok::encrypt(&key, "acct_other", "openai", OTHER_SECRET),
        label: byok::label(OTHER_SECRET),
        disabled: false,
        created_at_ms: 0,
    };
    h.store.insert_byok(&foreign).await.unwrap();
    let foreign_path = format!("/api/v1/byok/{}", foreign.id);
    assert_eq!(send(&h, "GET", &foreign_path, &m, None).await.0, 404);
    assert_eq!(send(&h, "DELETE", &foreign_path, &m, None).await.0, 404);
    assert_eq!(h.store.list_byok("acct_other").await.unwrap().len(), 1);

    // Delete: once, then 404.
    let path = format!("/api/v1/byok/{id}");
    let (status, text) = send(&h, "DELETE", &path, &m, None).await;
    assert_eq!((status, parse(&text)), (200, json!({"deleted": true})));
    let (status, text) = send(&h, "DELETE", &path, &m, None).await;
    assert_eq!(status, 404, "{text}");
    assert_eq!(parse(&text)["error"]["code"], 404);
    assert_eq!(send(&h, "GET", &path, &m, None).await.0, 404);
    assert_eq!(
        send(&h, "DELETE", "/api/v1/byok/no-such-id", &m, None)
            .await
            .0,
        404
    );
    let (_, text) = send(&h, "GET", "/v1/byok", &m, None).await;
    assert_eq!(parse(&text)["total_count"], 1);
}

#[tokio::test]
async fn creating_without_an_encryption_key_says_how_to_configure_it() {
    let h = Harness::start().await;
    let (status, text) = send(
        &h,
        "POST",
        "/api/v1/byok",
        &h.management_key,
        Some(json!({"provider": "openai", "key": SECRET})),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("set [byok] encryption_key"), "{text}");
    assert!(!text.contains(SECRET));
    let (status, text) = send(&h, "GET", "/api/v1/byok", &h.management_key, None).await;
    assert_eq!(
        (status, parse(&text)["total_count"].clone()),
        (200, json!(0))
    );
}

#[tokio::test]
async fn byok_requests_use_the_accounts_key_and_pay_the_fee() {
    let h = byok_harness().await;
    let (status, _) = send(
        &h,
        "POST",
        "/api/v1/byok",
        &h.management_key,
        Some(json!({"provider": "openai", "api_key": SECRET})),
    )
    .await;
    assert_eq!(status, 201);
    let response = h
        .chat(
            json!({"model": "openai/gpt-4o-mini", "messages": crate::harness::user("hello byok")}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let id = crate::harness::generation_id(&response);
    let body: Value = response.json().await.unwrap();
    // The upstream saw the account's key, not the platform's.
    let sent = h.sim_requests("openai").await;
    assert_eq!(
        sent.last().unwrap()["headers"]["authorization"],
        format!("Bearer {SECRET}")
    );
    let usage = &body["usage"];
    assert_eq!(usage["is_byok"], true);
    let (p, c) = (
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    );
    let equivalent = crate::harness::nanos(p, c, 150_000, 600_000);
    let fee = (equivalent * 5 + 50) / 100;
    let nanos = |v: &Value| (v.as_f64().unwrap() * 1e9).round() as i64;
    assert_eq!(nanos(&usage["cost"]), fee, "5% of the equivalent price");
    assert_eq!(
        nanos(&usage["cost_details"]["upstream_inference_cost"]),
        equivalent
    );
    let record = h.generation(&id).await;
    assert_eq!(record["is_byok"], true);
    assert_eq!(nanos(&record["total_cost"]), fee);
    assert_eq!(
        h.stored_usage_nanos(fee).await,
        fee,
        "the account paid only the fee"
    );

    // A failing own key falls back to the platform key, billed normally.
    h.sim_post("openai", "faults", json!([{"status": 401}]))
        .await;
    let response = h
        .chat(json!({"model": "openai/gpt-4o-mini", "messages": crate::harness::user("again")}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["usage"]["is_byok"], false);
    let sent = h.sim_requests("openai").await;
    assert_eq!(
        sent.last().unwrap()["headers"]["authorization"],
        "Bearer sim-key"
    );
}
