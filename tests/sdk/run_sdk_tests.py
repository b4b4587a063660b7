"""Runs the official SDKs against `switchyard simulate` and `switchyard serve` as real processes.

Usage: python run_sdk_tests.py PATH_TO_SWITCHYARD_BINARY

Starts the simulator and a gateway (fresh SQLite file in a temporary directory, every provider pointed
at the simulator), creates an account, credits and keys with the CLI, then checks that the `openai`
and `openrouter` Python SDKs parse every response. Prints `N passed, M failed` and exits non-zero on
any failure.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

import openai
from openrouter import OpenRouter

BIN = os.path.abspath(sys.argv[1])
HERE = os.path.dirname(os.path.abspath(__file__))
PROVIDERS = ["openai", "deepinfra", "groq", "together", "mistral"]
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
            f.write(f'[providers.{slug}]\nbase_url = "{sim}/{slug}/v1"\napi_key = "env:SIM_KEY"\n')
    os.environ["SIM_KEY"] = "sim-secret"
    account = cli("accounts", "create", "--name", "sdk", "--config", config)["id"]
    cli("credits", "grant", "--account", account, "--amount", "5", "--config", config)
    key = cli("keys", "create", "--account", account, "--name", "sdk", "--config", config)["key"]
    admin = cli("keys", "create", "--account", account, "--name", "admin", "--management", "--config", config)["key"]
    gateway = start([BIN, "serve", "--config", config, "--listen", "127.0.0.1:0"], "listening on")
    base = f"{gateway}/api/v1"

    # The simulator itself must satisfy the official OpenAI SDK.
    sim_check = subprocess.run(
        [sys.executable, os.path.join(HERE, "..", "..", "crates", "simulator", "tests", "sdk", "check_openai.py"), sim],
        capture_output=True, text=True,
    )
    print("simulator check: " + (sim_check.stdout.strip().splitlines() or ["printed nothing"])[-1])
    check("simulator passes the openai SDK check", lambda: _assert(sim_check.returncode == 0, sim_check.stdout + sim_check.stderr))

    oa = openai.OpenAI(base_url=base, api_key=key, max_retries=0,
                       default_headers={"HTTP-Referer": "https://sdk.test", "X-Title": "SDK test"})
    generation_ids = []

    def openai_chat():
        raw = oa.chat.completions.with_raw_response.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}],
            extra_body={"provider": {"sort": "price"}})
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

    # The CLI sees the same numbers the API reports.
    shown = cli("credits", "show", "--account", account, "--config", config)
    check("cli: credits show matches", lambda: _assert(shown["total_credits"] == 5, shown))


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
