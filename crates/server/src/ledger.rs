//! Credits in memory: reserve before the upstream call, settle after it.
//!
//! Each account's balance is loaded once from the database, then kept here: `credits` (granted,
//! re-read periodically so grants made by the CLI show up), `usage` (settled charges, maintained here
//! and persisted by the recorder) and `reserved` (in-flight worst cases). A reservation succeeds only
//! if `credits - usage - reserved` covers it, under one short lock, so concurrent requests can never
//! spend past the balance. A [`Reservation`] dropped without settling is released, so a failed or
//! lost request frees its hold. (Sharing balances across replicas comes with Redis.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use switchyard_core::error::{ApiError, ErrorCode};
use switchyard_core::money::Money;
use switchyard_store::Store;

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

/// All loaded account balances. A std mutex: it is never held across an `.await`.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    accounts: Arc<Mutex<HashMap<String, Balance>>>,
}

impl Ledger {
    /// Holds `amount` against the account, loading its balance on first use.
    pub async fn reserve(
        &self,
        store: &Store,
        account_id: &str,
        amount: Money,
    ) -> Result<Reservation, ApiError> {
        if !self.is_loaded(account_id) {
            self.load(store, account_id).await?;
        }
        let mut accounts = self.lock();
        let balance = accounts.entry(account_id.to_owned()).or_default();
        let available = balance.available();
        if available <= Money::ZERO {
            return Err(ApiError::new(
                ErrorCode::PaymentRequired,
                "Insufficient credits: this account's balance is used up. Add credits to continue",
            ));
        }
        if available < amount {
            return Err(ApiError::new(
                ErrorCode::PaymentRequired,
                format!(
                    "This request requires more credits, or fewer max_tokens: it may cost up to ${amount}, but the balance available is ${available}"
                ),
            ));
        }
        balance.reserved = balance.reserved.saturating_add(amount);
        Ok(Reservation {
            ledger: self.clone(),
            account_id: account_id.to_owned(),
            amount,
            done: false,
        })
    }

    /// The account's balance as this process sees it: `(credits, usage)`.
    pub fn snapshot(&self, account_id: &str) -> Option<(Money, Money)> {
        self.lock().get(account_id).map(|b| (b.credits, b.usage))
    }

    /// Re-reads granted credits of every loaded account (usage is ours and is not re-read).
    pub async fn refresh_credits(&self, store: &Store) {
        let ids: Vec<String> = self.lock().keys().cloned().collect();
        for id in ids {
            if let Ok(Some(account)) = store.account(&id).await {
                if let Some(balance) = self.lock().get_mut(&id) {
                    balance.credits = account.total_credits;
                }
            }
        }
    }

    fn is_loaded(&self, account_id: &str) -> bool {
        self.lock().contains_key(account_id)
    }

    async fn load(&self, store: &Store, account_id: &str) -> Result<(), ApiError> {
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
        self.lock().entry(account_id.to_owned()).or_insert(Balance {
            credits: account.total_credits,
            usage: account.total_usage,
            reserved: Money::ZERO,
        });
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Balance>> {
        // A poisoned lock only means another thread panicked mid-update of plain integers.
        self.accounts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A hold on an account's credits; settle it with the real cost or drop it to release.
#[derive(Debug)]
pub struct Reservation {
    ledger: Ledger,
    account_id: String,
    amount: Money,
    done: bool,
}

impl Reservation {
    /// Replaces the hold with the real charge.
    pub fn settle(mut self, cost: Money) {
        self.done = true;
        let mut accounts = self.ledger.lock();
        if let Some(balance) = accounts.get_mut(&self.account_id) {
            balance.reserved = balance.reserved.saturating_sub(self.amount);
            balance.usage = balance.usage.saturating_add(cost);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut accounts = self.ledger.lock();
        if let Some(balance) = accounts.get_mut(&self.account_id) {
            balance.reserved = balance.reserved.saturating_sub(self.amount);
        }
    }
}
