//! The command-line contract: admin subcommands in text and JSON, and `demo --json` serving a real
//! chat request offline.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

fn temp_db() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let path =
        std::env::temp_dir().join(format!("switchyard-cli-{}-{nanos}.db", std::process::id()));
    format!("sqlite://{}", path.display())
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, stdout, stderr) = run(&all);
    assert!(ok, "{args:?} failed: {stderr}");
    serde_json::from_str(stdout.trim()).unwrap()
}

#[test]
fn accounts_credits_and_keys() {
    let db = temp_db();
    let account = json(&["accounts", "create", "--name", "acme", "--database", &db]);
    let id = account["id"].as_str().unwrap();
    assert!(id.starts_with("acct_"));

    let granted = json(&[
        "credits",
        "grant",
        "--account",
        id,
        "--amount",
        "12.5",
        "--database",
        &db,
    ]);
    assert_eq!(granted["balance"], 12.5);
    let (ok, _, stderr) = run(&[
        "credits",
        "grant",
        "--account",
        id,
        "--amount",
        "-1",
        "--database",
        &db,
    ]);
    assert!(!ok && stderr.contains("positive"), "{stderr}");
    let (ok, _, stderr) = run(&[
        "credits",
        "grant",
        "--account",
        "acct_nope",
        "--amount",
        "1",
        "--database",
        &db,
    ]);
    assert!(!ok && stderr.contains("does not exist"), "{stderr}");

    let key = json(&[
        "keys",
        "create",
        "--account",
        id,
        "--name",
        "ci",
        "--database",
        &db,
    ]);
    let secret = key["key"].as_str().unwrap();
    assert!(secret.starts_with("sk-or-v1-") && secret.len() == 73);
    let listed = json(&["keys", "list", "--account", id, "--database", &db]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["hash"], key["hash"]);
    // The key itself is never listed.
    assert!(!listed.to_string().contains(secret));

    let (ok, text, _) = run(&["keys", "list", "--database", &db]);
    assert!(
        ok && text.contains("LABEL") && text.contains("inference"),
        "{text}"
    );
    let (ok, text, _) = run(&["credits", "show", "--account", id, "--database", &db]);
    assert!(ok && text.contains("balance $12.5"), "{text}");
    let accounts = json(&["accounts", "list", "--database", &db]);
    assert_eq!(accounts[0]["total_credits"], 12.5);
}

#[test]
fn demo_serves_a_chat_offline() {
    let db = temp_db();
    let mut child = Command::new(BIN)
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--simulator-listen",
            "127.0.0.1:0",
            "--database",
            &db,
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: Value = serde_json::from_str(&line).unwrap();
    for field in ["gateway_url", "simulator_url", "api_key", "management_key"] {
        assert!(info[field].is_string(), "{field} missing in {line}");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(async {
        let client = reqwest::Client::new();
        let response = client
            .post(format!("{}/api/v1/chat/completions", info["gateway_url"].as_str().unwrap()))
            .bearer_auth(info["api_key"].as_str().unwrap())
            .header("content-type", "application/json")
            .body(r#"{"model":"mistralai/mistral-small-3.2-24b-instruct","messages":[{"role":"user","content":"hi"}]}"#)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        (status, body)
    });
    let _ = child.kill();
    let _ = child.wait();
    let (status, body) = result;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], "mistralai/mistral-small-3.2-24b-instruct");
    assert!(body["usage"]["cost"].as_f64().unwrap() > 0.0);
}

#[test]
fn catalog_commands_and_bad_overrides() {
    let (ok, text, _) = run(&["catalog", "check"]);
    assert!(ok && text.starts_with("ok: catalog"), "{text}");
    let summary = json(&["catalog", "check"]);
    assert!(summary["models"].as_u64().unwrap() >= 400);
    assert!(summary["providers"].as_u64().unwrap() >= 60);
    assert!(summary["endpoints"].as_u64().unwrap() >= 900);
    let shown = json(&["catalog", "show", "openai/gpt-4o-mini"]);
    assert_eq!(shown["data"]["id"], "openai/gpt-4o-mini");
    let providers = json(&["catalog", "list", "--providers"]);
    assert!(providers
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["slug"] == "groq" && p["protocol"] == "openai"));

    let dir = std::env::temp_dir().join(format!("switchyard-cli-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("[[endpoints]]\nmodel = \"openai/gpt-4o-mini\"\nprovider = \"nope\"\nupstream_model = \"x\"\n", "line 1", "[providers.nope]"),
        ("# private\n\n[[models]]\nid = \"openai/gpt-4o-mini\"\ncontext_length = 8\n", "line 3", "already in the catalog"),
        ("[[prices]]\nmodel = \"openai/gpt-4o-mini\"\npricing = { prompt = \"-1\" }\n", "line 1", "negative"),
    ];
    for (i, (text, line, fix)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let (ok, _, stderr) = run(&["catalog", "check", "--config", path.to_str().unwrap()]);
        assert!(!ok, "{text} was accepted");
        assert!(
            stderr.contains(line) && stderr.contains(fix),
            "{stderr} lacks {line} / {fix}"
        );
        assert!(
            stderr.contains(path.to_str().unwrap()),
            "{stderr} does not name the file"
        );
    }
}
