//! Credits and key limits in memory: reserve before the upstream call, settle after it.
//!
//! Each account's balance is loaded once from the database, then kept here: `credits` (granted,
//! re-read periodically so grants made by the CLI show up), `usage` (settled charges, maintained here
//! and persisted by the recorder) and `reserved` (in-flight worst cases). Each key with a spending
//! limit has the same three numbers for its current reset window (UTC day, week from Monday, month,
//! or all time). A reservation succeeds only if both the account and the key can cover it, checked
//! and taken under one short lock, so concurrent requests can never spend past a balance or limit.
//!
//! A [`Reservation`] dropped without settling is released. A hold whose request vanished without
//! dropping it (a leaked task) is released by [`Ledger::sweep`] once it is older than the TTL.
//! (Sharing balances across replicas comes with Redis.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use switchyard_core::error::{ApiError, ErrorCode};
use switchyard_core::generation::utc_window_starts;
use switchyard_core::money::Money;
use switchyard_store::{KeyRow, KeyUsage, Store};

#[derive(Debug, Default, Clone, Copy)]
struct Balance {
    credits: Money,
    usage: Money,
    reserved: Money,
}

impl Balance {
    fn available(&self) -> Money {
        self.credits
            .saturating_sub(self.usage)
            .saturating_sub(self.reserved)
    }
}

/// Which window a key's limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reset {
    Never,
    Daily,
    Weekly,
    Monthly,
}

impl Reset {
    fn of(key: &KeyRow) -> Reset {
        match key.limit_reset.as_deref() {
            Some("daily") => Reset::Daily,
            Some("weekly") => Reset::Weekly,
            Some("monthly") => Reset::Monthly,
            _ => Reset::Never,
        }
    }

    fn window_start(self, now_ms: i64) -> i64 {
        let [day, week, month] = utc_window_starts(now_ms);
        match self {
            Reset::Never => i64::MIN,
            Reset::Daily => day,
            Reset::Weekly => week,
            Reset::Monthly => month,
        }
    }
}

/// The usage that counts against a key's limit in the window containing `now_ms`.
pub fn window_usage(key: &KeyRow, usage: &KeyUsage) -> Money {
    let (charged, byok) = match Reset::of(key) {
        Reset::Never => (usage.total, usage.byok_total),
        Reset::Daily => (usage.daily, usage.byok_daily),
        Reset::Weekly => (usage.weekly, usage.byok_weekly),
        Reset::Monthly => (usage.monthly, usage.byok_monthly),
    };
    if key.include_byok_in_limit {
        charged.saturating_add(byok)
    } else {
        charged
    }
}

#[derive(Debug, Clone, Copy)]
struct KeyLimit {
    limit: Money,
    reset: Reset,
    include_byok: bool,
    window_start: i64,
    usage: Money,
    reserved: Money,
}

impl KeyLimit {
    /// Starts a new window if `now_ms` is past the current one.
    fn roll(&mut self, now_ms: i64) {
        let start = self.reset.window_start(now_ms);
        if start > self.window_start {
            self.window_start = start;
            self.usage = Money::ZERO;
        }
    }
}

#[derive(Debug, Clone)]
struct Hold {
    account_id: String,
    key_hash: String,
    account_amount: Money,
    key_amount: Money,
    expires_at_ms: i64,
}

#[derive(Debug, Default)]
struct Inner {
    accounts: HashMap<String, Balance>,
    /// Keys with a limit; `None` marks a key known to have no limit.
    keys: HashMap<String, Option<KeyLimit>>,
    holds: HashMap<u64, Hold>,
    next_hold: u64,
}

/// All loaded balances and key limits. A std mutex: it is never held across an `.await`.
#[derive(Debug, Clone)]
pub struct Ledger {
    inner: Arc<Mutex<Inner>>,
    ttl_ms: i64,
}

/// What one request may cost: on the account, and on the key's limit (they differ for BYOK).
#[derive(Debug, Clone, Copy)]
pub struct Amounts {
    pub account: Money,
    pub key: Money,
}

impl Ledger {
    pub fn new(ttl: std::time::Duration) -> Ledger {
        Ledger {
            inner: Arc::default(),
            ttl_ms: ttl.as_millis() as i64,
        }
    }

    /// Holds `amounts` against the key's account and the key's limit, loading them on first use.
    pub async fn reserve(
        &self,
        store: &Store,
        key: &KeyRow,
        amounts: Amounts,
        now_ms: i64,
    ) -> Result<Reservation, ApiError> {
        let (account_loaded, key_loaded) = {
            let inner = self.lock();
            (
                inner.accounts.contains_key(&key.account_id),
                inner.keys.contains_key(&key.hash),
            )
        };
        if !account_loaded {
            self.load_account(store, &key.account_id).await?;
        }
        if !key_loaded {
            self.load_key(store, key, now_ms).await?;
        }
        let mut inner = self.lock();
        let inner = &mut *inner;
        let balance = inner.accounts.entry(key.account_id.clone()).or_default();
        let available = balance.available();
        if available <= Money::ZERO {
            return Err(ApiError::new(
                ErrorCode::PaymentRequired,
                "Insufficient credits: this account's balance is used up. Add credits to continue",
            ));
        }
        if available < amounts.account {
            return Err(ApiError::new(
                ErrorCode::PaymentRequired,
                format!(
                    "This request requires more credits, or fewer max_tokens: it may cost up to ${}, but the balance available is ${available}",
                    amounts.account
                ),
            ));
        }
        let mut key_amount = Money::ZERO;
        if let Some(Some(limit)) = inner.keys.get_mut(&key.hash) {
            limit.roll(now_ms);
            let left = limit
                .limit
                .saturating_sub(limit.usage)
                .saturating_sub(limit.reserved);
            if left <= Money::ZERO || left < amounts.key {
                let window = match limit.reset {
                    Reset::Never => "",
                    Reset::Daily => " for today (resets at 00:00 UTC)",
                    Reset::Weekly => " for this week (resets Monday 00:00 UTC)",
                    Reset::Monthly => " for this month (resets on the 1st, 00:00 UTC)",
                };
                return Err(ApiError::new(
                    ErrorCode::PaymentRequired,
                    format!(
                        "Key limit exceeded{window}: ${} of ${} left, and this request may cost up to ${}. Raise the key's limit or lower max_tokens",
                        left.max(Money::ZERO),
                        limit.limit,
                        amounts.key
                    ),
                ));
            }
            limit.reserved = limit.reserved.saturating_add(amounts.key);
            key_amount = amounts.key;
        }
        balance.reserved = balance.reserved.saturating_add(amounts.account);
        inner.next_hold += 1;
        let id = inner.next_hold;
        inner.holds.insert(
            id,
            Hold {
                account_id: key.account_id.clone(),
                key_hash: key.hash.clone(),
                account_amount: amounts.account,
                key_amount,
                expires_at_ms: now_ms.saturating_add(self.ttl_ms),
            },
        );
        Ok(Reservation {
            ledger: self.clone(),
            id,
            account_id: key.account_id.clone(),
            key_hash: key.hash.clone(),
            done: false,
        })
    }

    /// The account's balance as this process sees it: `(credits, usage)`.
    pub fn snapshot(&self, account_id: &str) -> Option<(Money, Money)> {
        self.lock()
            .accounts
            .get(account_id)
            .map(|b| (b.credits, b.usage))
    }

    /// Money currently held by in-flight requests of an account.
    pub fn reserved(&self, account_id: &str) -> Money {
        self.lock()
            .accounts
            .get(account_id)
            .map_or(Money::ZERO, |b| b.reserved)
    }

    /// Re-reads granted credits of every loaded account (usage is ours and is not re-read).
    pub async fn refresh_credits(&self, store: &Store) {
        let ids: Vec<String> = self.lock().accounts.keys().cloned().collect();
        for id in ids {
            if let Ok(Some(account)) = store.account(&id).await {
                if let Some(balance) = self.lock().accounts.get_mut(&id) {
                    balance.credits = account.total_credits;
                }
            }
        }
    }

    /// Drops what is known of a key's limit (after it changed); in-flight holds stay counted.
    pub fn forget_key(&self, hash: &str) {
        let mut inner = self.lock();
        let held: Money = inner
            .holds
            .values()
            .filter(|h| h.key_hash == hash)
            .fold(Money::ZERO, |sum, h| sum.saturating_add(h.key_amount));
        inner.keys.remove(hash);
        if held > Money::ZERO {
            // Keep the holds against the old limit until the key is reloaded with its new one.
            for hold in inner.holds.values_mut().filter(|h| h.key_hash == hash) {
                hold.key_amount = Money::ZERO;
            }
        }
    }

    /// Releases holds older than the TTL (their requests are gone); returns how many.
    pub fn sweep(&self, now_ms: i64) -> usize {
        let mut inner = self.lock();
        let expired: Vec<u64> = inner
            .holds
            .iter()
            .filter(|(_, h)| h.expires_at_ms <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            if let Some(hold) = inner.holds.remove(id) {
                tracing::warn!(account = %hold.account_id, "released a reservation whose request never settled");
                release(&mut inner, &hold);
            }
        }
        expired.len()
    }

    async fn load_account(&self, store: &Store, account_id: &str) -> Result<(), ApiError> {
        let account = store
            .account(account_id)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "balance load failed");
                ApiError::new(ErrorCode::Internal, "Balance lookup failed; try again")
            })?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "The account of this key no longer exists",
                )
            })?;
        // Another request may have loaded it meanwhile; its in-memory usage is newer than the row.
        self.lock()
            .accounts
            .entry(account_id.to_owned())
            .or_insert(Balance {
                credits: account.total_credits,
                usage: account.total_usage,
                reserved: Money::ZERO,
            });
        Ok(())
    }

    async fn load_key(&self, store: &Store, key: &KeyRow, now_ms: i64) -> Result<(), ApiError> {
        let Some(limit) = key.limit else {
            self.lock().keys.entry(key.hash.clone()).or_insert(None);
            return Ok(());
        };
        let [day, week, month] = utc_window_starts(now_ms);
        let usage = store
            .key_usage(&key.hash, day, week, month)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "key usage load failed");
                ApiError::new(ErrorCode::Internal, "Key usage lookup failed; try again")
            })?;
        let reset = Reset::of(key);
        let mut inner = self.lock();
        let reserved = inner
            .holds
            .values()
            .filter(|h| h.key_hash == key.hash)
            .fold(Money::ZERO, |sum, h| sum.saturating_add(h.key_amount));
        inner.keys.entry(key.hash.clone()).or_insert(Some(KeyLimit {
            limit,
            reset,
            include_byok: key.include_byok_in_limit,
            window_start: reset.window_start(now_ms),
            usage: window_usage(key, &usage),
            reserved,
        }));
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-update of plain integers.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn release(inner: &mut Inner, hold: &Hold) {
    if let Some(balance) = inner.accounts.get_mut(&hold.account_id) {
        balance.reserved = balance.reserved.saturating_sub(hold.account_amount);
    }
    if let Some(Some(limit)) = inner.keys.get_mut(&hold.key_hash) {
        limit.reserved = limit.reserved.saturating_sub(hold.key_amount);
    }
}

/// A hold on credits; settle it with the real cost or drop it to release.
#[derive(Debug)]
pub struct Reservation {
    ledger: Ledger,
    id: u64,
    account_id: String,
    key_hash: String,
    done: bool,
}

impl Reservation {
    /// Replaces the hold with the real charge: `cost` on the account and key, plus `byok_usage`
    /// on the key when its limit includes BYOK.
    pub fn settle(mut self, cost: Money, byok_usage: Money, now_ms: i64) {
        self.done = true;
        let mut inner = self.ledger.lock();
        match inner.holds.remove(&self.id) {
            Some(hold) => release(&mut inner, &hold),
            // Swept as abandoned: nothing is held any more, but the charge is real.
            None => tracing::warn!("settling a reservation that had expired"),
        }
        if let Some(balance) = inner.accounts.get_mut(&self.account_id) {
            balance.usage = balance.usage.saturating_add(cost);
        }
        if let Some(Some(limit)) = inner.keys.get_mut(&self.key_hash) {
            limit.roll(now_ms);
            let counted = if limit.include_byok {
                cost.saturating_add(byok_usage)
            } else {
                cost
            };
            limit.usage = limit.usage.saturating_add(counted);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut inner = self.ledger.lock();
        if let Some(hold) = inner.holds.remove(&self.id) {
            release(&mut inner, &hold);
        }
    }
}
