//! Tests of BYOK encryption, labels, the fee and the vault's cache and monthly allowance.

use super::*;

const KEY: EncryptionKey = EncryptionKey([7u8; 32]);

fn config(fee_percent: f64, free: u64) -> ByokConfig {
    ByokConfig {
        encryption_key: Some(KEY),
        fee_percent,
        free_requests_per_month: free,
    }
}

#[test]
fn encryption_round_trips_with_a_fresh_nonce_each_time() {
    let secret = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789";
    let a = encrypt(&KEY, "acct_1", "openai", secret);
    let b = encrypt(&KEY, "acct_1", "openai", secret);
    assert_ne!(a, b, "nonces must differ");
    assert!(!a.contains(secret) && !a.contains(&hex(secret.as_bytes())));
    // 24-byte nonce, the message, 16-byte tag; hex.
    assert_eq!(a.len(), 2 * (24 + secret.len() + 16));
    for stored in [&a, &b] {
        let opened = decrypt(&KEY, "acct_1", "openai", stored).unwrap();
        assert_eq!(opened.expose(), secret);
        assert_eq!(format!("{opened:?}"), "*****");
    }
}

#[test]
fn decryption_fails_on_tampering_another_key_or_other_associated_data() {
    let stored = encrypt(&KEY, "acct_1", "openai", "sk-secret-value-1234");
    let fails = |key: &EncryptionKey, account: &str, provider: &str, text: &str| {
        matches!(
            decrypt(key, account, provider, text),
            Err(ByokError::Decrypt)
        )
    };
    // A row moved to another account, or relabelled as another provider.
    assert!(fails(&KEY, "acct_2", "openai", &stored));
    assert!(fails(&KEY, "acct_1", "groq", &stored));
    // The separator keeps `a` + `b\0c` and `a\0b` + `c` apart.
    let split = encrypt(&KEY, "acct", "x", "secret");
    assert!(fails(&KEY, "acc", "tx", &split));
    // Another encryption key.
    assert!(fails(
        &EncryptionKey([8u8; 32]),
        "acct_1",
        "openai",
        &stored
    ));
    // Any flipped bit: in the nonce, the ciphertext or the tag.
    for at in [0, 30, 48 + 4, stored.len() - 1] {
        let mut bytes = stored.clone().into_bytes();
        bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(fails(&KEY, "acct_1", "openai", &tampered), "flip at {at}");
    }
    // Truncated, empty, odd-length, non-hex.
    assert!(fails(&KEY, "acct_1", "openai", &stored[..stored.len() - 2]));
    assert!(fails(&KEY, "acct_1", "openai", &stored[..40]));
    assert!(fails(&KEY, "acct_1", "openai", ""));
    assert!(fails(&KEY, "acct_1", "openai", &stored[1..]));
    assert!(fails(&KEY, "acct_1", "openai", &"zz".repeat(60)));
    assert!(fails(
        &KEY,
        "acct_1",
        "openai",
        &format!("+{}", &stored[1..])
    ));
    assert_eq!(unhex("00ff7A"), Some(vec![0, 255, 122]));
    assert_eq!(unhex("+f"), None);
    assert_eq!(unhex("é0"), None);
    assert!(decrypt(&KEY, "acct_1", "openai", &stored).is_ok());
}

#[test]
fn labels_mask_the_key_and_ids_are_uuids() {
    assert_eq!(label("sk-proj-abcdefghijklmnopAbCd"), "sk-...AbCd");
    assert_eq!(label("gsk_0123456789abcdefWXYZ"), "gsk...WXYZ");
    assert_eq!(label("short-key"), "...");
    assert_eq!(label("ünïcödé-kéy-that-is-long"), "ünï...long");
    let id = new_id();
    assert_eq!(id.len(), 36);
    let parts: Vec<&str> = id.split('-').collect();
    assert_eq!(
        parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12]
    );
    assert!(parts[2].starts_with('4'));
    assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
    assert_ne!(new_id(), id);
}

#[test]
fn fee_is_basis_points_of_the_equivalent_price_rounded_half_up() {
    let vault = Vault::new(&config(5.0, 0));
    let nanos = |n| Money::from_nanos(n);
    // 5% of $1 is 5 cents.
    assert_eq!(vault.fee(nanos(1_000_000_000), false), nanos(50_000_000));
    // 5% of 10 nanos is 0.5: rounds up; of 9 nanos 0.45: down; of 30 nanos exactly 1.5: up.
    assert_eq!(vault.fee(nanos(10), false), nanos(1));
    assert_eq!(vault.fee(nanos(9), false), nanos(0));
    assert_eq!(vault.fee(nanos(30), false), nanos(2));
    assert_eq!(vault.fee(nanos(123_456_789), false), nanos(6_172_839));
    // No fee while the free allowance lasts, and none on a free request.
    assert_eq!(vault.fee(nanos(1_000_000_000), true), Money::ZERO);
    assert_eq!(vault.fee(Money::ZERO, false), Money::ZERO);
    // Fractional percentages are exact to the basis point, without float error.
    let vault = Vault::new(&config(0.29, 0));
    assert_eq!(vault.fee(nanos(1_000_000_000), false), nanos(2_900_000));
    let vault = Vault::new(&config(100.0, 0));
    assert_eq!(vault.fee(nanos(777), false), nanos(777));
    // No overflow at the top of the range.
    assert_eq!(
        fee_bps(Money::from_nanos(i64::MAX), 10_000).nanos(),
        i64::MAX
    );
    assert_eq!(fee_bps(nanos(-10), 500), nanos(-1));
}

#[test]
fn vault_reports_whether_byok_is_configured() {
    assert!(Vault::new(&config(5.0, 0)).enabled());
    let off = Vault::new(&ByokConfig {
        encryption_key: None,
        fee_percent: 5.0,
        free_requests_per_month: 0,
    });
    assert!(!off.enabled());
    let debug = format!("{:?}", Vault::new(&config(5.0, 0)));
    assert!(
        debug.contains("fee_bps: 500") && !debug.contains("7, 7"),
        "{debug}"
    );
}

async fn temp_store() -> Store {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let path = std::env::temp_dir().join(format!(
        "switchyard-byok-unit-{}-{nanos}.db",
        std::process::id()
    ));
    let store = Store::connect(path.to_str().unwrap()).await.unwrap();
    store.create_account("acct_1", "one", 0).await.unwrap();
    store.create_account("acct_2", "two", 0).await.unwrap();
    store
}

fn catalog() -> Catalog {
    Catalog::from_files(switchyard_core::catalog::BUNDLED).unwrap()
}

fn new<'a>(account_id: &'a str, provider: &'a str, api_key: &'a str) -> NewCredential<'a> {
    NewCredential {
        account_id,
        provider,
        api_key,
        name: "",
        disabled: false,
    }
}

#[tokio::test]
async fn credentials_are_served_from_memory_and_invalidated_by_changes() {
    let store = temp_store().await;
    let catalog = catalog();
    let vault = Vault::new(&config(5.0, 0));
    assert!(vault.credential(&store, "acct_1", "openai").await.is_none());

    let first = vault
        .add(
            &store,
            &catalog,
            &new("acct_1", "openai", "  sk-first-0000000000001111  "),
            1,
        )
        .await
        .unwrap();
    assert_eq!(first.label, "sk-...1111");
    assert!(!first.ciphertext.contains("sk-first"));
    vault
        .add(
            &store,
            &catalog,
            &new("acct_1", "openai", "sk-second-000000000002222"),
            2,
        )
        .await
        .unwrap();
    let got = vault.credential(&store, "acct_1", "openai").await.unwrap();
    assert_eq!(
        got.expose(),
        "sk-first-0000000000001111",
        "oldest first, trimmed"
    );
    assert!(vault.credential(&store, "acct_1", "groq").await.is_none());
    assert!(vault.credential(&store, "acct_2", "openai").await.is_none());

    // A change behind the vault's back (as the CLI makes) is not seen while the entry is fresh: a
    // cache hit does not read the database.
    assert!(store.delete_byok(&first.id, "acct_1").await.unwrap());
    let got = vault.credential(&store, "acct_1", "openai").await.unwrap();
    assert_eq!(got.expose(), "sk-first-0000000000001111");
    // Changes through the vault invalidate.
    vault.invalidate("acct_1");
    let got = vault.credential(&store, "acct_1", "openai").await.unwrap();
    assert_eq!(got.expose(), "sk-second-000000000002222");

    let errors = [
        (new("acct_1", "nope", "sk-x"), "unknown provider `nope`"),
        (new("acct_1", "openai", "   "), "empty"),
        (new("acct_9", "openai", "sk-x"), "does not exist"),
    ];
    for (bad, message) in errors {
        let err = vault.add(&store, &catalog, &bad, 3).await.unwrap_err();
        assert!(err.to_string().contains(message), "{err}");
    }
    let off = Vault::new(&ByokConfig {
        encryption_key: None,
        fee_percent: 5.0,
        free_requests_per_month: 0,
    });
    let err = off
        .add(&store, &catalog, &new("acct_1", "openai", "sk-x"), 3)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("set [byok] encryption_key"),
        "{err}"
    );
    assert!(off.credential(&store, "acct_1", "openai").await.is_none());
}

#[tokio::test]
async fn stale_entries_refresh_in_the_background_and_bad_rows_are_skipped() {
    let store = temp_store().await;
    let catalog = catalog();
    let vault = Vault::with_ttl(&config(5.0, 0), Duration::from_millis(50));
    let disabled = NewCredential {
        disabled: true,
        ..new("acct_1", "groq", "gsk-disabled-00000000000")
    };
    vault.add(&store, &catalog, &disabled, 1).await.unwrap();
    // A row encrypted for another account, moved here: skipped, not served.
    store
        .insert_byok(&ByokRow {
            id: new_id(),
            account_id: "acct_1".into(),
            provider: "mistral".into(),
            name: String::new(),
            ciphertext: encrypt(&KEY, "acct_2", "mistral", "moved-key-0000000000"),
            label: "...".into(),
            disabled: false,
            created_at_ms: 2,
        })
        .await
        .unwrap();
    assert!(vault.credential(&store, "acct_1", "groq").await.is_none());
    assert!(vault
        .credential(&store, "acct_1", "mistral")
        .await
        .is_none());

    // Another process adds a credential; after the TTL the stale entry is served once and refreshed.
    let other = Vault::new(&config(5.0, 0));
    other
        .add(
            &store,
            &catalog,
            &new("acct_1", "groq", "gsk-live-000000000000000"),
            3,
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    let mut seen = None;
    for _ in 0..50 {
        seen = vault.credential(&store, "acct_1", "groq").await;
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen.unwrap().expose(), "gsk-live-000000000000000");
}

#[tokio::test]
async fn free_allowance_is_counted_per_account_and_month() {
    let store = temp_store().await;
    // 2026-11-22T15:30:00Z, and a moment in the next month.
    let now = 1_795_361_400_000;
    let next_month = now + 10 * 86_400_000;
    let vault = Vault::new(&config(5.0, 2));
    assert!(vault.free_allowance_left(&store, "acct_1", now).await);
    vault.count_request("acct_1");
    assert!(vault.free_allowance_left(&store, "acct_1", now).await);
    vault.count_request("acct_1");
    assert!(!vault.free_allowance_left(&store, "acct_1", now).await);
    assert!(vault.free_allowance_left(&store, "acct_2", now).await);
    // A new month starts from the database's count for it (none here).
    assert!(
        vault
            .free_allowance_left(&store, "acct_1", next_month)
            .await
    );

    // Without a free allowance every BYOK request carries the fee, with no database read.
    let none = Vault::new(&config(5.0, 0));
    assert!(!none.free_allowance_left(&store, "acct_1", now).await);
    none.count_request("acct_1");
}
