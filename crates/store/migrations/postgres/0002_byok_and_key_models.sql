-- Keys may be restricted to a list of models (a JSON array of model ids; NULL allows every model).
ALTER TABLE api_keys ADD COLUMN allowed_models TEXT;

-- BYOK requests: charged only the BYOK fee (cost_nanos); what they would have cost is kept so that
-- BYOK-inclusive key limits and activity can be computed.
ALTER TABLE generations ADD COLUMN is_byok INTEGER NOT NULL DEFAULT 0;
ALTER TABLE generations ADD COLUMN byok_usage_nanos BIGINT NOT NULL DEFAULT 0;

-- An account's own provider credentials. The ciphertext is opaque here: the server encrypts it.
CREATE TABLE byok_credentials (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    provider TEXT NOT NULL,
    name TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    label TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX byok_credentials_account_provider ON byok_credentials(account_id, provider);
