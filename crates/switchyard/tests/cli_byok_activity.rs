//! The `byok` and `activity export` subcommands against a real database: provider keys stored
//! encrypted and never printed, and generation records exported as CSV.

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use switchyard_core::generation::{format_rfc3339_ms, GenerationRecord};
use switchyard_core::money::Money;
use switchyard_core::pricing::Usage;
use switchyard_store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
const SECRET: &str = "sk-proj-cli-0123456789abcdefWXYZ";
const DAY_MS: i64 = 86_400_000;

fn temp_path(what: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!(
        "switchyard-cli-{what}-{}-{nanos}",
        std::process::id()
    ))
}

fn run_with(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn run(args: &[&str]) -> (bool, String, String) {
    run_with(args, None)
}

fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, stdout, stderr) = run(&all);
    assert!(ok, "{args:?} failed: {stderr}");
    serde_json::from_str(stdout.trim()).unwrap()
}

#[test]
fn byok_add_list_remove() {
    let db = format!("sqlite://{}.db", temp_path("byok").display());
    let config = temp_path("byok-config.toml");
    std::fs::write(
        &config,
        "[byok]\nencryption_key = \"8f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let account = json(&["accounts", "create", "--name", "acme", "--database", &db]);
    let id = account["id"].as_str().unwrap();

    // Without an encryption key, adding says what to configure.
    let add = [
        "byok",
        "add",
        "--account",
        id,
        "--provider",
        "openai",
        "--database",
        &db,
    ];
    let (ok, _, stderr) = run(&[&add[..], &["--api-key", SECRET]].concat());
    assert!(
        !ok && stderr.contains("set [byok] encryption_key"),
        "{stderr}"
    );
    assert!(!stderr.contains(SECRET));

    let with_config = [&add[..], &["--config", config]].concat();
    let created = json(&[&with_config[..], &["--api-key", SECRET, "--name", "prod"]].concat());
    assert_eq!(created["provider"], "openai");
    assert_eq!(created["label"], "sk-...WXYZ");
    assert!(!created.to_string().contains(SECRET));
    // `-` reads the key from standard input; the text output does not print it either.
    let (ok, stdout, stderr) = run_with(
        &[&with_config[..], &["--api-key", "-"]].concat(),
        Some("gsk_from_stdin_000000001234\n"),
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("...1234") && !stdout.contains("gsk_from_stdin"),
        "{stdout}"
    );
    let (ok, _, stderr) = run(&[
        "byok",
        "add",
        "--account",
        id,
        "--provider",
        "nope",
        "--api-key",
        SECRET,
        "--database",
        &db,
        "--config",
        config,
    ]);
    assert!(
        !ok && stderr.contains("unknown provider `nope`"),
        "{stderr}"
    );
    let (ok, _, stderr) = run(&[
        "byok",
        "add",
        "--account",
        "acct_nope",
        "--provider",
        "openai",
        "--api-key",
        SECRET,
        "--database",
        &db,
        "--config",
        config,
    ]);
    assert!(!ok && stderr.contains("does not exist"), "{stderr}");

    let listed = json(&["byok", "list", "--account", id, "--database", &db]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["id"], created["id"]);
    assert_eq!(listed[1]["sort_order"], 1);
    assert!(!Value::from(listed.clone()).to_string().contains(SECRET));
    let (ok, text, _) = run(&["byok", "list", "--account", id, "--database", &db]);
    assert!(
        ok && text.contains("PROVIDER") && text.contains("sk-...WXYZ") && !text.contains(SECRET),
        "{text}"
    );

    let credential = created["id"].as_str().unwrap();
    let removed = json(&[
        "byok",
        "remove",
        "--account",
        id,
        "--id",
        credential,
        "--database",
        &db,
    ]);
    assert_eq!(removed["deleted"], true);
    let (ok, _, stderr) = run(&[
        "byok",
        "remove",
        "--account",
        id,
        "--id",
        credential,
        "--database",
        &db,
    ]);
    assert!(!ok && stderr.contains("has no BYOK credential"), "{stderr}");
    assert_eq!(
        json(&["byok", "list", "--account", id, "--database", &db])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

fn record(
    id: &str,
    account: &str,
    created_at_ms: i64,
    app_title: Option<&str>,
) -> GenerationRecord {
    GenerationRecord {
        id: id.into(),
        account_id: account.into(),
        key_hash: "cd".repeat(32),
        created_at_ms,
        model: "openai/gpt-4o-mini".into(),
        provider_name: Some("OpenAI".into()),
        upstream_id: None,
        streamed: false,
        cancelled: false,
        finish_reason: Some("stop".into()),
        native_finish_reason: Some("stop".into()),
        usage: Usage {
            prompt_tokens: 10,
            completion_tokens: 20,
            cached_tokens: 3,
            reasoning_tokens: 4,
            ..Usage::default()
        },
        cost: Money::from_nanos(123_456),
        is_byok: true,
        byok_usage: Money::from_nanos(2_469_120),
        latency_ms: 250,
        generation_time_ms: 200,
        http_referer: Some("https://example.test/app".into()),
        app_title: app_title.map(str::to_owned),
        user_agent: None,
        external_user: None,
        session_id: None,
        attempts: vec![],
        error: None,
    }
}

#[test]
fn activity_export_writes_csv() {
    let path = temp_path("export");
    let db = format!("sqlite://{}.db", path.display());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::connect(&db).await.unwrap();
        store.create_account("acct_a", "a", 0).await.unwrap();
        store.create_account("acct_b", "b", 0).await.unwrap();
        store
            .write_batch(&[
                record(
                    "gen-1",
                    "acct_a",
                    now - 2 * DAY_MS,
                    Some("Quote \"me\", please"),
                ),
                record("gen-2", "acct_a", now, None),
                record("gen-3", "acct_b", now, Some("b")),
            ])
            .await
            .unwrap();
    });

    let output = temp_path("export.csv");
    let output_arg = output.to_str().unwrap();
    let summary = json(&[
        "activity",
        "export",
        "--database",
        &db,
        "--output",
        output_arg,
    ]);
    assert_eq!(summary["rows"], 3);
    let text = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<&str> = text.trim_end().split("\r\n").collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(
        lines[0],
        "id,created_at,account,key_hash,model,provider,streamed,cancelled,finish_reason,prompt_tokens,completion_tokens,cached_tokens,reasoning_tokens,cost_usd,is_byok,byok_usage_usd,latency_ms,generation_time_ms,http_referer,app_title"
    );
    assert_eq!(
        lines[1],
        format!(
            "gen-1,{},acct_a,{},openai/gpt-4o-mini,OpenAI,false,false,stop,10,20,3,4,0.000123456,true,0.00246912,250,200,https://example.test/app,\"Quote \"\"me\"\", please\"",
            format_rfc3339_ms(now - 2 * DAY_MS),
            "cd".repeat(32)
        )
    );

    // Filters: one account; a day range; CSV on standard output without --output.
    let (ok, stdout, stderr) = run(&[
        "activity",
        "export",
        "--database",
        &db,
        "--account",
        "acct_a",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(!stdout.contains("acct_b"));
    let today = &format_rfc3339_ms(now)[..10];
    let (ok, stdout, _) = run(&[
        "activity",
        "export",
        "--database",
        &db,
        "--since",
        today,
        "--until",
        today,
    ]);
    assert!(ok);
    let ids: Vec<&str> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(ids, ["gen-2", "gen-3"]);
    let two_days_ago = &format_rfc3339_ms(now - 2 * DAY_MS)[..10];
    let (ok, stdout, _) = run(&[
        "activity",
        "export",
        "--database",
        &db,
        "--until",
        two_days_ago,
    ]);
    assert!(
        ok && stdout.lines().count() == 2 && stdout.contains("gen-1"),
        "{stdout}"
    );
    let (ok, text, _) = run(&[
        "activity",
        "export",
        "--database",
        &db,
        "--output",
        output_arg,
    ]);
    assert!(ok && text.contains("Wrote 3 generations"), "{text}");

    let (ok, _, stderr) = run(&[
        "activity",
        "export",
        "--database",
        &db,
        "--since",
        "2026-13-01",
    ]);
    assert!(!ok && stderr.contains("YYYY-MM-DD"), "{stderr}");
    let (ok, _, stderr) = run(&[
        "activity",
        "export",
        "--database",
        &db,
        "--since",
        today,
        "--until",
        two_days_ago,
    ]);
    assert!(!ok && stderr.contains("before --since"), "{stderr}");
}
