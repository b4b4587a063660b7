"""Checks that Google's official Gen AI Python SDK parses everything the simulator's Gemini module sends.

Usage: python check_gemini.py http://127.0.0.1:PORT
Needs `pip install google-genai==3.4.0` (pinned in tests/sdk/requirements.txt). Talks to the
simulated upstream named `gemini` with `base_url=<sim>/gemini` and `api_version="v1beta"` (the SDK
joins them as `<sim>/gemini/v1beta/models/{model}:{method}`; this SDK's default version is `v1`),
prints `N passed, M failed` and exits non-zero on any failure.
"""

import json
import sys
import traceback
import urllib.error
import urllib.request

import pydantic
from google import genai
from google.genai import errors, types

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8080"
UPSTREAM = "gemini"
MODEL = "gemini-sim"
client = genai.Client(
    api_key="sim",
    http_options=types.HttpOptions(base_url=f"{BASE}/{UPSTREAM}", api_version="v1beta"),
)

PROMPT = "Hello, world!"
# The fixed tokenizer: `Hello` `,` `world` `!`; no per-turn overhead.
PROMPT_TOKENS = 4
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Weather for a city",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={
            "city": types.Schema(type=types.Type.STRING),
            "unit": types.Schema(type=types.Type.STRING, enum=["celsius", "fahrenheit"]),
        },
        required=["city", "unit"],
    ),
)
TIME = types.FunctionDeclaration(
    name="get_time",
    description="Local time in a city",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TOOLS = [types.Tool(function_declarations=[WEATHER, TIME])]
BOTH = "Please call get_weather and get_time for Paris"

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
def generate_plain():
    reply = client.models.generate_content(model=MODEL, contents=PROMPT)
    assert len(reply.text.split(" ")) == 16, reply.text
    (candidate,) = reply.candidates
    assert candidate.finish_reason == types.FinishReason.STOP
    assert candidate.content.role == "model"
    assert reply.model_version == MODEL and reply.response_id
    usage = reply.usage_metadata
    assert usage.prompt_token_count == PROMPT_TOKENS and usage.candidates_token_count == 16
    assert usage.total_token_count == PROMPT_TOKENS + 16
    assert usage.prompt_tokens_details[0].modality == types.MediaModality.TEXT
    again = client.models.generate_content(model=MODEL, contents=PROMPT)
    assert again.text == reply.text, "deterministic"
    assert again.response_id != reply.response_id
    sent = recorded()[-1]
    assert sent["path"] == f"/{UPSTREAM}/v1beta/models/{MODEL}:generateContent", sent["path"]
    assert sent["headers"]["x-goog-api-key"] == "sim"


@check
def system_instruction_and_max_tokens():
    config = types.GenerateContentConfig(system_instruction="Be terse.", max_output_tokens=5, stop_sequences=["zzz"])
    reply = client.models.generate_content(model=MODEL, contents=PROMPT, config=config)
    assert reply.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert reply.usage_metadata.candidates_token_count == 5
    assert reply.usage_metadata.prompt_token_count == PROMPT_TOKENS + 3
    body = recorded()[-1]["body"]
    assert body["systemInstruction"]["parts"][0]["text"] == "Be terse."


@check
def thinking_with_signature():
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=1024))
    reply = client.models.generate_content(model=MODEL, contents=PROMPT, config=config)
    thought, text = reply.candidates[0].content.parts
    assert thought.thought is True and len(thought.text.split(" ")) == 16
    assert text.thought is None and isinstance(text.thought_signature, bytes) and len(text.thought_signature) > 40
    assert reply.text == text.text, "response.text leaves thoughts out"
    assert reply.usage_metadata.thoughts_token_count == 16
    assert reply.usage_metadata.total_token_count == PROMPT_TOKENS + 32


@check
def parallel_function_calls_and_responses():
    config = types.GenerateContentConfig(
        tools=TOOLS, thinking_config=types.ThinkingConfig(include_thoughts=True)
    )
    first = client.models.generate_content(model=MODEL, contents=BOTH, config=config)
    calls = first.function_calls
    assert [c.name for c in calls] == ["get_weather", "get_time"], calls
    assert isinstance(calls[0].args["city"], str) and calls[0].args["unit"] in ("celsius", "fahrenheit")
    assert isinstance(calls[1].args["city"], str)
    parts = first.candidates[0].content.parts
    assert parts[0].thought and parts[1].function_call and parts[1].thought_signature
    assert parts[2].thought_signature is None, "the signature rides on the first call only"
    responses = [types.Part.from_function_response(name=c.name, response={"result": "sunny"}) for c in calls]
    history = [
        types.Content(role="user", parts=[types.Part.from_text(text=BOTH)]),
        first.candidates[0].content,
        types.Content(role="user", parts=responses),
    ]
    second = client.models.generate_content(model=MODEL, contents=history, config=config)
    assert second.function_calls is None
    assert second.text and second.candidates[0].finish_reason == types.FinishReason.STOP
    none = client.models.generate_content(
        model=MODEL, contents=BOTH,
        config=types.GenerateContentConfig(
            tools=TOOLS, tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="NONE"))
        ),
    )
    assert none.function_calls is None and none.text
    forced = client.models.generate_content(
        model=MODEL, contents=PROMPT,
        config=types.GenerateContentConfig(
            tools=TOOLS,
            tool_config=types.ToolConfig(
                function_calling_config=types.FunctionCallingConfig(mode="ANY", allowed_function_names=["get_time"])
            ),
        ),
    )
    assert [c.name for c in forced.function_calls] == ["get_time"]
    try:
        client.models.generate_content(model=MODEL, contents=[history[0], history[1], types.Content(role="user", parts=responses[:1])], config=config)
    except errors.ClientError as e:
        assert e.code == 400 and e.status == "INVALID_ARGUMENT" and "function response parts" in e.message, e
    else:
        raise AssertionError("a missing function response must be rejected")


class City(pydantic.BaseModel):
    name: str
    population: int
    tags: list[str]
    kind: str | None = None


@check
def json_schema_parsed():
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=City)
    reply = client.models.generate_content(model=MODEL, contents="Describe Paris", config=config)
    assert isinstance(reply.parsed, City), reply.text
    json.loads(reply.text)
    plain = client.models.generate_content(
        model=MODEL, contents="Describe Paris",
        config=types.GenerateContentConfig(
            response_mime_type="application/json",
            response_json_schema={"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
        ),
    )
    assert isinstance(json.loads(plain.text)["ok"], bool)


@check
def stream_matches_non_stream():
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))
    expected = client.models.generate_content(model=MODEL, contents=PROMPT, config=config)
    chunks = list(client.models.generate_content_stream(model=MODEL, contents=PROMPT, config=config))
    assert len(chunks) == 32, len(chunks)
    thoughts = "".join(p.text for c in chunks for p in c.candidates[0].content.parts if p.thought)
    text = "".join(c.text or "" for c in chunks)
    assert thoughts == expected.candidates[0].content.parts[0].text
    assert text == expected.text
    signed = [p for c in chunks for p in c.candidates[0].content.parts if p.thought_signature]
    assert len(signed) == 1 and signed[0].thought_signature == expected.candidates[0].content.parts[1].thought_signature
    last = chunks[-1]
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata.candidates_token_count == 16 and last.usage_metadata.thoughts_token_count == 16
    assert all(c.response_id == chunks[0].response_id for c in chunks)
    assert recorded()[-1]["path"].endswith(":streamGenerateContent?alt=sse")
    calls = list(client.models.generate_content_stream(model=MODEL, contents=BOTH, config=types.GenerateContentConfig(tools=TOOLS)))
    assert [fc.name for c in calls for fc in (c.function_calls or [])] == ["get_weather", "get_time"]


@check
def count_tokens():
    counted = client.models.count_tokens(model=MODEL, contents=PROMPT)
    assert counted.total_tokens == PROMPT_TOKENS


@check
def embed_content():
    out = client.models.embed_content(
        model="text-embedding-sim", contents=["alpha", "beta"],
        config=types.EmbedContentConfig(output_dimensionality=8, task_type="RETRIEVAL_QUERY"),
    )
    a, b = out.embeddings
    assert len(a.values) == 8 and len(b.values) == 8 and a.values != b.values
    assert abs(sum(x * x for x in a.values) - 1) < 1e-4
    again = client.models.embed_content(
        model="text-embedding-sim", contents="alpha",
        config=types.EmbedContentConfig(output_dimensionality=8, task_type="RETRIEVAL_QUERY"),
    )
    assert again.embeddings[0].values == a.values
    assert recorded()[-1]["path"].endswith("/models/text-embedding-sim:batchEmbedContents")


@check
def safety_block():
    reply = client.models.generate_content(model=MODEL, contents="please unsafe-block this")
    assert not reply.candidates and reply.text is None
    assert reply.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    assert reply.usage_metadata.prompt_token_count > 0


@check
def status_fault_errors():
    cases = [
        ({"status": 400, "message": "scripted bad request"}, errors.ClientError, "INVALID_ARGUMENT"),
        ({"status": 429, "retry_after_s": 2}, errors.ClientError, "RESOURCE_EXHAUSTED"),
        ({"status": 500}, errors.ServerError, "INTERNAL"),
        ({"status": 503}, errors.ServerError, "UNAVAILABLE"),
    ]
    for fault, error_class, status in cases:
        control("faults", [fault])
        try:
            client.models.generate_content(model=MODEL, contents=PROMPT)
        except error_class as e:
            assert e.code == fault["status"] and e.status == status, (e.code, e.status)
            if "message" in fault:
                assert e.message == fault["message"]
            if fault["status"] == 429:
                retry = [d for d in e.details["error"]["details"] if d["@type"].endswith("RetryInfo")]
                assert retry and retry[0]["retryDelay"] == "2s", e.details
        else:
            raise AssertionError(f"expected {error_class.__name__} for {fault}")
    control("faults", [{"status": 503}])
    try:
        list(client.models.generate_content_stream(model=MODEL, contents=PROMPT))
    except errors.ServerError as e:
        assert e.code == 503 and e.status == "UNAVAILABLE"
    else:
        raise AssertionError("expected ServerError from the stream")
    client.models.generate_content(model=MODEL, contents=PROMPT)


@check
def validation_and_auth_errors():
    try:
        client.models.generate_content(model=MODEL, contents=PROMPT, config=types.GenerateContentConfig(temperature=5))
    except errors.ClientError as e:
        assert e.code == 400 and e.status == "INVALID_ARGUMENT" and "temperature" in e.message, e
    else:
        raise AssertionError("temperature 5 must be rejected")
    req = urllib.request.Request(
        f"{BASE}/{UPSTREAM}/v1beta/models/{MODEL}:generateContent",
        data=json.dumps({"contents": [{"parts": [{"text": "x"}]}]}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        urllib.request.urlopen(req)
    except urllib.error.HTTPError as e:
        body = json.load(e)
        assert e.code == 403 and body["error"]["status"] == "PERMISSION_DENIED", body
    else:
        raise AssertionError("a request without a key must be rejected")


reset_upstream()
failed = [name for name, err in results if err]
print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
