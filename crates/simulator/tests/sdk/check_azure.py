"""Checks that the official OpenAI Python SDK's `AzureOpenAI` client parses everything the
simulator's Azure OpenAI routes send.

Usage: python check_azure.py http://127.0.0.1:PORT
Needs the `openai` version pinned in tests/sdk/requirements.txt. Talks to the simulated upstream
named `azure` through `AzureOpenAI(azure_endpoint=<sim>/azure, api_version="2024-10-21")` (the SDK
calls `<sim>/azure/openai/deployments/{model}/...?api-version=...` with an `api-key` header),
prints `N passed, M failed` and exits non-zero on any failure.
"""

import json
import sys
import traceback
import urllib.request

import openai

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8080"
UPSTREAM = "azure"
API_VERSION = "2024-10-21"
DEPLOYMENT = "gpt-4o-mini"
DEPLOYMENT_MODEL = "gpt-4o-mini-2024-07-18"
client = openai.AzureOpenAI(
    azure_endpoint=f"{BASE}/{UPSTREAM}", api_key="azure-sim", api_version=API_VERSION, max_retries=0
)

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hello, world!"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
SAFE = {"filtered": False, "severity": "safe"}

results = []


def check(fn):
    try:
        fn()
        results.append((fn.__name__, None))
        print(f"ok   {fn.__name__}")
    except Exception:  # noqa: BLE001 - report every failure and keep going
        results.append((fn.__name__, traceback.format_exc()))
        print(f"FAIL {fn.__name__}\n{traceback.format_exc()}")
    return fn


def control(path, body):
    req = urllib.request.Request(
        f"{BASE}/_sim/{UPSTREAM}/{path}",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200


def reset_upstream():
    req = urllib.request.Request(f"{BASE}/_sim/{UPSTREAM}", method="DELETE")
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200


def recorded():
    with urllib.request.urlopen(f"{BASE}/_sim/{UPSTREAM}/requests") as resp:
        return json.load(resp)


reset_upstream()


@check
def chat_with_filter_annotations():
    raw = client.chat.completions.with_raw_response.create(model=DEPLOYMENT, messages=MESSAGES)
    reply = raw.parse()
    assert raw.headers["apim-request-id"] == raw.headers["x-request-id"]
    assert reply.object == "chat.completion" and reply.id.startswith("chatcmpl-")
    assert reply.model == DEPLOYMENT_MODEL, reply.model
    choice = reply.choices[0]
    assert choice.finish_reason == "stop" and len(choice.message.content.split(" ")) == 16
    assert choice.model_extra["content_filter_results"]["violence"] == SAFE
    prompt = reply.model_extra["prompt_filter_results"][0]
    assert prompt["prompt_index"] == 0 and prompt["content_filter_results"]["hate"] == SAFE
    assert reply.usage.prompt_tokens == 19 and reply.usage.completion_tokens == 16
    request = recorded()[-1]
    assert request["path"] == f"/{UPSTREAM}/openai/deployments/{DEPLOYMENT}/chat/completions?api-version={API_VERSION}"
    assert request["headers"]["api-key"] == "azure-sim"


@check
def stream_tolerates_the_prompt_filter_chunk():
    expected = client.chat.completions.create(model=DEPLOYMENT, messages=MESSAGES)
    chunks = list(client.chat.completions.create(
        model=DEPLOYMENT, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ))
    first = chunks[0]
    assert first.choices == [] and first.model_extra["prompt_filter_results"], first
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].usage.completion_tokens == 16 and chunks[-1].choices == []
    assert all(c.model == DEPLOYMENT_MODEL for c in chunks[1:])
    with client.chat.completions.stream(model=DEPLOYMENT, messages=MESSAGES) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == expected.choices[0].message.content


@check
def tools_streamed_and_not():
    messages = [{"role": "user", "content": "Please call get_weather for Paris"}]
    reply = client.chat.completions.create(model=DEPLOYMENT, messages=messages, tools=TOOLS)
    (call,) = reply.choices[0].message.tool_calls
    assert reply.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    args = "".join(
        tc.function.arguments or ""
        for c in client.chat.completions.create(model=DEPLOYMENT, messages=messages, tools=TOOLS, stream=True)
        if c.choices
        for tc in c.choices[0].delta.tool_calls or []
    )
    assert args == call.function.arguments and "city" in json.loads(args)


@check
def embeddings():
    reply = client.embeddings.create(model="text-embedding-3-small", input=["hello world", "bye"])
    assert reply.model == "text-embedding-3-small"
    assert len(reply.data) == 2 and len(reply.data[0].embedding) == 16
    assert reply.usage.prompt_tokens == 3
    assert recorded()[-1]["path"].startswith(f"/{UPSTREAM}/openai/deployments/text-embedding-3-small/embeddings?")


@check
def prompt_content_filter_error():
    try:
        client.chat.completions.create(
            model=DEPLOYMENT, messages=[{"role": "user", "content": "Tell me something azure-filter"}]
        )
    except openai.BadRequestError as e:
        assert e.status_code == 400 and e.code == "content_filter", (e.code, e.body)
        assert e.param == "prompt"
        inner = e.body["innererror"]
        assert inner["code"] == "ResponsibleAIPolicyViolation"
        assert inner["content_filter_result"]["violence"] == {"filtered": True, "severity": "medium"}
    else:
        raise AssertionError("expected BadRequestError")
    try:
        list(client.chat.completions.create(
            model=DEPLOYMENT, stream=True, messages=[{"role": "user", "content": "azure-jailbreak now"}]
        ))
    except openai.BadRequestError as e:
        assert e.body["innererror"]["content_filter_result"]["jailbreak"] == {"filtered": True, "detected": True}
    else:
        raise AssertionError("expected BadRequestError")


@check
def output_content_filter_finish_reason():
    messages = [{"role": "user", "content": "Write azure-filter-output"}]
    reply = client.chat.completions.create(model=DEPLOYMENT, messages=messages)
    choice = reply.choices[0]
    assert choice.finish_reason == "content_filter"
    assert choice.model_extra["content_filter_results"]["violence"]["filtered"] is True
    assert len(choice.message.content.split(" ")) == 8
    chunks = list(client.chat.completions.create(model=DEPLOYMENT, messages=messages, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == choice.message.content
    assert chunks[-1].choices[0].finish_reason == "content_filter"


@check
def auth_version_and_fault_errors():
    try:
        # An empty key is no key.
        client.chat.completions.create(model=DEPLOYMENT, messages=MESSAGES, extra_headers={"api-key": ""})
    except openai.AuthenticationError as e:
        assert e.status_code == 401 and e.code == "401", e.body
    else:
        raise AssertionError("expected AuthenticationError")
    unversioned = openai.OpenAI(base_url=f"{BASE}/{UPSTREAM}/openai/deployments/{DEPLOYMENT}", api_key="k", max_retries=0)
    try:
        unversioned.chat.completions.create(model=DEPLOYMENT, messages=MESSAGES)
    except openai.NotFoundError as e:
        assert e.status_code == 404 and e.body == {"code": "404", "message": "Resource not found"}, e.body
    else:
        raise AssertionError("expected NotFoundError")
    control("faults", [{"status": 429, "retry_after_s": 1}, {"status": 500}])
    try:
        client.chat.completions.create(model=DEPLOYMENT, messages=MESSAGES)
    except openai.RateLimitError as e:
        assert e.code == "429" and e.response.headers["retry-after"] == "1"
        assert e.response.headers["retry-after-ms"] == "1000"
    else:
        raise AssertionError("expected RateLimitError")
    try:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    except openai.InternalServerError as e:
        assert e.status_code == 500
    else:
        raise AssertionError("expected InternalServerError")


reset_upstream()
failed = [name for name, err in results if err]
print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
