"""Runs the official SDKs against `switchyard simulate` and `switchyard serve` as real processes.

Usage: python run_sdk_tests.py PATH_TO_SWITCHYARD_BINARY

Starts the simulator and a gateway (fresh SQLite file in a temporary directory, every OpenAI- and
Anthropic-protocol provider of the catalog pointed at the simulator), creates an account, credits and keys with the CLI,
then checks that the `openai`, `openrouter` and `anthropic` Python SDKs parse every response (the
`anthropic` one on `/api/v1/messages`, routed to Anthropic and to an OpenAI-protocol upstream), validates every
model-discovery response against OpenRouter's OpenAPI document (`check_discovery_schemas.py`), and
runs the Node SDKs (`tests/node/`, installed under `target/node-sdk/`; skipped, loudly, without
`node`). Prints `N passed, M failed` and exits non-zero on any failure.
"""

import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

import anthropic
import openai
from openrouter import OpenRouter
from openrouter import errors as openrouter_errors

BIN = os.path.abspath(sys.argv[1])
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
CATALOG = os.path.join(REPO, "catalog")
with open(os.path.join(CATALOG, "providers.json")) as _f:
    CATALOG_PROVIDERS = json.load(_f)["providers"]
# Every provider the simulator can stand in for (it speaks OpenAI's and Anthropic's protocols), so
# that part of the catalog is enabled; the others stay disabled (no key).
SIMULATED = ("openai", "anthropic", "gemini", "cohere", "azure", "vertex", "bedrock")
# The test service account (its token endpoint is moved to the simulator) and the simulator's one
# AWS credential.
SERVICE_ACCOUNT = os.path.join(REPO, "tests", "fixtures", "vertex-service-account.json")
SIM_AWS = ("AKIDSWITCHYARDTEST", "switchyard/test/secret/key/EXAMPLE")
PROVIDERS = [p["slug"] for p in CATALOG_PROVIDERS if p["protocol"] in SIMULATED]
# Native upstreams keep their real base URL's path (`/v1beta`, `/v2`, `/openai`); the simulator
# serves every OpenAI-compatible one under `/v1`.
BASE_PATHS = {p["slug"]: "/v1" if p["protocol"] == "openai"
              else "/" + p["base_url"].split("://", 1)[1].partition("/")[2].rstrip("/")
              for p in CATALOG_PROVIDERS}
# Real provider keys in the environment would enable providers the simulator cannot serve.
for _p in CATALOG_PROVIDERS:
    if _p.get("api_key_env"):
        os.environ.pop(_p["api_key_env"], None)
LOGS = tempfile.mkdtemp(prefix="switchyard-sdk-logs-")
results = {"passed": 0, "failed": 0}
procs = []


def start(args, marker):
    """Starts a process and returns the URL from its `... listening on http://ADDR` line."""
    log = open(os.path.join(LOGS, f"{args[1]}.log"), "w")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True)
    procs.append(proc)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if marker in line:
            return line.strip().rsplit(" ", 1)[-1]
    with open(os.path.join(LOGS, f"{args[1]}.log")) as f:
        raise RuntimeError(f"{args[1]} did not start:\n{f.read()[-4000:]}")


def cli(*args):
    out = subprocess.run([BIN, *args, "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def check(name, fn):
    try:
        fn()
        results["passed"] += 1
        print(f"ok   {name}")
    except Exception:  # noqa: BLE001 - report every failure and go on
        results["failed"] += 1
        print(f"FAIL {name}")
        traceback.print_exc()


def main():
    tmp = tempfile.mkdtemp(prefix="switchyard-sdk-")
    sim = start([BIN, "simulate", "--listen", "127.0.0.1:0"], "listening on")
    config = os.path.join(tmp, "switchyard.toml")
    with open(config, "w") as f:
        f.write(f'database = "sqlite://{tmp}/switchyard.db"\n')
        for slug in PROVIDERS:
            f.write(f'[providers."{slug}"]\nbase_url = "{sim}/{slug}{BASE_PATHS[slug].rstrip("/")}"\n')
            protocol = next(p["protocol"] for p in CATALOG_PROVIDERS if p["slug"] == slug)
            if protocol == "vertex":
                with open(SERVICE_ACCOUNT) as sa:
                    account = json.load(sa)
                account["token_uri"] = f"{sim}/{slug}/token"
                sa_path = os.path.join(tmp, f"{slug}-service-account.json")
                with open(sa_path, "w") as sa:
                    json.dump(account, sa)
                f.write(f'credentials_file = "{sa_path}"\n')
            elif protocol == "bedrock":
                f.write(f'access_key_id = "{SIM_AWS[0]}"\nsecret_access_key = "{SIM_AWS[1]}"\n')
            else:
                f.write('api_key = "env:SIM_KEY"\n')
    os.environ["SIM_KEY"] = "sim-secret"
    account = cli("accounts", "create", "--name", "sdk", "--config", config)["id"]
    cli("credits", "grant", "--account", account, "--amount", "5", "--config", config)
    key = cli("keys", "create", "--account", account, "--name", "sdk", "--config", config)["key"]
    admin = cli("keys", "create", "--account", account, "--name", "admin", "--management", "--config", config)["key"]
    gateway = start([BIN, "serve", "--config", config, "--listen", "127.0.0.1:0"], "listening on")
    base = f"{gateway}/api/v1"
    gateway_sim.append(sim)

    # The simulator itself must satisfy the official OpenAI SDK.
    sim_check = subprocess.run(
        [sys.executable, os.path.join(HERE, "..", "..", "crates", "simulator", "tests", "sdk", "check_openai.py"), sim],
        capture_output=True, text=True,
    )
    print("simulator check: " + (sim_check.stdout.strip().splitlines() or ["printed nothing"])[-1])
    check("simulator passes the openai SDK check", lambda: _assert(sim_check.returncode == 0, sim_check.stdout + sim_check.stderr))
    # ... and the official Anthropic SDK, on its Messages API.
    anthropic_check = subprocess.run(
        [sys.executable, os.path.join(HERE, "..", "..", "crates", "simulator", "tests", "sdk", "check_anthropic.py"), sim],
        capture_output=True, text=True,
    )
    print("simulator anthropic check: " + (anthropic_check.stdout.strip().splitlines() or ["printed nothing"])[-1])
    check("simulator passes the anthropic SDK check",
          lambda: _assert(anthropic_check.returncode == 0, anthropic_check.stdout + anthropic_check.stderr))
    # ... and Google's Gen AI SDK, on the Gemini API.
    gemini_check = subprocess.run(
        [sys.executable, os.path.join(HERE, "..", "..", "crates", "simulator", "tests", "sdk", "check_gemini.py"), sim],
        capture_output=True, text=True,
    )
    print("simulator gemini check: " + (gemini_check.stdout.strip().splitlines() or ["printed nothing"])[-1])
    check("simulator passes the google-genai SDK check",
          lambda: _assert(gemini_check.returncode == 0, gemini_check.stdout + gemini_check.stderr))
    # ... and Cohere's SDK on its v2 API, the openai SDK's AzureOpenAI client on Azure's routes, and
    # boto3's bedrock-runtime client on Bedrock's.
    # ... and google-auth, google-genai, AnthropicVertex and the openai SDK on Vertex AI's routes.
    for script, what, args in (("check_cohere.py", "cohere", []), ("check_azure.py", "AzureOpenAI", []),
                               ("check_bedrock.py", "boto3", []),
                               ("check_vertex.py", "Vertex AI", [SERVICE_ACCOUNT])):
        run = subprocess.run(
            [sys.executable, os.path.join(HERE, "..", "..", "crates", "simulator", "tests", "sdk", script), sim,
             *args],
            capture_output=True, text=True,
        )
        print(f"simulator {what} check: " + (run.stdout.strip().splitlines() or ["printed nothing"])[-1])
        check(f"simulator passes the {what} SDK check",
              lambda run=run: _assert(run.returncode == 0, run.stdout + run.stderr))

    oa = openai.OpenAI(base_url=base, api_key=key, max_retries=0,
                       default_headers={"HTTP-Referer": "https://sdk.test", "X-Title": "SDK test"})
    generation_ids = []

    def openai_chat():
        raw = oa.chat.completions.with_raw_response.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}],
            extra_body={"provider": {"sort": "price", "only": ["openai"]}})
        generation_ids.append(raw.headers["x-generation-id"])
        r = raw.parse()
        _assert(r.id == raw.headers["x-generation-id"], r.id)
        _assert(r.model == "openai/gpt-4o-mini", r.model)
        _assert(r.choices[0].message.content, "empty content")
        _assert(r.choices[0].finish_reason == "stop", r.choices[0].finish_reason)
        _assert(r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, r.usage)
        _assert(r.usage.model_extra["cost"] > 0, r.usage)
        _assert(r.model_extra["provider"] == "OpenAI", r.model_extra)

    def openai_stream():
        chunks = list(oa.chat.completions.create(
            model="meta-llama/llama-3.3-70b-instruct", messages=[{"role": "user", "content": "Stream"}], stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        _assert(text, "no streamed content")
        _assert(chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0, chunks[-1])
        _assert(chunks[-1].usage.model_extra["cost"] > 0, chunks[-1].usage)
        generation_ids.append(chunks[0].id)

    def openai_tools():
        tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
        r = oa.chat.completions.create(model="openai/gpt-4o-mini", tools=tools,
                                       messages=[{"role": "user", "content": "Call get_weather for Paris"}])
        call = r.choices[0].message.tool_calls[0]
        _assert(call.function.name == "get_weather", call)
        _assert("city" in json.loads(call.function.arguments), call)
        _assert(r.choices[0].finish_reason == "tool_calls", r.choices[0].finish_reason)
        chunks = list(oa.chat.completions.create(model="openai/gpt-4o-mini", tools=tools, stream=True,
                                                 messages=[{"role": "user", "content": "Call get_weather"}]))
        args = "".join(tc.function.arguments or "" for c in chunks if c.choices
                       for tc in (c.choices[0].delta.tool_calls or []))
        _assert("city" in json.loads(args), args)

    def openai_errors():
        try:
            oa.chat.completions.create(model="acme/none", messages=[{"role": "user", "content": "x"}])
            raise AssertionError("unknown model accepted")
        except openai.BadRequestError as e:
            _assert(e.status_code == 400 and "acme/none" in str(e), e)
        bad = openai.OpenAI(base_url=base, api_key="sk-or-v1-" + "0" * 64, max_retries=0)
        try:
            bad.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
            raise AssertionError("bad key accepted")
        except openai.AuthenticationError as e:
            _assert(e.status_code == 401, e)

    check("openai: chat", openai_chat)
    check("openai: stream", openai_stream)
    check("openai: tools, streamed and not", openai_tools)
    check("openai: errors", openai_errors)

    def openai_embeddings():
        texts = ["first text", "second text", "third"]
        # No encoding_format: the SDK asks for base64 and decodes it itself.
        raw = oa.embeddings.with_raw_response.create(model="openai/text-embedding-3-small", input=texts,
                                                     dimensions=8)
        r = raw.parse()
        _assert(r.model_extra["id"] == raw.headers["x-generation-id"], r.model_extra)
        _assert(r.model == "openai/text-embedding-3-small", r.model)
        _assert([d.index for d in r.data] == [0, 1, 2], r.data)
        _assert(all(len(d.embedding) == 8 and all(isinstance(x, float) for x in d.embedding) for d in r.data),
                r.data)
        _assert(r.usage.prompt_tokens > 0 and r.usage.total_tokens == r.usage.prompt_tokens, r.usage)
        _assert(r.usage.model_extra["cost"] > 0, r.usage)
        floats = oa.embeddings.create(model="openai/text-embedding-3-small", input=texts, dimensions=8,
                                      encoding_format="float")
        for a, b in zip(r.data, floats.data):
            _assert(all(abs(x - y) < 1e-6 for x, y in zip(a.embedding, b.embedding)), (a, b))
        b64 = oa.embeddings.create(model="openai/text-embedding-3-small", input="second text", dimensions=8,
                                   encoding_format="base64")
        _assert(isinstance(b64.data[0].embedding, str), b64.data[0])
        try:
            oa.embeddings.create(model="openai/gpt-4o-mini", input="x")
            raise AssertionError("chat model accepted for embeddings")
        except openai.BadRequestError as e:
            _assert(e.status_code == 400 and "not an embedding model" in str(e), e)

    check("openai: embeddings, base64 (SDK default) and float", openai_embeddings)
    anthropic_checks(gateway, oa, key)
    native_checks(oa)

    def openrouter_chat():
        with OpenRouter(api_key=key, server_url=base, http_referer="https://sdk.test", x_open_router_title="SDK") as c:
            r = c.chat.send(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
            _assert(r.choices[0].message.content, r)
            _assert(r.usage.cost > 0, r.usage)
            generation_ids.append(r.id)

    def openrouter_stream():
        with OpenRouter(api_key=key, server_url=base) as c:
            res = c.chat.send(model="qwen/qwen3-32b", messages=[{"role": "user", "content": "Hi"}], stream=True)
            with res as events:
                chunks = list(events)
            text = "".join((ch.choices[0].delta.content or "") for ch in chunks if ch.choices)
            _assert(text, "no streamed content")
            _assert(chunks[-1].usage is not None and chunks[-1].usage.cost > 0, chunks[-1])

    def openrouter_generation():
        with OpenRouter(api_key=key, server_url=base) as c:
            for gid in generation_ids:
                g = c.generations.get_generation(id=gid).data
                _assert(g.id == gid, g)
                _assert(g.total_cost > 0 and g.tokens_completion > 0, g)
                _assert(g.provider_responses and g.provider_responses[0].status == 200, g)

    def openrouter_key_and_credits():
        with OpenRouter(api_key=key, server_url=base) as c:
            k = c.api_keys.get_current_key_metadata().data
            _assert(k.label.startswith("sk-or-v1-") and not k.is_management_key, k)
        with OpenRouter(api_key=admin, server_url=base) as c:
            credits = c.credits.get_credits().data
            _assert(credits.total_credits == 5 and credits.total_usage > 0, credits)
            _assert(c.api_keys.get_current_key_metadata().data.is_management_key, "management flag")

    check("openrouter: chat", openrouter_chat)
    check("openrouter: stream", openrouter_stream)
    check("openrouter: generations.get_generation", openrouter_generation)
    check("openrouter: api_keys.get_current_key_metadata, credits.get_credits", openrouter_key_and_credits)

    def openrouter_key_lifecycle():
        with OpenRouter(api_key=admin, server_url=base) as c:
            created = c.api_keys.create(name="sdk-lifecycle", limit=0.5, limit_reset="daily", include_byok_in_limit=False)
            new_key, h = created.key, created.data.hash
            _assert(new_key.startswith("sk-or-v1-") and created.data.limit == 0.5, created)
            _assert(created.data.limit_reset == "daily" and not created.data.disabled, created.data)
            listed = c.api_keys.list(include_disabled=True).data
            _assert(any(k.hash == h for k in listed), "created key is listed")
            _assert(c.api_keys.get(hash=h).data.name == "sdk-lifecycle", "get by hash")
            with OpenRouter(api_key=new_key, server_url=base) as mine:
                meta = mine.api_keys.get_current_key_metadata().data
                _assert(meta.limit == 0.5 and meta.limit_remaining == 0.5, meta)
                r = mine.chat.send(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
                _assert(r.usage.cost > 0, r.usage)
            updated = c.api_keys.update(hash=h, limit=1.25, disabled=True, name="sdk-renamed").data
            _assert(updated.limit == 1.25 and updated.disabled and updated.name == "sdk-renamed", updated)
            _assert(not any(k.hash == h for k in c.api_keys.list().data), "disabled keys are hidden by default")
            _assert(c.api_keys.delete(hash=h).DELETED, "deleted")
            try:
                c.api_keys.get(hash=h)
                raise AssertionError("deleted key still found")
            except AssertionError:
                raise
            except Exception as e:  # noqa: BLE001 - the SDK raises its 404 error type
                _assert("404" in str(e) or "not found" in str(e).lower(), e)
            credits = c.credits.get_credits().data
            _assert(credits.total_usage > 0, credits)

    check("openrouter: api_keys create, list, get, update, delete; credits", openrouter_key_lifecycle)

    discovery_checks(gateway, base, key, admin)

    # The CLI sees the same numbers the API reports.
    shown = cli("credits", "show", "--account", account, "--config", config)
    check("cli: credits show matches", lambda: _assert(shown["total_credits"] == 5, shown))


HAIKU = "anthropic/claude-haiku-4.5"
WEATHER = {"name": "get_weather", "description": "Weather in a city", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
TIME = {"name": "get_time", "description": "Time in a city", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def anthropic_checks(gateway, oa, key):
    """The `anthropic` SDK on the gateway's `/api` base (as Claude Code uses it), once served by the
    Anthropic simulator and once by an OpenAI-protocol upstream; and the `openai` SDK on a Claude model."""
    ac = anthropic.Anthropic(api_key=key, base_url=f"{gateway}/api", max_retries=0)
    user = {"role": "user", "content": "Say hello"}

    # Claude is also served by Vertex AI and Bedrock: pin each model to the upstream named.
    for model, upstream, only in ((HAIKU, "Anthropic", "anthropic"), ("openai/gpt-4o-mini", "OpenAI-protocol", "openai")):
        route = {"provider": {"only": [only]}}
        def plain(model=model, route=route):
            m = ac.messages.create(model=model, extra_body=route, max_tokens=64, system="Be brief.", messages=[user])
            _assert(m.type == "message" and m.role == "assistant", m)
            _assert(m.content and m.content[0].type == "text" and m.content[0].text, m.content)
            _assert(m.stop_reason == "end_turn", m.stop_reason)
            _assert(m.usage.output_tokens > 0, m.usage)
            _assert(m.model_extra.get("provider"), m.model_extra)

        def stream(model=model, route=route):
            with ac.messages.stream(model=model, extra_body=route, max_tokens=64, messages=[user]) as s:
                text = "".join(s.text_stream)
                final = s.get_final_message()
            _assert(text and final.content[0].text == text, (text, final.content))
            _assert(final.stop_reason == "end_turn", final.stop_reason)

        def tools(model=model, route=route):
            first = [{"role": "user", "content": "Use get_weather and get_time for Paris"}]
            m = ac.messages.create(model=model, extra_body=route, max_tokens=256, tools=[WEATHER, TIME], messages=first)
            uses = [b for b in m.content if b.type == "tool_use"]
            _assert(m.stop_reason == "tool_use" and uses, m)
            _assert(all(isinstance(u.input, dict) and "city" in u.input for u in uses), uses)
            with ac.messages.stream(model=model, extra_body=route, max_tokens=256, tools=[WEATHER, TIME], messages=first) as s:
                streamed = s.get_final_message()
            _assert([u.name for u in uses] == [b.name for b in streamed.content if b.type == "tool_use"], streamed)
            second = first + [{"role": "assistant", "content": m.content},
                              {"role": "user", "content": [
                                  {"type": "tool_result", "tool_use_id": u.id, "content": "sunny"} for u in uses]}]
            again = ac.messages.create(model=model, extra_body=route, max_tokens=256, tools=[WEATHER, TIME], messages=second)
            _assert(again.type == "message" and again.content, again)

        def thinking(model=model, route=route):
            kwargs = dict(model=model, extra_body=route, max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024})
            m = ac.messages.create(**kwargs, tools=[WEATHER],
                                   messages=[{"role": "user", "content": "Think, then call get_weather for Oslo"}])
            blocks = [b.type for b in m.content]
            if upstream == "Anthropic":
                _assert(blocks[0] == "thinking" and m.content[0].signature, m.content)
            _assert("tool_use" in blocks, blocks)
            use = next(b for b in m.content if b.type == "tool_use")
            with ac.messages.stream(**kwargs, messages=[
                    {"role": "user", "content": "Think, then call get_weather for Oslo"},
                    {"role": "assistant", "content": m.content},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "cold"}]},
            ]) as s:
                final = s.get_final_message()
            _assert(final.content, final)
            if upstream == "Anthropic":
                # The thinking block went back to the upstream with its signature intact.
                sent = _sim_requests(gateway_sim[0], "anthropic")[-1]["body"]["messages"][1]["content"][0]
                _assert(sent == {"type": "thinking", "thinking": m.content[0].thinking,
                                 "signature": m.content[0].signature}, sent)

        check(f"anthropic: messages.create via {upstream}", plain)
        check(f"anthropic: messages.stream via {upstream}", stream)
        check(f"anthropic: tools over two turns, streamed and not, via {upstream}", tools)
        check(f"anthropic: thinking passed back on the next turn via {upstream}", thinking)

    def count_and_errors():
        n = ac.messages.count_tokens(model=HAIKU, messages=[user])
        _assert(n.input_tokens > 0, n)
        try:
            ac.messages.create(model="acme/none", max_tokens=5, messages=[user])
            raise AssertionError("unknown model accepted")
        except anthropic.BadRequestError as e:
            _assert(e.status_code == 400 and e.body["error"]["type"] == "invalid_request_error", e.body)

    check("anthropic: count_tokens and errors", count_and_errors)

    def openai_on_claude():
        tools = [{"type": "function", "function": {"name": t["name"], "parameters": t["input_schema"]}}
                 for t in (WEATHER, TIME)]
        chunks = list(oa.chat.completions.create(
            model=HAIKU, tools=tools, stream=True,
            messages=[{"role": "user", "content": "Use get_weather and get_time for Rome"}]))
        calls = {}
        for c in chunks:
            for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
                entry = calls.setdefault(tc.index, {"name": "", "arguments": ""})
                entry["name"] += (tc.function.name or "") if tc.function else ""
                entry["arguments"] += (tc.function.arguments or "") if tc.function else ""
        _assert(sorted(calls) == [0, 1], calls)
        _assert([calls[i]["name"] for i in (0, 1)] == ["get_weather", "get_time"], calls)
        _assert(all("city" in json.loads(c["arguments"]) for c in calls.values()), calls)
        system = [{"type": "text", "text": "Stable instructions. " * 300, "cache_control": {"type": "ephemeral"}}]
        for _ in range(2):
            r = oa.chat.completions.create(model=HAIKU, max_tokens=16, extra_body={"provider": {"only": ["anthropic"]}}, messages=[
                {"role": "system", "content": system}, {"role": "user", "content": "hi"}])
        u = r.usage
        cached = u.prompt_tokens_details.cached_tokens
        written = u.prompt_tokens_details.model_extra.get("cache_write_tokens") or 0
        _assert(cached > 0, u)
        # Haiku 4.5 per token: $1/M prompt, $0.10/M cache read, $1.25/M cache write, $5/M completion.
        want = ((u.prompt_tokens - cached - written) * 1.0 + cached * 0.1 + written * 1.25
                + u.completion_tokens * 5.0) / 1e6
        _assert(abs(u.model_extra["cost"] - want) < 1e-9, (u, want))

    check("openai: Claude streams parallel tool calls with indices and whole arguments; cache reads priced",
          openai_on_claude)


NATIVE = (("google/gemini-2.0-flash-001", "google-ai-studio", (0.1, 0.4)),
          ("cohere/command-a", "cohere", (2.5, 10.0)),
          ("openai/gpt-4o-mini", "azure", (0.15, 0.6)),
          ("google/gemini-2.5-flash", "google-vertex", (0.3, 2.5)),
          ("anthropic/claude-sonnet-4.5", "google-vertex", (3.0, 15.0)),
          ("meta-llama/llama-3.3-70b-instruct", "google-vertex", (0.72, 0.72)),
          ("amazon/nova-lite-v1", "amazon-bedrock", (0.06, 0.24)),
          ("anthropic/claude-3.5-haiku", "amazon-bedrock", (0.8, 4.0)))


def native_checks(oa):
    """The `openai` SDK through the gateway to each native protocol: tools streamed and not, and
    costs equal to tokens times the catalog's prices (USD per million)."""
    tools = [{"type": "function", "function": {"name": t["name"], "parameters": t["input_schema"]}}
             for t in (WEATHER, TIME)]
    for model, provider, (prompt_price, completion_price) in NATIVE:
        extra = {"provider": {"only": [provider]}}

        def whole(model=model, extra=extra, prices=(prompt_price, completion_price)):
            ask = [{"role": "user", "content": "Use get_weather and get_time for Lima"}]
            r = oa.chat.completions.create(model=model, tools=tools, messages=ask, extra_body=extra)
            calls = r.choices[0].message.tool_calls
            _assert([c.function.name for c in calls] == ["get_weather", "get_time"], r)
            _assert(all("city" in json.loads(c.function.arguments) for c in calls), calls)
            u = r.usage
            want = (u.prompt_tokens * prices[0] + u.completion_tokens * prices[1]) / 1e6
            _assert(abs(u.model_extra["cost"] - want) < 1e-9, (u, want))
            follow = ask + [r.choices[0].message.model_dump(exclude_none=True)] + [
                {"role": "tool", "tool_call_id": c.id, "content": "warm"} for c in calls]
            again = oa.chat.completions.create(model=model, tools=tools, messages=follow, extra_body=extra)
            _assert(again.choices[0].message.content, again)

        def streamed(model=model, extra=extra):
            chunks = list(oa.chat.completions.create(
                model=model, tools=tools, stream=True, extra_body=extra,
                messages=[{"role": "user", "content": "Use get_weather and get_time for Kyiv"}]))
            calls = {}
            for c in chunks:
                for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
                    entry = calls.setdefault(tc.index, {"name": "", "arguments": ""})
                    entry["name"] += (tc.function.name or "") if tc.function else ""
                    entry["arguments"] += (tc.function.arguments or "") if tc.function else ""
            _assert([calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"], calls)
            _assert(all("city" in json.loads(c["arguments"]) for c in calls.values()), calls)
            _assert(chunks[-1].usage and chunks[-1].usage.model_extra["cost"] > 0, chunks[-1])

        check(f"openai: {model} via {provider}: tools over two turns, exact cost", whole)
        check(f"openai: {model} via {provider}: streamed parallel tool calls", streamed)

    # Bedrock's embedding models are not in the catalog (OpenRouter lists none); the gateway's
    # integration tests add one as a private model.
    for model, provider, price in (("google/gemini-embedding-001", "google-vertex", 0.15),):
        def embed(model=model, provider=provider, price=price):
            r = oa.embeddings.create(model=model, input="a text to embed", dimensions=256,
                                     extra_body={"provider": {"only": [provider]}})
            _assert(len(r.data) == 1 and len(r.data[0].embedding) == 256, r.data)
            u = r.usage
            _assert(u.prompt_tokens > 0 and abs(u.model_extra["cost"] - u.prompt_tokens * price / 1e6) < 1e-12, u)

        check(f"openai: embeddings of {model} via {provider}, exact cost", embed)


gateway_sim = []


def _sim_requests(sim, upstream):
    with urllib.request.urlopen(f"{sim}/_sim/{upstream}/requests") as r:
        return json.loads(r.read())


def discovery_checks(gateway, base, key, admin):
    """The model-discovery endpoints: the OpenAPI schema check, then the Python and Node SDKs."""
    schemas = subprocess.run(
        [sys.executable, os.path.join(HERE, "check_discovery_schemas.py"), gateway, "--api-key", key,
         "--catalog", CATALOG, "--enabled-providers", ",".join(PROVIDERS)],
        capture_output=True, text=True,
    )
    print("discovery schema check: " + (schemas.stdout.strip().splitlines() or ["printed nothing"])[-1])
    check("discovery responses match the OpenAPI schemas and semantics",
          lambda: _assert(schemas.returncode == 0, "\n" + _failures(schemas.stdout) + schemas.stderr[-4000:]))

    def raw(path):
        with urllib.request.urlopen(f"{base}{path}") as r:
            return json.loads(r.read())

    everything = [m["id"] for m in raw("/models?output_modalities=all")["data"]]
    default = [m["id"] for m in raw("/models")["data"]]

    def split(model_id):
        author, slug = model_id.split("/", 1)
        return {"author": author, "slug": slug}

    def openrouter_models_list():
        with OpenRouter(api_key=key, server_url=base) as c:
            got, pages = [], 0
            res = c.models.list(limit=50, offset=0, output_modalities="all")
            while res is not None:
                pages += 1
                _assert(res.result.total_count == len(everything), res.result.total_count)
                got += [m.id for m in res.result.data]
                _assert(pages <= len(everything) // 50 + 2, "too many pages")
                res = res.next()
            _assert(got == everything, f"{len(got)} paged ids vs {len(everything)}")
            page = c.models.list(offset=3, limit=4).result
            _assert([m.id for m in page.data] == default[3:7], [m.id for m in page.data])
            _assert(page.total_count == len(default), page.total_count)
            first = c.models.list().result  # the SDK's defaults: offset 0, limit 500
            _assert([m.id for m in first.data] == default[:500], len(first.data))

    def openrouter_models_get():
        with OpenRouter(api_key=key, server_url=base) as c:
            for model_id in everything:
                m = c.models.get(**split(model_id)).data
                _assert(m.id == model_id, m.id)
            try:
                c.models.get(author="acme", slug="no-such-model")
                raise AssertionError("unknown model found")
            except openrouter_errors.NotFoundResponseError as e:
                _assert(e.data.error.code == 404, e.data)

    def openrouter_models_count():
        with OpenRouter(api_key=key, server_url=base) as c:
            _assert(c.models.count().data.count == len(default), "count")
            _assert(c.models.count(output_modalities="all").data.count == len(everything), "count all")

    def openrouter_endpoints():
        with OpenRouter(api_key=key, server_url=base) as c:
            for model_id in everything:
                d = c.endpoints.list(**split(model_id)).data
                _assert(d.id == model_id and d.endpoints, (model_id, d.id, len(d.endpoints)))
            zdr = c.endpoints.list_zdr_endpoints().data
            _assert(len(zdr) == len(raw("/endpoints/zdr")["data"]), len(zdr))

    def openrouter_providers():
        with OpenRouter(api_key=key, server_url=base) as c:
            slugs = [p.slug for p in c.providers.list().data]
            _assert(slugs == [p["slug"] for p in raw("/providers")["data"]], slugs)

    def openrouter_models_for_user():
        with OpenRouter(api_key=key, server_url=base) as c:
            got, res = [], c.models.list_for_user(security={"bearer": key}, limit=100)
            while res is not None:
                got += [m.id for m in res.result.data]
                res = res.next()
            _assert(got == default, f"{len(got)} ids vs {len(default)}")

    def openai_models_list():
        oa = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
        got = [m.id for m in oa.models.list()]
        _assert(got == default, f"{len(got)} ids vs {len(default)}")

    check("openrouter: models.list, paged (limit 50) and with offset", openrouter_models_list)
    check(f"openrouter: models.get for all {len(everything)} models, and a 404", openrouter_models_get)
    check("openrouter: models.count", openrouter_models_count)
    check(f"openrouter: endpoints.list for all {len(everything)} models, endpoints.list_zdr_endpoints",
          openrouter_endpoints)
    check("openrouter: providers.list", openrouter_providers)
    check("openrouter: models.list_for_user", openrouter_models_for_user)
    check("openai: models.list iterates the models", openai_models_list)
    node_checks(gateway, key, admin)


def node_checks(gateway, key, admin):
    """Installs the pinned Node SDKs under target/node-sdk (outside git) and runs discovery.mjs."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        print("!" * 78)
        print("SKIP node SDK checks: `node` and `npm` are needed (Node 20+); tests/node/ was NOT run")
        print("!" * 78)
        return
    src = os.path.join(REPO, "tests", "node")
    dest = os.path.join(REPO, "target", "node-sdk")
    os.makedirs(dest, exist_ok=True)
    manifests = ["package.json", "package-lock.json"]
    fresh = all(os.path.exists(os.path.join(dest, f)) and filecmp.cmp(os.path.join(src, f), os.path.join(dest, f),
                                                                      shallow=False) for f in manifests)
    if not fresh or not os.path.isdir(os.path.join(dest, "node_modules")):
        for f in manifests:
            shutil.copyfile(os.path.join(src, f), os.path.join(dest, f))
        install = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=dest, capture_output=True, text=True)
        if install.returncode != 0:
            for f in manifests:  # so the next run installs again
                os.remove(os.path.join(dest, f))
            check("node: npm ci of tests/node", lambda: _assert(False, install.stdout + install.stderr))
            return
    for script, secret, what in [("discovery.mjs", key, "discovery calls"), ("keys.mjs", admin, "key lifecycle and credits")]:
        shutil.copyfile(os.path.join(src, script), os.path.join(dest, script))
        run = subprocess.run([node, script, gateway, secret], cwd=dest, capture_output=True, text=True)
        print(f"node SDK check ({script}): " + (run.stdout.strip().splitlines() or ["printed nothing"])[-1])
        check(f"node: @openrouter/sdk {what}",
              lambda run=run: _assert(run.returncode == 0, "\n" + _failures(run.stdout) + run.stderr[-4000:]))


def _failures(output):
    """The FAIL lines of a checker's output, with their indented details."""
    keep, out = False, []
    for line in output.splitlines():
        if line.startswith(("FAIL", "note:")):
            keep = True
        elif not line.startswith(" "):
            keep = False
        if keep:
            out.append(line)
    return "\n".join(out) + "\n"


def _assert(cond, detail):
    if not cond:
        raise AssertionError(str(detail))


if __name__ == "__main__":
    try:
        main()
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        results["failed"] += 1
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    print(f"{results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] else 0)
