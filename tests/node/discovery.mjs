// The official Node SDKs (`@openrouter/sdk`, `openai`; pinned in package.json) against a running
// gateway's model-discovery endpoints.
//
// Usage: node discovery.mjs GATEWAY_URL API_KEY
//
// GATEWAY_URL is the gateway's root (a trailing /api/v1 is ignored). Run from a directory where the
// pinned packages are installed (run_sdk_tests.py copies this file and package.json to
// target/node-sdk/ and installs there). Each SDK validates every response against its generated
// schemas, so a missing or mistyped field fails the call. The expected values come from the same
// endpoints fetched without an SDK. Prints `N passed, M failed`; exits non-zero on any failure.

import { OpenRouter } from "@openrouter/sdk";
import OpenAI from "openai";

const [gatewayArg, apiKey] = process.argv.slice(2);
if (!gatewayArg || !apiKey) {
  console.error("usage: node discovery.mjs GATEWAY_URL API_KEY");
  process.exit(2);
}
const root = gatewayArg.replace(/\/+$/, "").replace(/\/api\/v1$/, "");
const base = `${root}/api/v1`;
const or = new OpenRouter({ serverURL: base, apiKey, retryConfig: { strategy: "none" } });

let passed = 0;
let failed = 0;

// A failed expectation of this script (printed without a stack trace).
class CheckError extends Error {}

async function check(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}`);
    // SDKValidationError.pretty() names every field that failed the SDK's schema.
    const detail = typeof e?.pretty === "function" ? e.pretty()
      : e instanceof CheckError ? e.message : (e?.stack ?? String(e));
    console.log(detail.split("\n").slice(0, 20).map((l) => `       ${l}`).join("\n"));
  }
}

function assert(cond, detail) {
  if (!cond) throw new CheckError(typeof detail === "string" ? detail : JSON.stringify(detail));
}

function sameIds(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) {
    const missing = want.filter((id) => !got.includes(id)).slice(0, 8);
    const extra = got.filter((id) => !want.includes(id)).slice(0, 8);
    throw new CheckError(`${what}: ${got.length} ids, want ${want.length}; missing ${JSON.stringify(missing)}, ` +
      `unexpected ${JSON.stringify(extra)}${missing.length || extra.length ? "" : " (order differs)"}`);
  }
}

async function raw(path) {
  const res = await fetch(`${base}${path}`, { headers: { Authorization: `Bearer ${apiKey}` } });
  assert(res.ok, `GET ${path}: ${res.status}`);
  return res.json();
}

function split(id) {
  const [author, ...rest] = id.split("/");
  return { author, slug: rest.join("/") };
}

// Runs `fn` over `items` with a few calls in flight; collects failures instead of stopping.
async function each(items, fn, width = 8) {
  const failures = [];
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        const detail = typeof e?.pretty === "function" ? e.pretty() : String(e?.message ?? e);
        failures.push(`${item}: ${detail.split("\n").slice(0, 12).join(" | ")}`);
      }
    }
  }
  await Promise.all(Array.from({ length: width }, worker));
  if (failures.length) {
    throw new CheckError(`${failures.length} of ${items.length} failed:\n${failures.slice(0, 15).join("\n")}`);
  }
}

const everything = (await raw("/models?output_modalities=all")).data;
const allIds = everything.map((m) => m.id);
const defaultIds = (await raw("/models")).data.map((m) => m.id);
console.log(`gateway lists ${allIds.length} models (${defaultIds.length} with text output)`);

await check("openrouter: models.list pages through every model (limit 50, output_modalities=all)", async () => {
  const ids = [];
  let pages = 0;
  for await (const page of await or.models.list({ limit: 50, offset: 0, outputModalities: "all" })) {
    pages += 1;
    assert(page.result.totalCount === allIds.length, `totalCount ${page.result.totalCount}, want ${allIds.length}`);
    ids.push(...page.result.data.map((m) => m.id));
    assert(pages <= Math.ceil(allIds.length / 50) + 1, "too many pages");
  }
  sameIds(ids, allIds, "paged ids");
});

await check("openrouter: models.list with the SDK defaults (offset 0, limit 500)", async () => {
  const ids = [];
  for await (const page of await or.models.list()) {
    ids.push(...page.result.data.map((m) => m.id));
  }
  sameIds(ids, defaultIds, "default list");
});

await check("openrouter: models.list filters (supportedParameters=tools, offset 2, limit 3)", async () => {
  const first = await or.models.list({ supportedParameters: "tools", offset: 2, limit: 3 });
  const want = (await raw("/models?supported_parameters=tools")).data.map((m) => m.id);
  sameIds(first.result.data.map((m) => m.id), want.slice(2, 5), "filtered page");
  assert(first.result.totalCount === want.length, `totalCount ${first.result.totalCount}, want ${want.length}`);
});

await check(`openrouter: models.get for all ${allIds.length} models`, async () => {
  await each(allIds, async (id) => {
    const r = await or.models.get(split(id));
    assert(r.data.id === id, `data.id ${r.data.id}`);
  });
});

await check("openrouter: models.count", async () => {
  const r = await or.models.count();
  assert(r.data.count === defaultIds.length, `count ${r.data.count}, want ${defaultIds.length}`);
});

await check(`openrouter: endpoints.list for all ${allIds.length} models`, async () => {
  await each(allIds, async (id) => {
    const r = await or.endpoints.list(split(id));
    assert(r.data.id === id, `data.id ${r.data.id}`);
    assert(r.data.endpoints.length > 0, "no endpoints");
  });
});

await check("openrouter: endpoints.listZdrEndpoints", async () => {
  const r = await or.endpoints.listZdrEndpoints();
  const want = (await raw("/endpoints/zdr")).data;
  assert(r.data.length === want.length, `${r.data.length} endpoints, want ${want.length}`);
});

await check("openrouter: providers.list", async () => {
  const r = await or.providers.list();
  const want = (await raw("/providers")).data.map((p) => p.slug);
  sameIds(r.data.map((p) => p.slug), want, "provider slugs");
});

await check("openrouter: models.listForUser", async () => {
  const ids = [];
  for await (const page of await or.models.listForUser({ bearer: apiKey })) {
    ids.push(...page.result.data.map((m) => m.id));
  }
  sameIds(ids, defaultIds, "user list");
});

await check("openai: models.list iterates the models", async () => {
  const client = new OpenAI({ baseURL: base, apiKey, maxRetries: 0 });
  const ids = [];
  for await (const m of client.models.list()) {
    ids.push(m.id);
  }
  sameIds(ids, defaultIds, "openai models.list");
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
