//! Money under concurrency: 500 simultaneous requests (streaming and not) against an account with
//! room for about 100. Nothing is overspent, every charge has its record, and nothing stays held.

use crate::harness::{postgres_available, user, Harness, Options};
use futures_util::future::join_all;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_concurrent_requests_never_overspend_on_sqlite() {
    five_hundred_concurrent_requests(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_concurrent_requests_never_overspend_on_postgres() {
    if postgres_available("five_hundred_concurrent_requests_never_overspend_on_postgres") {
        five_hundred_concurrent_requests(true).await;
    }
}

async fn five_hundred_concurrent_requests(postgres: bool) {
    // One request reserves about 10,800 nano-dollars (8 prompt tokens estimated, 16 output tokens at
    // gpt-4o-mini's prices) and costs about as much: credits for roughly 100 of them.
    let h = Harness::with(Options {
        credits: "0.00108",
        postgres,
        ..Options::default()
    })
    .await;
    assert_eq!(
        h.store.backend(),
        if postgres { "postgres" } else { "sqlite" }
    );
    h.sim_post(
        "openai",
        "behaviour",
        json!({"output_tokens": 16, "tokens_per_s": 400}),
    )
    .await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(600)
        .build()
        .unwrap();
    let url = h.url("/api/v1/chat/completions");
    let requests = (0..500).map(|i| {
        let client = client.clone();
        let url = url.clone();
        let key = h.key.clone();
        async move {
            let stream = i % 2 == 0;
            let response = client
                .post(&url)
                .bearer_auth(key)
                .json(&json!({"model": "openai/gpt-4o-mini", "messages": user("hi"), "max_tokens": 16, "stream": stream}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            (status, stream, body)
        }
    });
    let results = join_all(requests).await;
    let served: Vec<_> = results.iter().filter(|(s, _, _)| *s == 200).collect();
    let refused = results.iter().filter(|(s, _, _)| *s == 402).count();
    assert_eq!(
        served.len() + refused,
        500,
        "only 200s and 402s: {:?}",
        results.iter().find(|r| r.0 != 200 && r.0 != 402)
    );
    for (_, stream, body) in &served {
        if *stream {
            assert!(
                body.ends_with("data: [DONE]\n\n"),
                "a served stream ran to the end"
            );
        }
    }
    assert!(
        (80..=110).contains(&served.len()),
        "served {} of 500",
        served.len()
    );
    assert!(
        served.iter().any(|r| r.1) && served.iter().any(|r| !r.1),
        "both kinds were served"
    );

    // Wait for the writer, then check the invariants in the database.
    let credits = 1_080_000;
    let mut stored = (switchyard_core::money::Money::ZERO, 0);
    for _ in 0..200 {
        stored = h.store.sum_costs(&h.account).await.unwrap();
        if stored.1 as usize >= served.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (sum, records) = stored;
    let account = h.store.account(&h.account).await.unwrap().unwrap();
    assert_eq!(
        records as usize,
        served.len(),
        "one record per served request, no more"
    );
    assert_eq!(
        account.total_usage, sum,
        "the debit equals the sum of recorded costs exactly"
    );
    assert!(sum.nanos() <= credits, "spent {} of {credits}", sum.nanos());
    assert_eq!(
        h.state.ledger.reserved(&h.account),
        switchyard_core::money::Money::ZERO,
        "nothing stays held"
    );
    let (credits_in_memory, usage_in_memory) = h.state.ledger.snapshot(&h.account).unwrap();
    assert_eq!(usage_in_memory, sum);
    assert_eq!(credits_in_memory.nanos(), credits);
}
