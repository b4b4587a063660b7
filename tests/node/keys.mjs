// The official Node SDK (`@openrouter/sdk`, pinned in package.json) driving the whole key lifecycle
// against a running gateway with a management key: create, list, get, update, delete, the created
// key's own metadata, and the account's credits.
//
// Usage: node keys.mjs GATEWAY_URL MANAGEMENT_KEY. Prints `N passed, M failed`; exits non-zero on failure.

import { OpenRouter } from "@openrouter/sdk";

const [gatewayArg, adminKey] = process.argv.slice(2);
if (!gatewayArg || !adminKey) {
  console.error("usage: node keys.mjs GATEWAY_URL MANAGEMENT_KEY");
  process.exit(2);
}
const base = `${gatewayArg.replace(/\/+$/, "").replace(/\/api\/v1$/, "")}/api/v1`;
const admin = new OpenRouter({ serverURL: base, apiKey: adminKey, retryConfig: { strategy: "none" } });

let passed = 0;
let failed = 0;

function expect(cond, detail) {
  if (!cond) throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
}

async function check(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}`);
    console.log(`       ${typeof e?.pretty === "function" ? e.pretty() : (e?.stack ?? String(e))}`.slice(0, 4000));
  }
}

let created;
await check("apiKeys.create returns the key once, with its limit", async () => {
  created = await admin.apiKeys.create({ requestBody: { name: "node-lifecycle", limit: 0.75, limitReset: "weekly" } });
  expect(created.key.startsWith("sk-or-v1-") && created.key.length === 73, created.key);
  expect(created.data.limit === 0.75 && created.data.limitReset === "weekly", created.data);
});
const hash = created?.data?.hash;

await check("apiKeys.list and apiKeys.get find it", async () => {
  const listed = await admin.apiKeys.list({ includeDisabled: true });
  expect(listed.data.some((k) => k.hash === hash), "listed");
  const one = await admin.apiKeys.get({ hash });
  expect(one.data.name === "node-lifecycle", one.data);
});

await check("the new key's getCurrentKeyMetadata", async () => {
  const mine = new OpenRouter({ serverURL: base, apiKey: created.key, retryConfig: { strategy: "none" } });
  const meta = await mine.apiKeys.getCurrentKeyMetadata();
  expect(meta.data.limit === 0.75 && meta.data.limitRemaining === 0.75 && !meta.data.isManagementKey, meta.data);
});

await check("apiKeys.update changes limit and disables", async () => {
  const updated = await admin.apiKeys.update({ hash, requestBody: { limit: 2, disabled: true } });
  expect(updated.data.limit === 2 && updated.data.disabled === true, updated.data);
});

await check("apiKeys.delete, then get is a 404", async () => {
  const deleted = await admin.apiKeys.delete({ hash });
  expect(deleted.deleted === true, deleted);
  let status = null;
  try {
    await admin.apiKeys.get({ hash });
  } catch (e) {
    status = e?.statusCode ?? e?.httpMeta?.response?.status ?? String(e);
  }
  expect(status === 404 || String(status).includes("404"), `expected 404, got ${status}`);
});

await check("credits.getCredits", async () => {
  const credits = await admin.credits.getCredits();
  expect(typeof credits.data.totalCredits === "number" && typeof credits.data.totalUsage === "number", credits.data);
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
