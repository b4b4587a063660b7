"""Checks that the official AWS SDK for Python (boto3) parses everything the simulator's Bedrock module sends.

Usage: python check_bedrock.py http://127.0.0.1:PORT
Needs the `boto3` version pinned in tests/sdk/requirements.txt. Talks to the simulated upstream named
`bedrock-sdk` through `boto3.client("bedrock-runtime", endpoint_url=<sim>/bedrock-sdk)` (botocore appends
`/model/{modelId}/converse` and signs the whole path with SigV4, using the simulator's test credential),
with retries off, prints `N passed, M failed` and exits non-zero on any failure. Bedrock API keys (bearer) are
left to the Rust tests: botocore sends a bearer token only over HTTPS.
"""

import json
import sys
import traceback
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8090"
UPSTREAM = "bedrock-sdk"
REGION = "us-east-1"
AKID = "AKIDSWITCHYARDTEST"
SECRET = "switchyard/test/secret/key/EXAMPLE"
CLAUDE = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
# Retries off: botocore's `max_attempts` counts retries (1 would allow one), `total_max_attempts` counts tries.
NO_RETRIES = Config(retries={"total_max_attempts": 1})


def make_client(secret=SECRET, akid=AKID):
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=f"{BASE}/{UPSTREAM}",
        region_name=REGION,
        aws_access_key_id=akid,
        aws_secret_access_key=secret,
        config=NO_RETRIES,
    )


client = make_client()

SYSTEM = [{"text": "You are terse."}]
MESSAGES = [{"role": "user", "content": [{"text": "Hello, world!"}]}]
# System 4; the message 3 + role 1 + "Hello, world!" 4; 3 priming the reply.
INPUT_TOKENS = 15
TOOLS = {
    "tools": [
        {
            "toolSpec": {
                "name": "get_weather",
                "description": "Weather for a city",
                "inputSchema": {
                    "json": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string"},
                            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                        },
                        "required": ["city", "unit"],
                    }
                },
            }
        },
        {
            "toolSpec": {
                "name": "get_time",
                "inputSchema": {
                    "json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
                },
            }
        },
    ]
}
BOTH_TOOLS = [{"role": "user", "content": [{"text": "Please call get_weather and get_time for Paris"}]}]
THINKING = {"thinking": {"type": "enabled", "budget_tokens": 1024}}

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


def text_of(reply):
    return "".join(b.get("text", "") for b in reply["output"]["message"]["content"])


def assert_usage(usage):
    for key in ("inputTokens", "outputTokens", "totalTokens", "cacheReadInputTokens", "cacheWriteInputTokens"):
        assert isinstance(usage[key], int), usage
    total = usage["inputTokens"] + usage["outputTokens"] + usage["cacheReadInputTokens"] + usage["cacheWriteInputTokens"]
    assert usage["totalTokens"] == total, usage


def reassemble(stream):
    """Rebuilds a Converse answer from ConverseStream events, as a client would."""
    content, kinds, stop, metadata = [], [], None, None
    for event in stream:
        (kind,) = event.keys()
        kinds.append(kind)
        body = event[kind]
        if kind == "messageStart":
            assert body["role"] == "assistant"
        elif kind == "contentBlockStart":
            assert body["contentBlockIndex"] == len(content)
            tool = body["start"]["toolUse"]
            content.append({"toolUse": {"toolUseId": tool["toolUseId"], "name": tool["name"], "input": ""}})
        elif kind == "contentBlockDelta":
            index, delta = body["contentBlockIndex"], body["delta"]
            if index == len(content):
                content.append(
                    {"reasoningContent": {"reasoningText": {"text": ""}}} if "reasoningContent" in delta else {"text": ""}
                )
            block = content[index]
            if "text" in delta:
                block["text"] += delta["text"]
            elif "toolUse" in delta:
                block["toolUse"]["input"] += delta["toolUse"]["input"]
            elif "text" in delta["reasoningContent"]:
                block["reasoningContent"]["reasoningText"]["text"] += delta["reasoningContent"]["text"]
            else:
                block["reasoningContent"]["reasoningText"]["signature"] = delta["reasoningContent"]["signature"]
        elif kind == "contentBlockStop":
            block = content[body["contentBlockIndex"]]
            if "toolUse" in block:
                block["toolUse"]["input"] = json.loads(block["toolUse"]["input"])
        elif kind == "messageStop":
            stop = body
        elif kind == "metadata":
            metadata = body
        else:
            raise AssertionError(f"unexpected event {event!r}")
    return {"content": content, "kinds": kinds, "stop": stop, "metadata": metadata}


def expect_client_error(call, code, status):
    try:
        call()
    except ClientError as e:
        assert e.response["Error"]["Code"] == code, e.response
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == status, e.response
        assert e.response["ResponseMetadata"]["RequestId"], e.response
        return e
    raise AssertionError(f"expected {code}")


# Start from a clean upstream: default behaviour, no leftover faults, an empty prompt cache.
reset_upstream()


@check
def converse_plain():
    reply = client.converse(modelId=CLAUDE, system=SYSTEM, messages=MESSAGES)
    assert reply["stopReason"] == "end_turn"
    assert reply["output"]["message"]["role"] == "assistant"
    assert len(text_of(reply).split(" ")) == 16
    assert_usage(reply["usage"])
    assert reply["usage"]["inputTokens"] == INPUT_TOKENS and reply["usage"]["outputTokens"] == 16
    assert isinstance(reply["metrics"]["latencyMs"], int)
    again = client.converse(modelId=CLAUDE, system=SYSTEM, messages=MESSAGES)
    assert text_of(again) == text_of(reply), "deterministic"
    request = recorded()[-1]
    assert request["path"] == f"/{UPSTREAM}/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse", request
    assert request["headers"]["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/"), request


@check
def converse_arn_model_id():
    arn = f"arn:aws:bedrock:{REGION}:123456789012:inference-profile/{CLAUDE}"
    reply = client.converse(modelId=arn, messages=MESSAGES)
    assert reply["stopReason"] == "end_turn"


@check
def max_tokens_and_stop_sequences():
    capped = client.converse(modelId=CLAUDE, system=SYSTEM, messages=MESSAGES, inferenceConfig={"maxTokens": 4})
    assert capped["stopReason"] == "max_tokens" and capped["usage"]["outputTokens"] == 4
    words = text_of(client.converse(modelId=CLAUDE, system=SYSTEM, messages=MESSAGES)).split(" ")
    stop = " " + words[3]
    cut = client.converse(
        modelId=CLAUDE,
        system=SYSTEM,
        messages=MESSAGES,
        inferenceConfig={"stopSequences": [stop]},
        additionalModelResponseFieldPaths=["/stop_sequence"],
    )
    assert cut["stopReason"] == "stop_sequence"
    assert text_of(cut) == " ".join(words[:3])
    assert cut["additionalModelResponseFields"] == {"stop_sequence": stop}, cut


@check
def tools_parallel_then_results():
    reply = client.converse(modelId=CLAUDE, messages=BOTH_TOOLS, toolConfig=TOOLS)
    assert reply["stopReason"] == "tool_use"
    weather, time = (b["toolUse"] for b in reply["output"]["message"]["content"])
    assert weather["name"] == "get_weather" and time["name"] == "get_time"
    assert weather["toolUseId"].startswith("tooluse_")
    assert isinstance(weather["input"]["city"], str) and weather["input"]["unit"] in ("celsius", "fahrenheit")
    # The second turn passes the assistant message back as the SDK parsed it.
    results = [
        {"toolResult": {"toolUseId": weather["toolUseId"], "content": [{"json": {"temperature": 21}}], "status": "success"}},
        {"toolResult": {"toolUseId": time["toolUseId"], "content": [{"text": "12:00"}]}},
    ]
    second = [*BOTH_TOOLS, reply["output"]["message"], {"role": "user", "content": results}]
    answer = client.converse(modelId=CLAUDE, messages=second, toolConfig=TOOLS)
    assert answer["stopReason"] == "end_turn" and text_of(answer)
    forced = client.converse(
        modelId=CLAUDE, messages=MESSAGES, toolConfig={**TOOLS, "toolChoice": {"tool": {"name": "get_time"}}}
    )
    assert [b["toolUse"]["name"] for b in forced["output"]["message"]["content"]] == ["get_time"]


@check
def converse_with_thinking():
    reply = client.converse(
        modelId=CLAUDE,
        messages=MESSAGES,
        inferenceConfig={"maxTokens": 4096},
        additionalModelRequestFields=THINKING,
    )
    reasoning, text = reply["output"]["message"]["content"]
    block = reasoning["reasoningContent"]["reasoningText"]
    assert len(block["text"].split(" ")) == 16 and len(block["signature"]) == 128
    assert len(text["text"].split(" ")) == 16
    assert reply["usage"]["outputTokens"] == 32
    # The reasoning block goes back with the next turn, as Claude requires.
    history = [*MESSAGES, reply["output"]["message"], {"role": "user", "content": [{"text": "And then?"}]}]
    follow = client.converse(modelId=CLAUDE, messages=history, additionalModelRequestFields=THINKING)
    assert "reasoningContent" in follow["output"]["message"]["content"][0]
    redacted = client.converse(
        modelId=CLAUDE,
        messages=[{"role": "user", "content": [{"text": "please redact"}]}],
        additionalModelRequestFields=THINKING,
    )
    data = redacted["output"]["message"]["content"][0]["reasoningContent"]["redactedContent"]
    assert isinstance(data, bytes) and len(data) == 192


@check
def cache_points_write_then_read():
    system = [{"text": "alpha " * 50}, {"cachePoint": {"type": "default"}}]
    first = client.converse(modelId=CLAUDE, system=system, messages=MESSAGES)
    assert first["usage"]["cacheWriteInputTokens"] == 50 and first["usage"]["cacheReadInputTokens"] == 0
    assert first["usage"]["cacheDetails"] == [{"ttl": "5m", "inputTokens": 50}], first["usage"]
    second = client.converse(modelId=CLAUDE, system=system, messages=MESSAGES)
    assert second["usage"]["cacheReadInputTokens"] == 50 and second["usage"]["cacheWriteInputTokens"] == 0
    assert second["usage"]["inputTokens"] == 11
    assert_usage(second["usage"])


@check
def converse_stream_text_matches_converse():
    expected = client.converse(modelId=CLAUDE, system=SYSTEM, messages=MESSAGES)
    response = client.converse_stream(modelId=CLAUDE, system=SYSTEM, messages=MESSAGES)
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/vnd.amazon.eventstream"
    reply = reassemble(response["stream"])
    assert reply["kinds"][0] == "messageStart" and reply["kinds"][-2:] == ["messageStop", "metadata"]
    assert reply["kinds"].count("contentBlockDelta") == 16
    assert reply["content"] == expected["output"]["message"]["content"]
    assert reply["stop"]["stopReason"] == "end_turn"
    assert reply["metadata"]["usage"] == expected["usage"]
    assert isinstance(reply["metadata"]["metrics"]["latencyMs"], int)


@check
def converse_stream_tools_and_reasoning():
    kwargs = dict(modelId=CLAUDE, messages=BOTH_TOOLS, toolConfig=TOOLS, additionalModelRequestFields=THINKING)
    expected = client.converse(**kwargs)
    reply = reassemble(client.converse_stream(**kwargs)["stream"])
    assert reply["content"] == expected["output"]["message"]["content"], reply["content"]
    assert reply["kinds"].count("contentBlockStart") == 2
    assert reply["stop"]["stopReason"] == "tool_use"
    assert reply["metadata"]["usage"]["outputTokens"] == expected["usage"]["outputTokens"]


@check
def validation_exception():
    e = expect_client_error(
        lambda: client.converse(modelId=CLAUDE, messages=[{"role": "assistant", "content": [{"text": "hi"}]}]),
        "ValidationException",
        400,
    )
    assert e.response["Error"]["Message"].startswith("A conversation must start with a user message"), e.response
    try:
        client.converse(modelId=CLAUDE, messages=[*MESSAGES, *MESSAGES])
    except client.exceptions.ValidationException as e:
        assert "alternate between user and assistant" in e.response["Error"]["Message"]
    else:
        raise AssertionError("expected the modelled ValidationException")
    expect_client_error(
        lambda: client.converse_stream(
            modelId=CLAUDE, messages=MESSAGES, additionalModelRequestFields={"thinking": {"type": "enabled", "budget_tokens": 10}}
        ),
        "ValidationException",
        400,
    )


@check
def stream_exception_mid_stream():
    messages = [{"role": "user", "content": [{"text": "go stream-exception:modelStreamErrorException"}]}]
    events = []
    try:
        for event in client.converse_stream(modelId=CLAUDE, messages=messages)["stream"]:
            events.append(event)
    except EventStreamError as e:
        assert e.response["Error"]["Code"] == "modelStreamErrorException", e.response
        assert e.response["Error"]["Message"], e.response
    else:
        raise AssertionError("expected an EventStreamError")
    assert [list(e) for e in events] == [["messageStart"], ["contentBlockDelta"]], events
    expect_client_error(lambda: client.converse(modelId=CLAUDE, messages=messages), "ModelErrorException", 424)


@check
def status_faults_are_modelled_exceptions():
    control(
        "faults",
        [
            {"status": 429},
            {"status": 429, "message": "ModelNotReadyException: warming up"},
            {"status": 503},
            {"status": 500},
            {"status": 400, "message": "ServiceQuotaExceededException: over quota"},
        ],
    )
    try:
        client.converse(modelId=CLAUDE, messages=MESSAGES)
    except client.exceptions.ThrottlingException as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    else:
        raise AssertionError("expected ThrottlingException")
    e = expect_client_error(lambda: client.converse(modelId=CLAUDE, messages=MESSAGES), "ModelNotReadyException", 429)
    assert e.response["Error"]["Message"] == "warming up"
    expect_client_error(lambda: client.converse(modelId=CLAUDE, messages=MESSAGES), "ServiceUnavailableException", 503)
    expect_client_error(lambda: client.converse_stream(modelId=CLAUDE, messages=MESSAGES), "InternalServerException", 500)
    expect_client_error(
        lambda: client.invoke_model(modelId="amazon.titan-embed-text-v2:0", body=json.dumps({"inputText": "x"})),
        "ServiceQuotaExceededException",
        400,
    )
    # Every fault was used up: the next request succeeds.
    client.converse(modelId=CLAUDE, messages=MESSAGES)


@check
def content_filter_and_guardrail():
    messages = [{"role": "user", "content": [{"text": "unsafe-answer"}]}]
    filtered = client.converse(modelId=CLAUDE, messages=messages)
    assert filtered["stopReason"] == "content_filtered" and filtered["output"]["message"]["content"] == []
    guarded = client.converse(
        modelId=CLAUDE, messages=messages, guardrailConfig={"guardrailIdentifier": "gr-sim", "guardrailVersion": "1"}
    )
    assert guarded["stopReason"] == "guardrail_intervened" and text_of(guarded)


@check
def invoke_model_titan_embeddings():
    response = client.invoke_model(
        modelId="amazon.titan-embed-text-v2:0",
        contentType="application/json",
        accept="application/json",
        body=json.dumps({"inputText": "hello world", "dimensions": 256, "embeddingTypes": ["float", "binary"]}),
    )
    assert response["contentType"] == "application/json"
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-input-token-count"] == "2"
    body = json.loads(response["body"].read())
    assert len(body["embedding"]) == 256 and body["inputTextTokenCount"] == 2
    assert abs(sum(x * x for x in body["embedding"]) - 1.0) < 1e-4
    assert body["embeddingsByType"]["float"] == body["embedding"]
    assert set(body["embeddingsByType"]["binary"]) <= {0, 1}
    default = json.loads(client.invoke_model(modelId="amazon.titan-embed-text-v2:0", body=json.dumps({"inputText": "x"}))["body"].read())
    assert len(default["embedding"]) == 1024
    e = expect_client_error(
        lambda: client.invoke_model(modelId="amazon.titan-embed-text-v2:0", body=json.dumps({"inputText": "x", "dimensions": 7})),
        "ValidationException",
        400,
    )
    assert e.response["Error"]["Message"].startswith("Malformed input request: #/dimensions")


@check
def invoke_model_cohere_embeddings():
    response = client.invoke_model(
        modelId="cohere.embed-english-v3",
        body=json.dumps({"texts": ["hello world", "bye"], "input_type": "search_document"}),
    )
    body = json.loads(response["body"].read())
    assert body["response_type"] == "embeddings_floats" and body["texts"] == ["hello world", "bye"]
    assert len(body["embeddings"]) == 2 and len(body["embeddings"][0]) == 1024
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-input-token-count"] == "3"
    typed = json.loads(
        client.invoke_model(
            modelId="cohere.embed-multilingual-v3",
            body=json.dumps({"texts": ["x"], "input_type": "search_query", "embedding_types": ["float", "int8"]}),
        )["body"].read()
    )
    assert typed["response_type"] == "embeddings_by_type" and len(typed["embeddings"]["int8"][0]) == 1024
    expect_client_error(
        lambda: client.invoke_model(modelId=CLAUDE, body=json.dumps({"messages": []})), "ValidationException", 400
    )


@check
def wrong_credentials_are_refused():
    e = expect_client_error(
        lambda: make_client(secret="not-the-secret").converse(modelId=CLAUDE, messages=MESSAGES),
        "InvalidSignatureException",
        403,
    )
    assert e.response["Error"]["Message"].startswith("The request signature we calculated does not match")
    expect_client_error(
        lambda: make_client(akid="AKIDSOMEONEELSE").converse(modelId=CLAUDE, messages=MESSAGES),
        "UnrecognizedClientException",
        403,
    )


reset_upstream()
failed = [name for name, err in results if err]
print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
