"""Checks that the official Cohere Python SDK parses everything the simulator sends.

Usage: python check_cohere.py http://127.0.0.1:PORT
Needs the `cohere` version pinned in tests/sdk/requirements.txt. Talks to the simulated upstream
named `cohere` through `cohere.ClientV2(base_url=<sim>/cohere)` (the SDK appends `/v2/chat` and
`/v2/embed`), prints `N passed, M failed` and exits non-zero on any failure.
"""

import base64
import json
import struct
import sys
import traceback
import urllib.request

import cohere
from cohere.core.api_error import ApiError

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8080"
UPSTREAM = "cohere"
MODEL = "command-a-sim"
client = cohere.ClientV2(api_key="co-sim", base_url=f"{BASE}/{UPSTREAM}", max_retries=0)

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hello, world!"},
]
# Billed: "You are terse." 4 + "Hello, world!" 4; the template adds 3 per message and 3 more.
BILLED_INPUT = 8
TEMPLATE_INPUT = BILLED_INPUT + 2 * 3 + 3
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
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Local time in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    },
]
BOTH_TOOLS = [{"role": "user", "content": "Please call get_weather and get_time for Paris"}]

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


def content(message):
    """The content as plain data, comparable between streamed and non-streamed replies."""
    out = []
    for item in message.content or []:
        if item.type == "text":
            out.append(("text", item.text))
        elif item.type == "thinking":
            out.append(("thinking", item.thinking))
        else:
            raise AssertionError(f"unexpected content {item!r}")
    return out


def reassemble(events):
    """Rebuilds a reply from stream events, as a client would."""
    reply = {"content": [], "tool_plan": "", "tool_calls": [], "citations": [], "types": []}
    for ev in events:
        reply["types"].append(ev.type)
        if ev.type == "message-start":
            reply["id"] = ev.id
            assert ev.delta.message.role == "assistant"
        elif ev.type == "content-start":
            assert ev.index == len(reply["content"])
            reply["content"].append([ev.delta.message.content.type, ""])
        elif ev.type == "content-delta":
            piece = ev.delta.message.content
            reply["content"][ev.index][1] += piece.text if piece.text is not None else piece.thinking
        elif ev.type == "tool-plan-delta":
            reply["tool_plan"] += ev.delta.message.tool_plan
        elif ev.type == "tool-call-start":
            call = ev.delta.message.tool_calls
            assert ev.index == len(reply["tool_calls"])
            reply["tool_calls"].append([call.id, call.function.name, call.function.arguments or ""])
        elif ev.type == "tool-call-delta":
            reply["tool_calls"][ev.index][2] += ev.delta.message.tool_calls.function.arguments
        elif ev.type == "citation-start":
            reply["citations"].append(ev.delta.message.citations)
        elif ev.type == "message-end":
            reply["finish_reason"] = ev.delta.finish_reason
            reply["usage"] = ev.delta.usage
        elif ev.type not in ("content-end", "tool-call-end", "citation-end"):
            raise AssertionError(f"unexpected event {ev!r}")
    reply["content"] = [tuple(c) for c in reply["content"]]
    return reply


# Start from a clean upstream: default behaviour, no leftover faults.
reset_upstream()


@check
def chat_plain():
    reply = client.chat(model=MODEL, messages=MESSAGES)
    assert len(reply.id) == 36 and reply.id.count("-") == 4, reply.id
    assert reply.finish_reason == "COMPLETE"
    assert reply.message.role == "assistant"
    ((kind, text),) = content(reply.message)
    assert kind == "text" and len(text.split(" ")) == 16
    assert not reply.message.tool_calls and not reply.message.citations
    assert reply.usage.billed_units.input_tokens == BILLED_INPUT, reply.usage
    assert reply.usage.tokens.input_tokens == TEMPLATE_INPUT, reply.usage
    assert reply.usage.billed_units.output_tokens == 16 and reply.usage.tokens.output_tokens == 16
    again = client.chat(model=MODEL, messages=MESSAGES)
    assert content(again.message) == content(reply.message), "deterministic"
    assert again.id != reply.id
    request = recorded()[-1]
    assert request["path"] == f"/{UPSTREAM}/v2/chat", request["path"]
    assert request["headers"]["authorization"] == "Bearer co-sim"


@check
def max_tokens_and_stop_sequences():
    reply = client.chat(model=MODEL, messages=MESSAGES, max_tokens=4)
    assert reply.finish_reason == "MAX_TOKENS" and reply.usage.billed_units.output_tokens == 4
    words = client.chat(model=MODEL, messages=MESSAGES).message.content[0].text.split(" ")
    stop = " " + words[3]
    cut = client.chat(model=MODEL, messages=MESSAGES, stop_sequences=[stop])
    assert cut.finish_reason == "STOP_SEQUENCE"
    assert cut.message.content[0].text == " ".join(words[:3])


@check
def thinking_block_first():
    reply = client.chat(model=MODEL, messages=MESSAGES, thinking={"type": "enabled", "token_budget": 8})
    (thinking, think), (kind, text) = content(reply.message)
    assert thinking == "thinking" and len(think.split(" ")) == 8
    assert kind == "text" and len(text.split(" ")) == 16
    assert reply.usage.billed_units.output_tokens == 24
    off = client.chat(model=MODEL, messages=MESSAGES, thinking={"type": "disabled"})
    assert [c[0] for c in content(off.message)] == ["text"]


@check
def tools_parallel_then_results():
    reply = client.chat(model=MODEL, messages=BOTH_TOOLS, tools=TOOLS)
    assert reply.finish_reason == "TOOL_CALL"
    assert reply.message.tool_plan == "I will use get_weather and get_time to answer this."
    weather, time = reply.message.tool_calls
    assert weather.type == "function" and weather.id.startswith("get_weather_")
    assert weather.function.name == "get_weather" and time.function.name == "get_time"
    args = json.loads(weather.function.arguments)
    assert isinstance(args["city"], str) and args["unit"] in ("celsius", "fahrenheit")
    assert "city" in json.loads(time.function.arguments)
    # The second turn passes the assistant message back as the SDK parsed it.
    outputs = {weather.id: {"temperature": 21, "sky": "clear"}, time.id: {"time": "12:00"}}
    second = [
        *BOTH_TOOLS,
        {"role": "assistant", "tool_plan": reply.message.tool_plan, "tool_calls": reply.message.tool_calls},
        *({"role": "tool", "tool_call_id": cid, "content": json.dumps(out)} for cid, out in outputs.items()),
    ]
    answer = client.chat(model=MODEL, messages=second, tools=TOOLS)
    assert answer.finish_reason == "COMPLETE" and not answer.message.tool_calls
    text = answer.message.content[0].text
    assert len(answer.message.citations) == 2
    for citation, (cid, out) in zip(answer.message.citations, outputs.items()):
        assert text[citation.start:citation.end] == citation.text
        (source,) = citation.sources
        assert source.type == "tool" and source.id == f"{cid}:0" and source.tool_output == out
        assert citation.type == "TEXT_CONTENT"
    forced = client.chat(model=MODEL, messages=MESSAGES, tools=TOOLS, tool_choice="REQUIRED")
    assert [c.function.name for c in forced.message.tool_calls] == ["get_weather"]
    none = client.chat(model=MODEL, messages=BOTH_TOOLS, tools=TOOLS, tool_choice="NONE")
    assert none.finish_reason == "COMPLETE" and not none.message.tool_calls


@check
def documents_are_cited():
    docs = [{"id": "faq", "data": {"title": "FAQ", "snippet": "Open daily."}}, "Closed on holidays."]
    reply = client.chat(model=MODEL, messages=MESSAGES, documents=docs)
    sources = [s for c in reply.message.citations for s in c.sources]
    assert [(s.type, s.id) for s in sources] == [("document", "faq"), ("document", "doc:1")], sources
    assert sources[0].document["title"] == "FAQ" and sources[1].document["text"] == "Closed on holidays."


@check
def json_response_format():
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0, "maximum": 120}},
        "required": ["name", "age"],
    }
    reply = client.chat(model=MODEL, messages=MESSAGES, response_format={"type": "json_object", "json_schema": schema})
    doc = json.loads(reply.message.content[0].text)
    assert isinstance(doc["name"], str) and 0 <= doc["age"] <= 120
    free = client.chat(model=MODEL, messages=MESSAGES, response_format={"type": "json_object"})
    assert isinstance(json.loads(free.message.content[0].text), dict)


@check
def stream_text_matches_chat():
    expected = client.chat(model=MODEL, messages=MESSAGES, thinking={"type": "enabled"})
    events = list(client.chat_stream(model=MODEL, messages=MESSAGES, thinking={"type": "enabled"}))
    reply = reassemble(events)
    assert reply["types"][0] == "message-start" and reply["types"][-1] == "message-end"
    assert reply["types"].count("content-delta") == 32
    assert reply["content"] == content(expected.message)
    assert reply["finish_reason"] == "COMPLETE"
    assert reply["usage"].tokens.input_tokens == TEMPLATE_INPUT
    assert reply["usage"].billed_units.output_tokens == expected.usage.billed_units.output_tokens


@check
def stream_tools_and_citations_match_chat():
    expected = client.chat(model=MODEL, messages=BOTH_TOOLS, tools=TOOLS)
    reply = reassemble(client.chat_stream(model=MODEL, messages=BOTH_TOOLS, tools=TOOLS))
    assert reply["finish_reason"] == "TOOL_CALL"
    assert reply["tool_plan"] == expected.message.tool_plan
    want = [[c.id, c.function.name, c.function.arguments] for c in expected.message.tool_calls]
    assert reply["tool_calls"] == want, reply["tool_calls"]
    second = [
        *BOTH_TOOLS,
        {"role": "assistant", "tool_plan": expected.message.tool_plan, "tool_calls": expected.message.tool_calls},
        *({"role": "tool", "tool_call_id": c.id, "content": "[{\"ok\": true}]"} for c in expected.message.tool_calls),
    ]
    answer = client.chat(model=MODEL, messages=second, tools=TOOLS)
    streamed = reassemble(client.chat_stream(model=MODEL, messages=second, tools=TOOLS))
    assert streamed["content"] == content(answer.message)
    assert [(c.start, c.end, c.text) for c in streamed["citations"]] == [
        (c.start, c.end, c.text) for c in answer.message.citations
    ]
    assert streamed["types"].index("citation-start") < streamed["types"].index("content-end")


@check
def embed_every_type():
    texts = ["hello world", "bye"]
    reply = client.embed(
        model="embed-v4.0", input_type="search_document", texts=texts,
        embedding_types=["float", "int8", "uint8", "binary", "ubinary", "base64"],
    )
    assert reply.response_type == "embeddings_by_type" and reply.texts == texts
    floats = reply.embeddings.float_
    assert len(floats) == 2 and len(floats[0]) == 16
    assert abs(sum(x * x for x in floats[0]) - 1.0) < 1e-4
    assert all(abs(i - x * 127) <= 0.501 for i, x in zip(reply.embeddings.int8[0], floats[0]))
    assert len(reply.embeddings.ubinary[0]) == 2 and reply.embeddings.binary[0][0] == reply.embeddings.ubinary[0][0] - 128
    decoded = struct.unpack("<16f", base64.b64decode(reply.embeddings.base64[0]))
    as_f32 = struct.unpack("<16f", struct.pack("<16f", *floats[0]))
    assert decoded == as_f32
    assert reply.meta.billed_units.input_tokens == 3
    wide = client.embed(model="embed-v4.0", input_type="search_query", texts=["hello world"], output_dimension=256)
    assert len(wide.embeddings.float_[0]) == 256
    try:
        client.embed(model="embed-english-v3.0", input_type=None, texts=["x"])
    except cohere.errors.BadRequestError as e:
        assert "input_type" in e.body["message"], e.body
    else:
        raise AssertionError("a v3 model without input_type must be rejected")


@check
def validation_and_auth_errors():
    try:
        client.chat(model=MODEL, messages=MESSAGES, tool_choice="REQUIRED")
    except cohere.errors.BadRequestError as e:
        assert e.status_code == 400 and e.body["message"].startswith("invalid request: tool_choice"), e.body
    else:
        raise AssertionError("expected BadRequestError")
    try:
        client.chat(model=MODEL, messages=[*MESSAGES, {"role": "tool", "tool_call_id": "nope", "content": "{}"}])
    except cohere.errors.BadRequestError as e:
        assert "messages[2].tool_call_id" in e.body["message"], e.body
    else:
        raise AssertionError("expected BadRequestError")
    anonymous = cohere.ClientV2(api_key="", base_url=f"{BASE}/{UPSTREAM}", max_retries=0)
    try:
        anonymous.chat(model=MODEL, messages=MESSAGES)
    except cohere.errors.UnauthorizedError as e:
        assert e.status_code == 401 and e.body == {"message": "no api key supplied"}, e.body
    else:
        raise AssertionError("expected UnauthorizedError")


@check
def status_fault_errors():
    cases = [
        ({"status": 400, "message": "invalid request: scripted"}, cohere.errors.BadRequestError),
        ({"status": 429, "retry_after_s": 1}, cohere.errors.TooManyRequestsError),
        ({"status": 500}, cohere.errors.InternalServerError),
        ({"status": 503}, cohere.errors.ServiceUnavailableError),
        ({"status": 502}, ApiError),
    ]
    for fault, error_class in cases:
        control("faults", [fault])
        try:
            client.chat(model=MODEL, messages=MESSAGES)
        except error_class as e:
            assert e.status_code == fault["status"], e
            assert isinstance(e.body, dict) and e.body["message"], e.body
            if "message" in fault:
                assert e.body["message"] == fault["message"]
            if fault["status"] == 429:
                assert e.headers["retry-after"] == "1"
        else:
            raise AssertionError(f"expected {error_class.__name__} for {fault}")
    # Every fault was used up: the next request succeeds.
    client.chat(model=MODEL, messages=MESSAGES)


@check
def status_fault_in_stream_and_embed():
    control("faults", [{"status": 429, "retry_after_s": 2}, {"status": 500}])
    try:
        list(client.chat_stream(model=MODEL, messages=MESSAGES))
    except cohere.errors.TooManyRequestsError as e:
        assert e.headers["retry-after"] == "2"
    else:
        raise AssertionError("expected TooManyRequestsError")
    try:
        client.embed(model="embed-v4.0", input_type="classification", texts=["x"])
    except cohere.errors.InternalServerError as e:
        assert e.status_code == 500
    else:
        raise AssertionError("expected InternalServerError")


reset_upstream()
failed = [name for name, err in results if err]
print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
