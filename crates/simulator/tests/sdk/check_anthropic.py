"""Checks that the official Anthropic Python SDK parses everything the simulator sends.

Usage: python check_anthropic.py http://127.0.0.1:PORT
Needs `pip install anthropic==2.12.0` (pinned in tests/sdk/requirements.txt). Talks to the
simulated upstream named `anthropic` (base URL <sim>/anthropic), prints `N passed, M failed`
and exits non-zero on any failure.
"""

import json
import sys
import traceback
import urllib.request

import anthropic
from anthropic.types import RedactedThinkingBlock, TextBlock, ThinkingBlock, ToolUseBlock

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8080"
UPSTREAM = "anthropic"
MODEL = "claude-sim"
client = anthropic.Anthropic(base_url=f"{BASE}/{UPSTREAM}", api_key="sk-ant-sim", max_retries=0)

SYSTEM = "You are terse."
MESSAGES = [{"role": "user", "content": "Hello, world!"}]
# system 4 + (3 + role 1 + "Hello, world!" 4) + 3 priming the reply.
PROMPT_TOKENS = 15
TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
    {
        "name": "get_time",
        "description": "Local time in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
]
BOTH_TOOLS = [{"role": "user", "content": "Please call get_weather and get_time for Paris"}]
THINKING = {"type": "enabled", "budget_tokens": 1024}

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


def blocks(message):
    """The content as plain data, comparable between streamed and non-streamed messages."""
    out = []
    for b in message.content:
        if b.type == "text":
            out.append(("text", b.text))
        elif b.type == "thinking":
            out.append(("thinking", b.thinking, b.signature))
        elif b.type == "redacted_thinking":
            out.append(("redacted_thinking", b.data))
        elif b.type == "tool_use":
            out.append(("tool_use", b.id, b.name, json.dumps(b.input, sort_keys=True)))
        else:
            raise AssertionError(f"unexpected block {b!r}")
    return out


# Start from a clean upstream: default behaviour, no leftover faults, an empty prompt cache.
reset_upstream()


@check
def create_plain():
    reply = client.messages.create(model=MODEL, max_tokens=256, system=SYSTEM, messages=MESSAGES)
    assert reply.type == "message" and reply.role == "assistant"
    assert reply.id.startswith("msg_")
    assert reply.model == MODEL
    assert reply.stop_reason == "end_turn" and reply.stop_sequence is None
    (block,) = reply.content
    assert isinstance(block, TextBlock) and len(block.text.split(" ")) == 16
    assert reply.usage.input_tokens == PROMPT_TOKENS and reply.usage.output_tokens == 16
    assert reply.usage.cache_creation_input_tokens == 0 and reply.usage.cache_read_input_tokens == 0
    assert reply.usage.service_tier == "standard"
    assert reply._request_id and reply._request_id.startswith("req_")
    again = client.messages.create(model=MODEL, max_tokens=256, system=SYSTEM, messages=MESSAGES)
    assert blocks(again) == blocks(reply), "deterministic"
    headers = recorded()[-1]["headers"]
    assert headers["anthropic-version"], headers


@check
def beta_header_passes_through():
    client.messages.create(
        model=MODEL, max_tokens=16, messages=MESSAGES, extra_headers={"anthropic-beta": "sim-beta-2025-01-01"}
    )
    assert recorded()[-1]["headers"]["anthropic-beta"] == "sim-beta-2025-01-01"


@check
def max_tokens_and_stop_sequences():
    reply = client.messages.create(model=MODEL, max_tokens=4, messages=MESSAGES)
    assert reply.stop_reason == "max_tokens" and reply.usage.output_tokens == 4
    words = client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES).content[0].text.split(" ")
    stop = " " + words[3]
    cut = client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES, stop_sequences=[stop])
    assert cut.stop_reason == "stop_sequence" and cut.stop_sequence == stop
    assert stop not in cut.content[0].text


@check
def thinking_with_signature():
    reply = client.messages.create(model=MODEL, max_tokens=2048, thinking=THINKING, messages=MESSAGES)
    thinking, text = reply.content
    assert isinstance(thinking, ThinkingBlock) and isinstance(text, TextBlock)
    assert len(thinking.thinking.split(" ")) == 16 and len(thinking.signature) > 40
    assert reply.usage.output_tokens == 32


@check
def redacted_thinking():
    reply = client.messages.create(
        model=MODEL, max_tokens=2048, thinking=THINKING,
        messages=[{"role": "user", "content": "Please redact your reasoning"}],
    )
    assert isinstance(reply.content[0], RedactedThinkingBlock) and reply.content[0].data
    assert isinstance(reply.content[1], TextBlock)


@check
def tools_parallel_and_single():
    reply = client.messages.create(model=MODEL, max_tokens=1024, tools=TOOLS, messages=BOTH_TOOLS)
    assert reply.stop_reason == "tool_use"
    weather, time = reply.content
    assert isinstance(weather, ToolUseBlock) and weather.id.startswith("toolu_")
    assert weather.name == "get_weather" and time.name == "get_time"
    assert isinstance(weather.input["city"], str) and weather.input["unit"] in ("celsius", "fahrenheit")
    single = client.messages.create(
        model=MODEL, max_tokens=1024, tools=TOOLS, messages=BOTH_TOOLS,
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
    )
    assert [b.name for b in single.content] == ["get_weather"]
    forced = client.messages.create(
        model=MODEL, max_tokens=1024, tools=TOOLS, messages=MESSAGES, tool_choice={"type": "tool", "name": "get_time"}
    )
    assert [b.name for b in forced.content] == ["get_time"]


@check
def tool_result_turn():
    # The assistant turn is passed back as the SDK returned it (thinking and tool_use blocks).
    first = client.messages.create(model=MODEL, max_tokens=2048, thinking=THINKING, tools=TOOLS, messages=BOTH_TOOLS)
    assert [b.type for b in first.content] == ["thinking", "tool_use", "tool_use"]
    results_turn = [
        {"type": "tool_result", "tool_use_id": b.id, "content": "sunny, 21C"}
        for b in first.content
        if b.type == "tool_use"
    ]
    reply = client.messages.create(
        model=MODEL, max_tokens=2048, thinking=THINKING, tools=TOOLS,
        messages=[*BOTH_TOOLS, {"role": "assistant", "content": first.content}, {"role": "user", "content": results_turn}],
    )
    assert reply.stop_reason == "end_turn"
    assert [b.type for b in reply.content] == ["thinking", "text"]
    try:
        client.messages.create(
            model=MODEL, max_tokens=64, tools=TOOLS,
            messages=[*BOTH_TOOLS, {"role": "user", "content": results_turn}],
        )
    except anthropic.BadRequestError as e:
        assert "tool_use_id" in e.api_message, e.api_message
    else:
        raise AssertionError("a tool_result without its tool_use must be rejected")


@check
def prompt_caching_usage():
    system = [
        {"type": "text", "text": "You answer questions about a long shared document. " * 20, "cache_control": {"type": "ephemeral"}}
    ]
    first = client.messages.create(model=MODEL, max_tokens=16, system=system, messages=MESSAGES)
    prefix = first.usage.cache_creation_input_tokens
    assert prefix > 100 and first.usage.cache_read_input_tokens == 0
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == prefix
    assert first.usage.input_tokens == 8 + 3
    second = client.messages.create(model=MODEL, max_tokens=16, system=system, messages=MESSAGES)
    assert second.usage.cache_read_input_tokens == prefix and second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == first.usage.input_tokens
    counted = client.messages.count_tokens(model=MODEL, system=system, messages=MESSAGES)
    assert counted.input_tokens == prefix + first.usage.input_tokens


@check
def stream_text_helper():
    expected = client.messages.create(model=MODEL, max_tokens=256, system=SYSTEM, messages=MESSAGES)
    with client.messages.stream(model=MODEL, max_tokens=256, system=SYSTEM, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == expected.content[0].text
    assert blocks(final) == blocks(expected)
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == PROMPT_TOKENS and final.usage.output_tokens == 16


@check
def stream_raw_event_order():
    stream = client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES, stream=True)
    kinds = [event.type for event in stream]
    assert kinds[0] == "message_start" and kinds[1] == "content_block_start"
    assert kinds[2:-3] == ["content_block_delta"] * 16
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]


@check
def stream_thinking_and_tools_match_non_stream():
    kwargs = dict(model=MODEL, max_tokens=2048, thinking=THINKING, tools=TOOLS, messages=BOTH_TOOLS)
    expected = client.messages.create(**kwargs)
    with client.messages.stream(**kwargs) as stream:
        thinking = "".join(e.thinking for e in stream if e.type == "thinking")
        final = stream.get_final_message()
    assert blocks(final) == blocks(expected)
    assert thinking == expected.content[0].thinking
    assert final.stop_reason == "tool_use"
    assert final.usage.output_tokens == expected.usage.output_tokens
    redacted = dict(kwargs, messages=[{"role": "user", "content": "redact this, no tools"}])
    with client.messages.stream(**redacted) as stream:
        final = stream.get_final_message()
    assert blocks(final) == blocks(client.messages.create(**redacted))


@check
def count_tokens():
    counted = client.messages.count_tokens(model=MODEL, system=SYSTEM, messages=MESSAGES)
    assert counted.input_tokens == PROMPT_TOKENS


@check
def validation_errors():
    try:
        client.messages.create(
            model=MODEL, max_tokens=2048, messages=MESSAGES, thinking={"type": "enabled", "budget_tokens": 10}
        )
    except anthropic.BadRequestError as e:
        assert e.status_code == 400 and e.type == "invalid_request_error"
        assert e.api_message.startswith("thinking.enabled.budget_tokens"), e.api_message
        assert e.request_id and e.request_id == e.body["request_id"]
    else:
        raise AssertionError("expected BadRequestError")


@check
def status_fault_errors():
    cases = [
        ({"status": 400, "message": "scripted bad request"}, anthropic.BadRequestError, "invalid_request_error"),
        ({"status": 429, "retry_after_s": 1}, anthropic.RateLimitError, "rate_limit_error"),
        ({"status": 500}, anthropic.InternalServerError, "api_error"),
        ({"status": 529}, anthropic.APIStatusError, "overloaded_error"),
    ]
    for fault, error_class, error_type in cases:
        control("faults", [fault])
        try:
            client.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)
        except error_class as e:
            assert e.status_code == fault["status"], e
            assert e.type == error_type, (e.type, error_type)
            assert e.request_id and e.request_id.startswith("req_")
            if "message" in fault:
                assert e.api_message == fault["message"]
            if fault["status"] == 429:
                assert e.response.headers["retry-after"] == "1"
            if fault["status"] == 529:
                assert isinstance(e, anthropic.OverloadedError)
        else:
            raise AssertionError(f"expected {error_class.__name__} for {fault}")
    # Every fault was used up: the next request succeeds.
    client.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)


@check
def status_fault_in_stream_helper():
    control("faults", [{"status": 529}])
    try:
        with client.messages.stream(model=MODEL, max_tokens=16, messages=MESSAGES) as stream:
            stream.get_final_message()
    except anthropic.OverloadedError as e:
        assert e.type == "overloaded_error"
    else:
        raise AssertionError("expected OverloadedError")


reset_upstream()
failed = [name for name, err in results if err]
print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
