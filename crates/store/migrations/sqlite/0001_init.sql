-- Accounts own a prepaid balance: total_credits (granted) minus total_usage (settled charges).
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    total_credits_nanos INTEGER NOT NULL DEFAULT 0,
    total_usage_nanos INTEGER NOT NULL DEFAULT 0
);

-- Every grant, so the balance can be audited.
CREATE TABLE credit_grants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    amount_nanos INTEGER NOT NULL,
    note TEXT,
    created_at_ms INTEGER NOT NULL
);

-- Keys are stored only as the SHA-256 of the full key string.
CREATE TABLE api_keys (
    hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    is_management INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    limit_nanos INTEGER,
    limit_reset TEXT,
    include_byok_in_limit INTEGER NOT NULL DEFAULT 0,
    expires_at_ms INTEGER,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER,
    usage_nanos INTEGER NOT NULL DEFAULT 0,
    last_used_at_ms INTEGER
);
CREATE INDEX api_keys_account ON api_keys(account_id);

-- One row per request that reached an upstream.
CREATE TABLE generations (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    model TEXT NOT NULL,
    provider_name TEXT,
    upstream_id TEXT,
    streamed INTEGER NOT NULL,
    cancelled INTEGER NOT NULL,
    finish_reason TEXT,
    native_finish_reason TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    images INTEGER NOT NULL,
    web_searches INTEGER NOT NULL,
    cost_nanos INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    generation_time_ms INTEGER NOT NULL,
    http_referer TEXT,
    app_title TEXT,
    user_agent TEXT,
    external_user TEXT,
    session_id TEXT,
    attempts TEXT NOT NULL,
    error TEXT
);
CREATE INDEX generations_account_time ON generations(account_id, created_at_ms);
CREATE INDEX generations_key_time ON generations(key_hash, created_at_ms);
