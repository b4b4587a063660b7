"""Checks that Google's and the model vendors' official SDKs work against the simulator's Vertex AI surface.

Usage: python check_vertex.py http://127.0.0.1:PORT /path/to/vertex-service-account.json
Needs google-genai==3.4.0 (which brings google-auth and requests), anthropic==2.12.0 and openai==3.54.0 (pinned in
tests/sdk/requirements.txt). Copies the service-account key file with `token_uri` pointed at the
simulated upstream named `vertex` (`<sim>/vertex/token`), so google-auth itself performs the JWT
bearer exchange against the simulator; then drives
- google-genai (`vertexai=True`, `base_url=<sim>/vertex/`, `api_version="v1"`): generate, stream,
  function calling, embeddings (`:embedContent` for gemini models, `:predict` for the others);
- anthropic's AnthropicVertex (`base_url=<sim>/vertex/v1`): rawPredict with and without tools,
  streamRawPredict, count-tokens;
- the openai SDK on the OpenAI-compatible MaaS endpoint (`.../endpoints/openapi`);
- wrong and expired bearer tokens (401 UNAUTHENTICATED), and checks through the control API
  (`GET /_sim/vertex/tokens`) that one token served every call until it was expired.
Prints `N passed, M failed` and exits non-zero on any failure.
"""

import json
import os
import sys
import tempfile
import traceback
import urllib.error
import urllib.request

import anthropic
import openai
from anthropic import AnthropicVertex
from anthropic.types import TextBlock, ToolUseBlock
from google import genai
from google.auth.transport.requests import Request as AuthRequest
from google.genai import errors, types
import google.oauth2.credentials
from google.oauth2 import service_account

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8080"
KEY_FILE = sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures/vertex-service-account.json"
UPSTREAM = "vertex"
PROJECT = "switchyard-test"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
GEMINI = "gemini-2.5-flash"
CLAUDE = "claude-sonnet-4-5@20250929"
MAAS = "meta/llama-3.3-70b-instruct-maas"

PROMPT = "Hello, world!"
# The fixed tokenizer: `Hello` `,` `world` `!`; Gemini counts no per-turn overhead.
GEMINI_PROMPT_TOKENS = 4
# Claude: system 4 + (3 + role 1 + "Hello, world!" 4) + 3 priming the reply.
CLAUDE_PROMPT_TOKENS = 15
SYSTEM = "You are terse."

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
CLAUDE_TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
        },
    },
    {
        "name": "get_time",
        "description": "Local time in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
]
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


def control(path, body, method="POST"):
    req = urllib.request.Request(
        f"{BASE}/_sim/{UPSTREAM}/{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200
        return json.load(resp)


def tokens():
    return control("tokens", None, method="GET")


def reset_upstream():
    req = urllib.request.Request(f"{BASE}/_sim/{UPSTREAM}", method="DELETE")
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200


def recorded():
    with urllib.request.urlopen(f"{BASE}/_sim/{UPSTREAM}/requests") as resp:
        return json.load(resp)


def last_api_request():
    """The last recorded request other than a token exchange."""
    return [r for r in recorded() if not r["path"].endswith("/token")][-1]


# The key file, with its token URI pointed at the simulator.
with open(KEY_FILE) as f:
    key = json.load(f)
key["token_uri"] = f"{BASE}/{UPSTREAM}/token"
key_copy = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
json.dump(key, key_copy)
key_copy.close()

reset_upstream()
creds = service_account.Credentials.from_service_account_file(key_copy.name, scopes=SCOPES)


def gemini_client(location="us-central1"):
    return genai.Client(
        vertexai=True,
        project=PROJECT,
        location=location,
        credentials=creds,
        http_options=types.HttpOptions(base_url=f"{BASE}/{UPSTREAM}/", api_version="v1"),
    )


client = gemini_client()


@check
def token_exchange_by_google_auth():
    creds.refresh(AuthRequest())
    assert creds.token.startswith("ya29.sim-"), creds.token
    assert creds.expiry is not None
    state = tokens()
    assert state["issued"] == 1 and state["ttl_s"] == 3599, state
    (issued,) = state["tokens"]
    assert issued["access_token"] == creds.token and issued["client_email"] == key["client_email"]
    assert SCOPES[0] in issued["scope"].split()
    exchange = recorded()[-1]
    assert exchange["path"] == f"/{UPSTREAM}/token", exchange
    assert "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" in exchange["body"], exchange["body"]


@check
def generate_plain():
    reply = client.models.generate_content(model=GEMINI, contents=PROMPT)
    assert len(reply.text.split(" ")) == 16, reply.text
    (candidate,) = reply.candidates
    assert candidate.finish_reason == types.FinishReason.STOP
    assert reply.model_version == GEMINI and reply.response_id and reply.create_time
    usage = reply.usage_metadata
    assert usage.prompt_token_count == GEMINI_PROMPT_TOKENS and usage.candidates_token_count == 16
    sent = last_api_request()
    assert sent["path"] == (
        f"/{UPSTREAM}/v1/projects/{PROJECT}/locations/us-central1/publishers/google/models/{GEMINI}:generateContent"
    ), sent["path"]
    assert sent["headers"]["authorization"] == f"Bearer {creds.token}"
    assert sent["location"] == "us-central1"


@check
def generate_stream():
    expected = client.models.generate_content(model=GEMINI, contents=PROMPT)
    chunks = list(client.models.generate_content_stream(model=GEMINI, contents=PROMPT))
    assert len(chunks) == 16, len(chunks)
    assert "".join(c.text or "" for c in chunks) == expected.text
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == 16
    assert last_api_request()["path"].endswith(":streamGenerateContent?alt=sse")


@check
def function_calling():
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])])
    first = client.models.generate_content(model=GEMINI, contents="Please call get_weather for Paris", config=config)
    (call,) = first.function_calls
    assert call.name == "get_weather" and call.args["unit"] in ("celsius", "fahrenheit")
    history = [
        types.Content(role="user", parts=[types.Part.from_text(text="Please call get_weather for Paris")]),
        first.candidates[0].content,
        types.Content(role="user", parts=[types.Part.from_function_response(name="get_weather", response={"t": 21})]),
    ]
    second = client.models.generate_content(model=GEMINI, contents=history, config=config)
    assert second.function_calls is None and second.text


@check
def regional_locations():
    for location in ["europe-west1", "global", "eu"]:
        regional = gemini_client(location)  # kept alive: a dropped Client closes its connection pool
        reply = regional.models.generate_content(model=GEMINI, contents=PROMPT)
        assert reply.text
        sent = last_api_request()
        assert sent["location"] == location, sent
        assert f"/locations/{location}/" in sent["path"]


@check
def count_tokens():
    assert client.models.count_tokens(model=GEMINI, contents=PROMPT).total_tokens == GEMINI_PROMPT_TOKENS


@check
def embed_gemini_model():
    config = types.EmbedContentConfig(output_dimensionality=8, task_type="RETRIEVAL_QUERY")
    out = client.models.embed_content(model="gemini-embedding-001", contents="alpha", config=config)
    (embedding,) = out.embeddings
    assert len(embedding.values) == 8 and abs(sum(x * x for x in embedding.values) - 1) < 1e-4
    assert embedding.statistics.token_count == 1
    sent = last_api_request()
    assert sent["path"].endswith("/publishers/google/models/gemini-embedding-001:embedContent"), sent["path"]
    assert sent["body"]["embedContentConfig"]["outputDimensionality"] == 8
    again = client.models.embed_content(model="gemini-embedding-001", contents="alpha", config=config)
    assert again.embeddings[0].values == embedding.values, "deterministic"
    full = client.models.embed_content(model="gemini-embedding-001", contents="alpha")
    assert len(full.embeddings[0].values) == 3072
    two = client.models.embed_content(model="gemini-embedding-001", contents=["alpha", "beta"], config=config)
    assert [len(e.values) for e in two.embeddings] == [8, 8] and two.embeddings[0].values == embedding.values
    assert last_api_request()["path"].endswith(":batchEmbedContents")


@check
def embed_predict_model():
    out = client.models.embed_content(
        model="text-embedding-005", contents=["alpha", "beta gamma"],
        config=types.EmbedContentConfig(output_dimensionality=16, task_type="RETRIEVAL_DOCUMENT"),
    )
    a, b = out.embeddings
    assert len(a.values) == 16 and a.values != b.values
    assert a.statistics.token_count == 1 and b.statistics.token_count == 2 and a.statistics.truncated is False
    assert out.metadata.billable_character_count == len("alpha") + len("betagamma")
    sent = last_api_request()
    assert sent["path"].endswith("/publishers/google/models/text-embedding-005:predict"), sent["path"]
    assert sent["body"]["instances"][0] == {"content": "alpha", "task_type": "RETRIEVAL_DOCUMENT"}, sent["body"]
    default = client.models.embed_content(model="text-multilingual-embedding-002", contents="alpha")
    assert len(default.embeddings[0].values) == 768


def claude_client(region="us-east5"):
    return AnthropicVertex(
        project_id=PROJECT, region=region, access_token=creds.token, base_url=f"{BASE}/{UPSTREAM}/v1", max_retries=0
    )


@check
def claude_raw_predict():
    claude = claude_client()
    reply = claude.messages.create(model=CLAUDE, max_tokens=256, system=SYSTEM, messages=[{"role": "user", "content": PROMPT}])
    assert reply.id.startswith("msg_vrtx_01") and reply.model == CLAUDE
    assert reply.stop_reason == "end_turn"
    (block,) = reply.content
    assert isinstance(block, TextBlock) and len(block.text.split(" ")) == 16
    assert reply.usage.input_tokens == CLAUDE_PROMPT_TOKENS and reply.usage.output_tokens == 16
    sent = last_api_request()
    assert sent["path"] == (
        f"/{UPSTREAM}/v1/projects/{PROJECT}/locations/us-east5/publishers/anthropic/models/{CLAUDE}:rawPredict"
    ), sent["path"]
    assert "model" not in sent["body"] and sent["body"]["anthropic_version"], sent["body"]
    assert sent["location"] == "us-east5"
    assert sent["headers"]["authorization"] == f"Bearer {creds.token}"
    glob = claude_client("global").messages.create(model=CLAUDE, max_tokens=256, system=SYSTEM, messages=[{"role": "user", "content": PROMPT}])
    assert glob.content[0].text == block.text, "deterministic across regions"
    assert last_api_request()["location"] == "global"


@check
def claude_tools():
    claude = claude_client()
    reply = claude.messages.create(model=CLAUDE, max_tokens=1024, tools=CLAUDE_TOOLS, messages=[{"role": "user", "content": BOTH}])
    assert reply.stop_reason == "tool_use"
    weather, time = reply.content
    assert isinstance(weather, ToolUseBlock) and weather.name == "get_weather" and time.name == "get_time"
    assert weather.input["unit"] in ("celsius", "fahrenheit")
    results_turn = [{"type": "tool_result", "tool_use_id": b.id, "content": "sunny"} for b in reply.content]
    final = claude.messages.create(
        model=CLAUDE, max_tokens=1024, tools=CLAUDE_TOOLS,
        messages=[{"role": "user", "content": BOTH}, {"role": "assistant", "content": reply.content}, {"role": "user", "content": results_turn}],
    )
    assert final.stop_reason == "end_turn" and isinstance(final.content[0], TextBlock)


@check
def claude_stream():
    claude = claude_client()
    expected = claude.messages.create(model=CLAUDE, max_tokens=256, system=SYSTEM, messages=[{"role": "user", "content": PROMPT}])
    with claude.messages.stream(model=CLAUDE, max_tokens=256, system=SYSTEM, messages=[{"role": "user", "content": PROMPT}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == expected.content[0].text
    assert final.usage.output_tokens == 16 and final.stop_reason == "end_turn"
    sent = last_api_request()
    assert sent["path"].endswith(f"/models/{CLAUDE}:streamRawPredict") and sent["body"]["stream"] is True, sent


@check
def claude_count_tokens():
    counted = claude_client().messages.count_tokens(model=CLAUDE, system=SYSTEM, messages=[{"role": "user", "content": PROMPT}])
    assert counted.input_tokens == CLAUDE_PROMPT_TOKENS
    assert last_api_request()["path"].endswith("/publishers/anthropic/models/count-tokens:rawPredict")


@check
def claude_errors():
    try:
        claude_client().messages.create(model=CLAUDE, max_tokens=16, messages=[{"role": "user", "content": ""}])
    except anthropic.BadRequestError as e:
        assert e.body["error"]["type"] == "invalid_request_error", e.body
    else:
        raise AssertionError("an empty message must be rejected")
    control("faults", [{"status": 529}])
    try:
        claude_client().messages.create(model=CLAUDE, max_tokens=16, messages=[{"role": "user", "content": PROMPT}])
    except anthropic.APIStatusError as e:
        assert e.status_code == 529 and e.body["error"]["type"] == "overloaded_error", e.body
    else:
        raise AssertionError("expected the scripted 529")
    control("faults", [{"status": 429, "retry_after_s": 1}])
    try:
        claude_client().messages.create(model=CLAUDE, max_tokens=16, messages=[{"role": "user", "content": PROMPT}])
    except anthropic.RateLimitError as e:
        assert e.body["error"]["status"] == "RESOURCE_EXHAUSTED", e.body
    else:
        raise AssertionError("expected the scripted 429")


def maas_client(token=None):
    return openai.OpenAI(
        api_key=token or creds.token,
        base_url=f"{BASE}/{UPSTREAM}/v1/projects/{PROJECT}/locations/us-central1/endpoints/openapi",
        max_retries=0,
    )


@check
def maas_chat():
    chat = maas_client()
    reply = chat.chat.completions.create(model=MAAS, messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}])
    assert reply.model == MAAS and reply.choices[0].finish_reason == "stop"
    assert len(reply.choices[0].message.content.split(" ")) == 16
    assert reply.usage.completion_tokens == 16
    sent = last_api_request()
    assert sent["path"] == f"/{UPSTREAM}/v1/projects/{PROJECT}/locations/us-central1/endpoints/openapi/chat/completions"
    stream = chat.chat.completions.create(
        model="openai/gpt-oss-120b-maas", messages=[{"role": "user", "content": PROMPT}],
        stream=True, stream_options={"include_usage": True},
    )
    pieces = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in pieces if c.choices)
    assert pieces[-1].usage.completion_tokens == 16
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": CLAUDE_TOOLS[0]["input_schema"]}}]
    called = chat.chat.completions.create(
        model="qwen3-coder-480b-a35b-instruct-maas", messages=[{"role": "user", "content": "Please call get_weather"}], tools=tools
    )
    assert called.choices[0].message.tool_calls[0].function.name == "get_weather"


@check
def wrong_bearer_is_401():
    try:
        gemini = genai.Client(
            vertexai=True, project=PROJECT, location="us-central1",
            credentials=google.oauth2.credentials.Credentials(token="ya29.not-issued"),
            http_options=types.HttpOptions(base_url=f"{BASE}/{UPSTREAM}/", api_version="v1"),
        )
        gemini.models.generate_content(model=GEMINI, contents=PROMPT)
    except errors.ClientError as e:
        assert e.code == 401 and e.status == "UNAUTHENTICATED", (e.code, e.status)
        assert "Expected OAuth 2 access token" in e.message
    else:
        raise AssertionError("a bearer the upstream never issued must be rejected")
    try:
        AnthropicVertex(project_id=PROJECT, region="us-east5", access_token="ya29.not-issued", base_url=f"{BASE}/{UPSTREAM}/v1", max_retries=0).messages.create(
            model=CLAUDE, max_tokens=16, messages=[{"role": "user", "content": PROMPT}]
        )
    except anthropic.AuthenticationError as e:
        assert e.body["error"]["status"] == "UNAUTHENTICATED", e.body
    else:
        raise AssertionError("Claude must reject the bearer too")
    try:
        maas_client("ya29.not-issued").chat.completions.create(model=MAAS, messages=[{"role": "user", "content": PROMPT}])
    except openai.AuthenticationError as e:
        assert e.status_code == 401
    else:
        raise AssertionError("MaaS must reject the bearer too")


@check
def one_token_served_every_call():
    state = tokens()
    assert state["issued"] == 1, state
    exchanges = [r for r in recorded() if r["path"].endswith("/token")]
    assert len(exchanges) == 1, len(exchanges)


@check
def expired_token_is_401_then_refresh_recovers():
    old = creds.token
    state = control("tokens", {"expire": True})
    assert all(t["expired"] for t in state["tokens"]), state
    try:
        client.models.generate_content(model=GEMINI, contents=PROMPT)
    except errors.ClientError as e:
        assert e.code == 401 and e.status == "UNAUTHENTICATED"
        reasons = [d.get("reason") for d in e.details["error"]["details"]]
        assert reasons == ["ACCESS_TOKEN_EXPIRED"], e.details
    else:
        raise AssertionError("an expired token must be rejected")
    try:
        maas_client(old).chat.completions.create(model=MAAS, messages=[{"role": "user", "content": PROMPT}])
    except openai.AuthenticationError:
        pass
    else:
        raise AssertionError("MaaS must reject the expired token too")
    creds.refresh(AuthRequest())
    assert creds.token != old
    assert client.models.generate_content(model=GEMINI, contents=PROMPT).text
    assert claude_client().messages.create(model=CLAUDE, max_tokens=8, messages=[{"role": "user", "content": PROMPT}]).content
    assert tokens()["issued"] == 2


@check
def bad_token_requests():
    def post(form):
        req = urllib.request.Request(
            f"{BASE}/{UPSTREAM}/token", data=form.encode(),
            headers={"content-type": "application/x-www-form-urlencoded"}, method="POST",
        )
        try:
            urllib.request.urlopen(req)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)
        raise AssertionError("expected an error")

    code, body = post("grant_type=client_credentials&assertion=x")
    assert code == 400 and body["error"] == "unsupported_grant_type", body
    code, body = post("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=not.a.jwt")
    assert code == 400 and body["error"] == "invalid_grant", body
    assert tokens()["issued"] == 2


reset_upstream()
os.unlink(key_copy.name)
failed = [name for name, err in results if err]
print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
