"""Checks that the official OpenAI Python SDK parses everything the simulator sends.

Usage: python check_openai.py http://127.0.0.1:PORT
Needs `pip install openai==3.54.0`. Talks to the simulated upstream named `openai`
(base URL <sim>/openai/v1), prints `N passed, M failed` and exits non-zero on any failure.
"""

import json
import struct
import sys
import traceback
import urllib.request

import openai

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8080"
UPSTREAM = "openai"
client = openai.OpenAI(base_url=f"{BASE}/{UPSTREAM}/v1", api_key="sk-sim", max_retries=0)

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hello, world!"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city", "unit"],
                "additionalProperties": False,
            },
        },
    }
]

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


# Start from a clean upstream: default behaviour, no leftover faults.
reset_upstream()


@check
def chat_non_stream():
    reply = client.chat.completions.create(model="gpt-sim", messages=MESSAGES)
    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert reply.model == "gpt-sim"
    choice = reply.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and len(choice.message.content.split(" ")) == 16
    assert choice.message.refusal is None
    assert reply.usage.prompt_tokens == 19 and reply.usage.completion_tokens == 16
    assert reply.usage.total_tokens == 35
    assert reply.usage.prompt_tokens_details.cached_tokens == 0
    assert reply.usage.completion_tokens_details.reasoning_tokens == 0
    assert reply.system_fingerprint == "fp_sim"


@check
def chat_max_tokens_length():
    reply = client.chat.completions.create(model="gpt-sim", messages=MESSAGES, max_tokens=4)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 4


@check
def chat_stream_with_usage():
    expected = client.chat.completions.create(model="gpt-sim", messages=MESSAGES)
    stream = client.chat.completions.create(
        model="gpt-sim", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    content, finish, usage, roles = "", None, None, []
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            assert chunk.choices == []
            usage = chunk.usage
            continue
        delta = chunk.choices[0].delta
        if delta.role:
            roles.append(delta.role)
        content += delta.content or ""
        finish = chunk.choices[0].finish_reason or finish
    assert roles == ["assistant"]
    assert content == expected.choices[0].message.content
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == 16 and usage.prompt_tokens == 19


@check
def chat_stream_helper():
    # The SDK's higher-level streaming helper accumulates the final completion itself.
    with client.chat.completions.stream(model="gpt-sim", messages=MESSAGES) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "stop"
    assert len(final.choices[0].message.content.split(" ")) == 16


@check
def tools_non_stream():
    reply = client.chat.completions.create(
        model="gpt-sim",
        messages=[{"role": "user", "content": "Please call get_weather for Paris"}],
        tools=TOOLS,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    assert isinstance(args["city"], str) and args["unit"] in ("celsius", "fahrenheit")


@check
def tools_stream():
    stream = client.chat.completions.create(
        model="gpt-sim",
        messages=[{"role": "user", "content": "Please call get_weather for Paris"}],
        tools=TOOLS,
        stream=True,
    )
    calls, finish = {}, None
    for chunk in stream:
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for tc in choice.delta.tool_calls or []:
            entry = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
            if tc.id:
                entry["id"] = tc.id
            if tc.function and tc.function.name:
                entry["name"] += tc.function.name
            if tc.function and tc.function.arguments:
                entry["arguments"] += tc.function.arguments
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather" and calls[0]["id"].startswith("call_")
    args = json.loads(calls[0]["arguments"])
    assert set(args) >= {"city", "unit"}


@check
def tools_stream_helper():
    with client.chat.completions.stream(
        model="gpt-sim",
        messages=[{"role": "user", "content": "Please call get_weather for Paris"}],
        tools=TOOLS,
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert json.loads(call.function.arguments)["unit"] in ("celsius", "fahrenheit")


@check
def json_schema_response_format():
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "age", "tags"],
        "additionalProperties": False,
    }
    reply = client.chat.completions.create(
        model="gpt-sim",
        messages=MESSAGES,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "strict": True, "schema": schema}},
    )
    doc = json.loads(reply.choices[0].message.content)
    assert isinstance(doc["name"], str) and 0 <= doc["age"] <= 120 and isinstance(doc["tags"], list)


@check
def pydantic_parse():
    # `.parse()` sends a pydantic-generated schema ($defs/$ref) and validates the answer.
    from pydantic import BaseModel

    class Address(BaseModel):
        city: str
        zip_code: str

    class Person(BaseModel):
        name: str
        age: int
        address: Address

    reply = client.chat.completions.parse(model="gpt-sim", messages=MESSAGES, response_format=Person)
    person = reply.choices[0].message.parsed
    assert isinstance(person, Person) and isinstance(person.address.city, str)


@check
def embeddings_default_base64():
    reply = client.embeddings.create(model="emb-sim", input=["hello world", "bye"])
    assert len(reply.data) == 2
    vec = reply.data[0].embedding
    assert len(vec) == 16
    assert abs(sum(x * x for x in vec) - 1.0) < 1e-4
    assert reply.usage.prompt_tokens == 3


@check
def embeddings_float():
    floats = client.embeddings.create(model="emb-sim", input="hello world", encoding_format="float")
    default = client.embeddings.create(model="emb-sim", input="hello world", dimensions=16)
    # JSON floats are the f32 values' shortest decimals; compare at f32 precision.
    as_f32 = lambda v: struct.unpack(f"<{len(v)}f", struct.pack(f"<{len(v)}f", *v))  # noqa: E731
    assert as_f32(floats.data[0].embedding) == as_f32(default.data[0].embedding)


@check
def models_list():
    ids = [m.id for m in client.models.list()]
    assert "gpt-sim" in ids and "emb-sim" in ids


@check
def rate_limit_error():
    control("faults", [{"status": 429, "retry_after_s": 1}])
    try:
        client.chat.completions.create(model="gpt-sim", messages=MESSAGES)
    except openai.RateLimitError as e:
        assert e.status_code == 429
        assert e.code == "rate_limit_exceeded"
        assert e.response.headers["retry-after"] == "1"
    else:
        raise AssertionError("expected RateLimitError")
    # The fault was used up: the next request succeeds.
    client.chat.completions.create(model="gpt-sim", messages=MESSAGES)


@check
def server_error():
    control("faults", [{"status": 500}])
    try:
        client.chat.completions.create(model="gpt-sim", messages=MESSAGES)
    except openai.InternalServerError as e:
        assert e.status_code == 500
    else:
        raise AssertionError("expected InternalServerError")


reset_upstream()
failed = [name for name, err in results if err]
print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
