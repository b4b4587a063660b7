//! Crash safety with real processes: kill the gateway with SIGKILL in the middle of a load, restart
//! it on the same database, and show that every debit has its generation record and that no
//! reservation survived the crash (the whole remaining balance can be spent).

use futures_util::future::join_all;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use switchyard_core::money::Money;
use switchyard_store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// Starts a subcommand and returns it (the caller waits on it) with the URL from its `... listening on http://ADDR` line.
#[expect(
    clippy::zombie_processes,
    reason = "the child is returned; callers kill and wait on it"
)]
fn start(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} exited before listening");
        }
        if let Some(url) = line
            .trim()
            .strip_prefix("Switchyard listening on ")
            .or_else(|| line.trim().strip_prefix("Simulator listening on "))
        {
            let url = url.to_owned();
            // Keep draining stdout so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in reader.lines() {});
            return (child, url);
        }
    }
}

fn cli(config: &str, args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .args(args)
        .args(["--config", config, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn kill_during_load_then_restart_loses_nothing() {
    let dir = std::env::temp_dir().join(format!("switchyard-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("crash.db");
    let _ = std::fs::remove_file(&db);
    let (mut sim, sim_url) = start(&["simulate", "--listen", "127.0.0.1:0"]);
    let config = dir.join("switchyard.toml");
    std::fs::write(
        &config,
        format!("database = \"sqlite://{}\"\n[providers.openai]\nbase_url = \"{sim_url}/openai/v1\"\napi_key = \"sim\"\n", db.display()),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let account = cli(config, &["accounts", "create", "--name", "crash"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    cli(
        config,
        &[
            "credits",
            "grant",
            "--account",
            &account,
            "--amount",
            "0.002",
        ],
    );
    let key = cli(config, &["keys", "create", "--account", &account])["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    let chat = |gateway: String, stream: bool| {
        let http = http.clone();
        let key = key.clone();
        async move {
            let sent = http
                .post(format!("{gateway}/api/v1/chat/completions"))
                .bearer_auth(key)
                .json(&json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16, "stream": stream}))
                .send()
                .await;
            match sent {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let _ = r.text().await;
                    status
                }
                Err(_) => 0,
            }
        }
    };

    // Slow generations, so that many are in flight when the gateway dies.
    runtime.block_on(async {
        http.post(format!("{sim_url}/_sim/openai/behaviour"))
            .json(&json!({"tokens_per_s": 40, "output_tokens": 16}))
            .send()
            .await
            .unwrap();
    });
    let (mut gateway, url) = start(&["serve", "--config", config, "--listen", "127.0.0.1:0"]);
    // A steady stream of requests, one every 10 ms, each taking about 0.4 s: when the gateway dies
    // at 1 s, some have finished and some are mid-generation.
    let load = (0..200u64).map(|i| {
        let request = chat(url.clone(), i % 2 == 0);
        async move {
            tokio::time::sleep(Duration::from_millis(i * 10)).await;
            request.await
        }
    });
    runtime.block_on(async {
        let load = tokio::spawn(join_all(load));
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        gateway.kill().unwrap(); // SIGKILL: no graceful shutdown, no flush.
        let statuses = load.await.unwrap();
        assert!(
            statuses.contains(&200),
            "some requests finished before the crash"
        );
        assert!(
            statuses.iter().any(|s| *s != 200),
            "some requests were cut by the crash"
        );
    });
    let _ = gateway.wait();

    // Every debit in the database has its record.
    let store = runtime
        .block_on(Store::connect(&format!("sqlite://{}", db.display())))
        .unwrap();
    let (sum, records) = runtime.block_on(store.sum_costs(&account)).unwrap();
    let after_crash = runtime.block_on(store.account(&account)).unwrap().unwrap();
    assert_eq!(
        after_crash.total_usage, sum,
        "debits equal recorded costs after the crash"
    );
    assert!(records > 0);

    // After a restart nothing is held: the rest of the balance can be spent, request by request.
    runtime.block_on(async {
        http.post(format!("{sim_url}/_sim/openai/behaviour"))
            .json(&json!({"tokens_per_s": 0}))
            .send()
            .await
            .unwrap();
    });
    let (mut gateway, url) = start(&["serve", "--config", config, "--listen", "127.0.0.1:0"]);
    let mut served = 0;
    let last = loop {
        let status = runtime.block_on(chat(url.clone(), false));
        if status != 200 {
            break status;
        }
        served += 1;
        assert!(served < 1_000);
    };
    assert_eq!(
        last, 402,
        "the balance ran out, nothing else stopped the requests"
    );
    // A graceful stop (SIGTERM) flushes the queued records.
    let stopped = Command::new("kill")
        .args(["-TERM", &gateway.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let _ = gateway.wait();
    let _ = sim.kill();
    let _ = sim.wait();
    let (sum, _) = runtime.block_on(store.sum_costs(&account)).unwrap();
    let end = runtime.block_on(store.account(&account)).unwrap().unwrap();
    assert_eq!(end.total_usage, sum);
    let left = end.total_credits.saturating_sub(end.total_usage);
    // Less than one request's worst case (about 10,800 nano-dollars) is left unspendable.
    assert!(
        left >= Money::ZERO && left.nanos() < 10_800,
        "{} left unspent: something stayed held",
        left
    );
    assert!(served > 0);
}
