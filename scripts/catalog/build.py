#!/usr/bin/env python3
"""Builds Switchyard's bundled model catalog from the source snapshots in shared/data.

    python3 scripts/catalog/build.py [--data DIR] [--out DIR] [--check] [--stats]

Writes catalog/providers.json, catalog/models.json and catalog/endpoints.json. The output depends
only on the input files: no clock, no network, no randomness, so two runs give identical bytes.
`--check` builds into a temporary directory and exits 1 if the committed files differ.
`--stats` prints counts and the upstream-name match methods (the numbers quoted in README.md).

Python 3.11 standard library only. See README.md next to this file for what comes from where.
"""

from __future__ import annotations

import argparse
import calendar
import collections
import datetime
import json
import re
import signal
import sys
import tempfile
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "catalog"

# The OpenRouter models snapshot the catalog follows; the catalog version is "<date>.<revision>".
OR_MODELS_FILE = "openrouter/models.2026-08-19.json"
OR_MODELS_MAY_FILE = "openrouter/models.2026-05-18.json"
OR_ENDPOINTS_FILE = "openrouter/endpoints.2026-05-18.json"
OR_PROVIDERS_FILE = "openrouter/providers.2026-05-22.json"
MODELS_DEV_FILE = "models.dev/api.2026-06-13.json"
LITELLM_FILE = "litellm/model_prices_and_context_window_backup.json"
LITELLM_LIKE_FILE = "litellm/openai_like_providers.json"
SNAPSHOT_DATE = "2026-08-19"
# Bump when the build logic changes the output for the same inputs.
REVISION = 1

# OpenRouter's PublicPricing keys, in their order. `discount` is separate (a number).
PRICE_KEYS = [
    "prompt", "completion", "request", "image", "image_token", "image_output", "audio",
    "audio_output", "input_audio_cache", "web_search", "internal_reasoning", "input_cache_read",
    "input_cache_write", "input_cache_write_1h",
]
QUANTIZATIONS = {"int4", "int8", "fp4", "mxfp4", "nvfp4", "fp6", "fp8", "mxfp8", "fp16", "bf16", "fp32", "unknown"}

# ---------------------------------------------------------------------------------------------
# Providers
# ---------------------------------------------------------------------------------------------
# How each provider is reached. `md` names the models.dev provider and `ll` the litellm
# openai_like provider whose `api`/`env` fill base_url and api_key_env; `base`/`env` are set where
# those sources have no (usable) value, with `src` saying where the value comes from. `cand` lists
# the per-provider model lists used to find the provider's own model ids and prices:
# models.dev provider ids (`md:`), litellm `litellm_provider` values (`ll:`) and portkey pricing
# files (`pk:`). `name` is only for providers missing from OpenRouter's /providers snapshot.
P = dict
PROVIDERS = {
    "ai21": P(base="https://api.ai21.com/studio/v1", env="AI21_API_KEY", src="AI21 docs (well-known)", cand=["ll:ai21", "pk:ai21"]),
    "aion-labs": P(base="https://api.aionlabs.ai/v1", env="AIONLABS_API_KEY", src="aionlabs.ai/docs", cand=[]),
    "akashml": P(base="https://api.akashml.com/v1", env="AKASHML_API_KEY", src="models.dev PR #1308", cand=[]),
    "alibaba": P(md="alibaba", cand=["md:alibaba", "ll:dashscope", "pk:dashscope"]),
    "amazon-bedrock": P(protocol="bedrock", base="https://bedrock-runtime.us-east-1.amazonaws.com", md="amazon-bedrock",
                        env="AWS_BEARER_TOKEN_BEDROCK", src="AWS (us-east-1 runtime endpoint)",
                        cand=["md:amazon-bedrock", "ll:bedrock_converse", "ll:bedrock", "pk:bedrock"],
                        cand_re=r"^[a-z-]+\.[a-z]"),  # Bedrock ids are `vendor.model`; portkey also lists bare names
    "ambient": P(md="ambient", cand=["md:ambient"]),
    "anthropic": P(protocol="anthropic", base="https://api.anthropic.com/v1", md="anthropic", src="Anthropic docs",
                   cand=["md:anthropic", "ll:anthropic", "pk:anthropic"]),
    "arcee-ai": P(base="https://api.arcee.ai/api/v1", env="ARCEEAI_API_KEY", src="docs.arcee.ai quick start", cand=[]),
    "atlas-cloud": P(base="https://api.atlascloud.ai/v1", env="ATLASCLOUD_API_KEY", src="atlascloud.ai/docs/en/models/llm", cand=[]),
    "azure": P(protocol="azure", base="https://YOUR-RESOURCE.openai.azure.com/openai", md="azure", src="placeholder: per-resource host",
               cand=["md:azure", "ll:azure", "ll:azure_ai", "pk:azure-openai", "pk:azure-ai"]),
    "baidu": P(base="https://qianfan.baidubce.com/v2", env="QIANFAN_API_KEY", src="Baidu Qianfan v2 (OpenAI-compatible)", cand=[]),
    "baseten": P(md="baseten", cand=["md:baseten", "ll:baseten"]),
    "cerebras": P(base="https://api.cerebras.ai/v1", md="cerebras", src="Cerebras docs (well-known)", cand=["md:cerebras", "ll:cerebras", "pk:cerebras"]),
    "chutes": P(md="chutes", cand=["md:chutes"]),
    "clarifai": P(md="clarifai", cand=["md:clarifai"]),
    "cloudflare": P(base="https://api.cloudflare.com/client/v4/accounts/YOUR-ACCOUNT-ID/ai/v1", env="CLOUDFLARE_API_KEY",
                    src="models.dev cloudflare-workers-ai (account id is a placeholder)",
                    cand=["md:cloudflare-workers-ai", "ll:cloudflare", "pk:workers-ai"]),
    "cohere": P(protocol="cohere", base="https://api.cohere.com/v2", md="cohere", src="Cohere v2 API (well-known)",
                cand=["md:cohere", "ll:cohere_chat", "ll:cohere", "pk:cohere"]),
    "deepinfra": P(base="https://api.deepinfra.com/v1/openai", md="deepinfra", src="DeepInfra docs (well-known)",
                   cand=["md:deepinfra", "ll:deepinfra", "pk:deepinfra"]),
    "deepseek": P(md="deepseek", cand=["md:deepseek", "ll:deepseek", "pk:deepseek"]),
    "dekallm": P(base="https://dekallm.cloudeka.ai/v1", env="DEKALLM_API_KEY", src="Cloudeka DekaLLM (public client configs)", cand=[]),
    "featherless": P(base="https://api.featherless.ai/v1", env="FEATHERLESS_API_KEY", src="Featherless docs (well-known)", cand=["ll:featherless_ai"]),
    "fireworks": P(md="fireworks-ai", cand=["md:fireworks-ai", "ll:fireworks_ai", "pk:fireworks-ai"]),
    "friendli": P(md="friendli", cand=["md:friendli", "ll:friendliai"]),
    "gmicloud": P(md="gmicloud", cand=["md:gmicloud", "ll:gmi"]),
    "google-ai-studio": P(protocol="gemini", base="https://generativelanguage.googleapis.com/v1beta", env="GEMINI_API_KEY",
                          src="Gemini API docs", cand=["md:google", "ll:gemini", "pk:google"]),
    "google-vertex": P(protocol="vertex", base="https://us-central1-aiplatform.googleapis.com/v1", env="GOOGLE_VERTEX_API_KEY",
                       src="Vertex AI (us-central1)",
                       cand=["md:google-vertex", "md:google-vertex-anthropic", "ll:vertex_ai-language-models", "ll:vertex_ai-anthropic_models",
                             "ll:vertex_ai-llama_models", "ll:vertex_ai-mistral_models", "ll:vertex_ai-deepseek_models", "ll:vertex_ai-qwen_models",
                             "ll:vertex_ai-openai_models", "ll:vertex_ai-zai_models", "ll:vertex_ai-moonshot_models", "ll:vertex_ai-minimax_models",
                             "ll:vertex_ai-ai21_models", "ll:vertex_ai-embedding-models", "ll:vertex_ai", "pk:vertex-ai"]),
    "groq": P(base="https://api.groq.com/openai/v1", md="groq", src="Groq docs (well-known)", cand=["md:groq", "ll:groq", "pk:groq"]),
    "inception": P(md="inception", cand=["md:inception", "ll:inception"]),
    "inceptron": P(md="inceptron", cand=["md:inceptron"]),
    "infermatic": P(base="https://api.totalgpt.ai/v1", env="INFERMATIC_API_KEY", src="Infermatic (api.totalgpt.ai)", cand=[]),
    "inflection": P(base="https://layercake.pubwestus3.inf7ks8.com/external/api/inference/openai/v1", env="INFLECTION_API_KEY",
                    src="developers.inflection.ai (OpenAI-compatible route)", cand=[]),
    "io-net": P(md="io-net", cand=["md:io-net"]),
    "ionstream": P(base="https://YOUR-IONSTREAM-ENDPOINT/v1", env="IONSTREAM_API_KEY", src="placeholder: no public API base found", cand=[]),
    "mancer": P(base="https://neuro.mancer.tech/oai/v1", env="MANCER_API_KEY", src="mancer.tech (OpenAI-compatible /oai/v1)", cand=[]),
    "mara": P(base="https://YOUR-MARA-ENDPOINT/v1", env="MARA_API_KEY", src="placeholder: no public API base found", cand=[]),
    "minimax": P(base="https://api.minimax.io/v1", md="minimax", src="MiniMax docs (OpenAI-compatible host; models.dev lists the Anthropic path)",
                 cand=["md:minimax", "ll:minimax", "pk:minimax"]),
    "mistral": P(base="https://api.mistral.ai/v1", md="mistral", src="Mistral docs (well-known)", cand=["md:mistral", "ll:mistral", "pk:mistral-ai"]),
    "modelrun": P(base="https://YOUR-MODELRUN-ENDPOINT/v1", env="MODELRUN_API_KEY", src="placeholder: no public API base found", cand=[]),
    "moonshotai": P(md="moonshotai", cand=["md:moonshotai", "ll:moonshot", "pk:moonshot"]),
    "morph": P(md="morph", cand=["md:morph", "ll:morph"]),
    "nebius": P(md="nebius", cand=["md:nebius", "ll:nebius", "pk:nebius"]),
    "nextbit": P(base="https://api.nextbit256.com/v1", env="NEXTBIT_API_KEY", src="nextbit256.com (/v1/models is public)", cand=[]),
    "novita": P(md="novita-ai", cand=["md:novita-ai", "ll:novita", "pk:novita-ai"]),
    "openai": P(base="https://api.openai.com/v1", md="openai", src="OpenAI docs (well-known)", cand=["md:openai", "ll:openai", "pk:openai"]),
    "parasail": P(ll="parasail", cand=[]),
    "perceptron": P(base="https://api.perceptron.inc/v1", env="PERCEPTRON_API_KEY", src="perceptron.inc (/v1/models answers 401)", cand=[]),
    # Only Perplexity's own Sonar models: the others litellm lists are served by its Agent (Responses) API.
    "perplexity": P(base="https://api.perplexity.ai", md="perplexity", src="Perplexity docs (well-known)",
                    cand=["md:perplexity", "ll:perplexity", "pk:perplexity-ai"], cand_re=r"^(perplexity/)?sonar"),
    "phala": P(base="https://api.redpill.ai/v1", env="REDPILL_API_KEY", src="RedPill (Phala) API", cand=[]),
    "reka": P(ll="reka", cand=["pk:reka-ai"]),
    "relace": P(base="https://YOUR-RELACE-ENDPOINT/v1", env="RELACE_API_KEY", src="placeholder: no OpenAI-compatible base found", cand=[]),
    "sambanova": P(base="https://api.sambanova.ai/v1", env="SAMBANOVA_API_KEY", src="SambaNova docs (well-known)", cand=["ll:sambanova"]),
    "seed": P(base="https://ark.ap-southeast.bytepluses.com/api/v3", env="ARK_API_KEY", src="BytePlus ModelArk (well-known)", cand=["pk:byteplus"]),
    "siliconflow": P(md="siliconflow", cand=["md:siliconflow"]),
    # Stealth models are only reachable through OpenRouter itself.
    "stealth": P(base="https://openrouter.ai/api/v1", env="OPENROUTER_API_KEY", src="OpenRouter (stealth models have no public upstream)", cand=[]),
    "stepfun": P(md="stepfun", cand=["md:stepfun"]),
    "streamlake": P(ll="streamlake", cand=["ll:streamlake"]),
    "switchpoint": P(base="https://YOUR-SWITCHPOINT-ENDPOINT/v1", env="SWITCHPOINT_API_KEY", src="placeholder: no public API base found", cand=[]),
    "together": P(base="https://api.together.xyz/v1", md="togetherai", src="Together docs (well-known)", cand=["md:togetherai", "ll:together_ai", "pk:together-ai"]),
    "upstage": P(md="upstage", cand=["md:upstage", "pk:upstage"]),
    "venice": P(ll="veniceai", md="venice", cand=["md:venice"]),
    "wandb": P(md="wandb", cand=["md:wandb", "ll:wandb"]),
    "xai": P(base="https://api.x.ai/v1", md="xai", src="xAI docs (well-known)", cand=["md:xai", "ll:xai", "pk:x-ai"]),
    "xiaomi": P(md="xiaomi", cand=["md:xiaomi", "ll:xiaomi_mimo"]),
    "z-ai": P(md="zai", cand=["md:zai", "ll:zai", "pk:z-ai"]),
    # First-party providers of models added after the May endpoints snapshot (not in it).
    "nvidia": P(md="nvidia", cand=["md:nvidia", "ll:nvidia_nim"]),
    "poolside": P(md="poolside", cand=["md:poolside"]),
    "meta": P(ll="meta", name="Meta", cand=["ll:meta"]),
    "tencent": P(md="tencent-tokenhub", name="Tencent", cand=["md:tencent-tokenhub", "ll:tencent"]),
    "sakana-ai": P(base="https://api.sakana.ai/v1", env="SAKANA_API_KEY", name="Sakana AI",
                   src="api.sakana.ai (/v1/models answers 401)", cand=[]),
}

# The model author's own API, for endpoints synthesised from the model's listed price.
FIRST_PARTY = {
    "openai": "openai", "anthropic": "anthropic", "google": "google-ai-studio", "mistralai": "mistral",
    "deepseek": "deepseek", "x-ai": "xai", "qwen": "alibaba", "moonshotai": "moonshotai", "z-ai": "z-ai",
    "minimax": "minimax", "bytedance-seed": "seed", "stepfun": "stepfun", "aion-labs": "aion-labs",
    "upstage": "upstage", "cohere": "cohere", "nvidia": "nvidia", "poolside": "poolside", "meta": "meta",
    "tencent": "tencent", "xiaomi": "xiaomi", "kwaipilot": "streamlake", "arcee-ai": "arcee-ai",
    "inception": "inception", "perplexity": "perplexity", "baidu": "baidu", "ai21": "ai21", "reka": "reka",
    "inflection": "inflection", "morph": "morph", "relace": "relace", "amazon": "amazon-bedrock",
    "sakana": "sakana-ai",
}
# Models that exist for one host only, which is not their author: treated like a first party.
SOLE_HOST = {
    # Venice's own edition of Dolphin Mistral 24B, called `venice-uncensored` in Venice's API.
    "cognitivecomputations/dolphin-mistral-24b-venice-edition": "venice",
}

# Providers whose API takes Hugging Face repository ids; used when no source lists the model.
HF_STYLE = {
    "deepinfra", "together", "siliconflow", "nebius", "chutes", "io-net", "friendli", "wandb", "baseten",
    "parasail", "featherless", "akashml", "gmicloud", "inceptron", "nextbit", "dekallm", "atlas-cloud",
    "mancer", "infermatic", "ionstream", "modelrun", "mara", "sambanova", "ambient", "cerebras",
}
# Providers whose API takes OpenRouter-style lowercase `author/slug` ids.
OR_STYLE = {"novita", "phala", "stealth", "clarifai"}

# The few upstream names no source gives and the heuristics get wrong; each is the provider's
# documented model id. (provider, OpenRouter model id without :variant) -> upstream model.
MANUAL = {
    ("groq", "meta-llama/llama-3.3-70b-instruct"): "llama-3.3-70b-versatile",
    ("groq", "meta-llama/llama-3.1-8b-instruct"): "llama-3.1-8b-instant",
    ("mistral", "mistralai/mistral-small-3.2-24b-instruct"): "mistral-small-2506",
    ("venice", "cognitivecomputations/dolphin-mistral-24b-venice-edition"): "venice-uncensored",
    ("mistral", "mistralai/mistral-medium-3"): "mistral-medium-2505",
    ("mistral", "mistralai/mistral-medium-3.1"): "mistral-medium-2508",
    ("mistral", "mistralai/mistral-saba"): "mistral-saba-latest",
    ("mistral", "mistralai/mixtral-8x22b-instruct"): "open-mixtral-8x22b",
    ("mistral", "mistralai/voxtral-small-24b-2507"): "voxtral-small-2507",
    ("openai", "openai/o3-mini-high"): "o3-mini",  # OpenRouter's variant with reasoning effort "high"
    ("openai", "openai/o4-mini-high"): "o4-mini",
    ("minimax", "minimax/minimax-m1"): "MiniMax-M1",
    ("minimax", "minimax/minimax-01"): "MiniMax-Text-01",
    ("z-ai", "z-ai/glm-4-32b"): "glm-4-32b-0414-128k",
}


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

def load(data: Path, rel: str):
    with open(data / rel, encoding="utf-8") as f:
        return json.load(f)


def dec_str(value) -> str | None:
    """A price as a plain decimal string (no exponent, no trailing zeros); None if absent."""
    if value is None or value == "":
        return None
    d = Decimal(str(value))  # str() of a float is its shortest repr, so no float arithmetic leaks in
    if d.is_nan() or d.is_infinite():
        return None
    # The gateway keeps prices in pico-dollars; float noise such as 8.000000000000001e-07 goes here.
    d = d.quantize(Decimal("1e-12"), rounding=ROUND_HALF_UP)
    if d == 0:
        return "0"
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def per_million(value) -> str | None:
    """models.dev costs are USD per million tokens."""
    if value is None:
        return None
    return dec_str(Decimal(str(value)) / Decimal(1_000_000))


def per_cent(value) -> str | None:
    """portkey prices are US cents per unit."""
    if value is None:
        return None
    return dec_str(Decimal(str(value)) / Decimal(100))


def strip_variant(model_id: str) -> str:
    return model_id.split(":", 1)[0]


def date_to_unix(date: str | None) -> int | None:
    if not date or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        return None
    return calendar.timegm(datetime.date.fromisoformat(date).timetuple())


# ---------------------------------------------------------------------------------------------
# Upstream-name matching
# ---------------------------------------------------------------------------------------------
# Words that providers add to a model id without it being another model.
DECORATIONS = {
    "instruct", "turbo", "fp8", "fp4", "fp16", "bf16", "int4", "int8", "tee", "fast", "maas", "versatile",
    "instant", "latest", "preview", "it", "chat", "hf", "dynamic", "free", "v1", "0", "default", "exp",
}


def core(model_id: str) -> str:
    """The model part of an id, lower case, without provider prefixes and version suffixes."""
    s = model_id.strip().lower()
    s = re.sub(r"^(accounts/fireworks/(models|routers)/|@cf/|@hf/)", "", s)
    s = s.rsplit("/", 1)[-1]
    s = re.sub(r"^(us|eu|global|apac|au|jp|us-gov)\.", "", s)  # Bedrock inference-profile prefixes
    s = re.sub(r"@.*$", "", s)  # Vertex `@20250514`
    s = re.sub(r":\d+$", "", s)  # Bedrock `-v1:0` (the `v1` is a loose-match decoration)
    s = re.sub(r"(\d)p(\d)", r"\1.\2", s)  # Fireworks `k2p6`
    s = re.sub(r"^meta-(?=llama)", "", s)  # `Meta-Llama-3.3-70B-Instruct`
    # Bedrock `anthropic.claude-…`, `meta.llama…`: drop the vendor prefix
    s = re.sub(r"^(anthropic|meta|mistral|deepseek|amazon|cohere|ai21|openai|qwen|google|moonshotai|minimax|zai|writer|nvidia)\.", "", s)
    return s


def key(model_id: str) -> str:
    return re.sub(r"[^a-z0-9]", "", core(model_id))


def loose_key(model_id: str) -> str:
    words = [w for w in re.split(r"[^a-z0-9.]+", core(model_id)) if w]
    words = [w for w in words if w not in DECORATIONS and not re.fullmatch(r"(19|20)\d{6}", w)]
    return re.sub(r"[^a-z0-9]", "", "".join(words))


class Candidate:
    """A model id some source lists for a provider, with that source's price and limits."""

    def __init__(self, ident, source, prompt=None, completion=None, cache_read=None, cache_write=None,
                 context=None, max_output=None, mode=None, name=None, knowledge=None):
        self.id = ident
        self.names = [ident]  # the id plus spellings it is matched under (see VENDOR_PREFIXED)
        self.source = source
        self.prompt = prompt
        self.completion = completion
        self.cache_read = cache_read
        self.cache_write = cache_write
        self.context = context
        self.max_output = max_output
        self.mode = mode
        self.name = name
        self.knowledge = knowledge


def build_candidates(data: Path, md: dict, ll: dict) -> dict[str, list[Candidate]]:
    """provider slug -> candidates, in the order of PROVIDERS[slug]['cand'] then id."""
    pk_cache: dict[str, dict] = {}
    ll_by_provider: dict[str, list[tuple[str, dict]]] = collections.defaultdict(list)
    for k, v in ll.items():
        if isinstance(v, dict) and v.get("litellm_provider"):
            ll_by_provider[v["litellm_provider"]].append((k, v))
    out: dict[str, list[Candidate]] = {}
    for slug, spec in PROVIDERS.items():
        cands: list[Candidate] = []
        for ref in spec.get("cand", []):
            kind, name = ref.split(":", 1)
            if kind == "md":
                prov = md.get(name, {})
                for mid in sorted(prov.get("models", {})):
                    m = prov["models"][mid]
                    cost = m.get("cost") or {}
                    limit = m.get("limit") or {}
                    cands.append(Candidate(
                        mid, f"models.dev:{name}", per_million(cost.get("input")), per_million(cost.get("output")),
                        per_million(cost.get("cache_read")), per_million(cost.get("cache_write")),
                        limit.get("context"), limit.get("output"),
                        "embedding" if "embed" in mid.lower() else "chat", m.get("name"), m.get("knowledge")))
            elif kind == "ll":
                for k, v in sorted(ll_by_provider.get(name, [])):
                    ident = k
                    # litellm keys are `<route>/<model>`; the route prefix is litellm's, not the provider's
                    for prefix in (f"{name}/", "vertex_ai/", "bedrock/", "gemini/", "azure_ai/", "azure/", "together_ai/",
                                   "fireworks_ai/", "friendliai/", "featherless_ai/", "moonshot/", "dashscope/", "xiaomi_mimo/",
                                   "nvidia_nim/", "cohere/"):
                        if ident.startswith(prefix):
                            ident = ident[len(prefix):]
                            break
                    if name == "bedrock" and "/" in ident:
                        continue  # region/step-priced variants such as `us-gov-east-1/…`, `1024-x-1024/…`
                    if name == "azure" and "/" in ident:
                        continue  # deployment-region variants such as `eu/gpt-4o`
                    cands.append(Candidate(
                        ident, f"litellm:{name}", dec_str(v.get("input_cost_per_token")), dec_str(v.get("output_cost_per_token")),
                        dec_str(v.get("cache_read_input_token_cost")), dec_str(v.get("cache_creation_input_token_cost")),
                        v.get("max_input_tokens"), v.get("max_output_tokens"), v.get("mode")))
            elif kind == "pk":
                if name not in pk_cache:
                    path = data / "portkey" / "pricing" / f"{name}.json"
                    pk_cache[name] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
                for mid in sorted(pk_cache[name]):
                    if mid == "default":
                        continue
                    payg = ((pk_cache[name][mid] or {}).get("pricing_config") or {}).get("pay_as_you_go") or {}
                    price = lambda k: per_cent((payg.get(k) or {}).get("price")) if isinstance(payg.get(k), dict) else None
                    cands.append(Candidate(mid, f"portkey:{name}", price("request_token"), price("response_token"),
                                           price("cache_read_input_token"), price("cache_write_input_token"),
                                           mode="embedding" if "embed" in mid.lower() else "chat"))
        pattern = spec.get("cand_re")
        if pattern:
            cands = [c for c in cands if re.search(pattern, c.id)]
        if slug == "fireworks":
            for c in cands:  # litellm sometimes drops Fireworks' account path, which the API needs
                if not c.id.startswith("accounts/"):
                    c.id = c.names[0] = "accounts/fireworks/models/" + c.id
        else:
            cands = [c for c in cands if not c.id.startswith("accounts/fireworks/")]
        if slug in VENDOR_PREFIXED:
            for c in cands:
                bare = re.sub(VENDOR_PREFIXED[slug], "", c.id)
                if bare != c.id:
                    c.names.append(bare)
        out[slug] = cands
    return out


# Providers that put the vendor in front of the model name (Venice: `google-gemma-4-31b-it`).
VENDOR_PREFIXED = {
    "venice": r"^(google|nvidia|openai|zai-org|z-ai|tencent|xiaomi|aion-labs|arcee|meta)-",
}


def plausible_price(price: str | None, listed: str | None) -> bool:
    """A source's price for a synthesised endpoint: known, not zero (a free tier is not a list price)
    and within 10x of OpenRouter's listed price (guards against unit mistakes in the sources)."""
    if price is None or Decimal(price) <= 0:
        return False
    if listed is None or Decimal(listed) <= 0:
        return True
    ratio = Decimal(price) / Decimal(listed)
    return Decimal("0.1") < ratio < Decimal(10)


def same_price(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and Decimal(a) == Decimal(b)


class Matcher:
    """Finds a provider's own id for an OpenRouter model, and records how it was found."""

    def __init__(self, candidates: dict[str, list[Candidate]]):
        self.candidates = candidates
        self.by_key: dict[str, dict[str, list[Candidate]]] = {}
        self.by_loose: dict[str, dict[str, list[Candidate]]] = {}
        for slug, cands in candidates.items():
            bk, bl = collections.defaultdict(list), collections.defaultdict(list)
            for c in cands:
                for n in c.names:
                    if c not in bk[key(n)]:
                        bk[key(n)].append(c)
                    if c not in bl[loose_key(n)]:
                        bl[loose_key(n)].append(c)
            self.by_key[slug], self.by_loose[slug] = bk, bl

    @staticmethod
    def model_keys(model: dict) -> list[str]:
        """The names a provider might use for this model: OpenRouter slug, Hugging Face id, display name."""
        names = [strip_variant(model["id"])]
        if model.get("hugging_face_id"):
            names.append(model["hugging_face_id"])
        if model.get("canonical_slug"):
            names.append(model["canonical_slug"])
        display = model.get("name", "")
        if ": " in display:
            display = display.split(": ", 1)[1]
        display = re.sub(r"\s*\((free|thinking|exacto|nitro)\)\s*$", "", display, flags=re.I)
        names.append(display.replace(" ", "-"))
        return names

    def find(self, provider: str, model: dict, tag: str = "", pricing: dict | None = None,
             exact_only: bool = False) -> tuple[Candidate | None, str]:
        """Best candidate and how it matched (`exact` or `loose`); (None, '') if none.

        Exact and loose matches compete: an exact name match scores less than agreeing with the
        endpoint's price, so `deepinfra/turbo` at $0.10/$0.32 finds `…-Instruct-Turbo`, not `…-Instruct`."""
        names = self.model_keys(model)
        tiers = [("exact", self.by_key.get(provider, {}), key)]
        if not exact_only:
            tiers.append(("loose", self.by_loose.get(provider, {}), loose_key))
        found: dict[int, tuple[Candidate, str]] = {}
        for method, index, keyfn in tiers:
            for n in names:
                k = keyfn(n)
                for c in index.get(k, []) if k else []:
                    found.setdefault(id(c), (c, method))
        if not found:
            return None, ""
        want = set(w for w in re.split(r"[^a-z0-9.]+", core(names[0])) if w)
        return self.pick(list(found.values()), tag, pricing, want)

    @staticmethod
    def pick(found: list[tuple[Candidate, str]], tag: str, pricing: dict | None,
             want: set[str] = frozenset()) -> tuple[Candidate, str]:
        variant = tag.split("/", 1)[1] if "/" in tag else ""

        def score(pair: tuple[Candidate, str]):
            c, method = pair
            low = c.id.lower()
            s = 3 if method == "exact" else 0
            if want and want <= set(re.split(r"[^a-z0-9.]+", core(c.id))):
                s += 2  # keeps every word of the OpenRouter slug (gpt-5.1-chat -> gpt-5.1-chat-latest)
            if pricing and same_price(c.prompt, pricing.get("prompt")):
                s += 4
            if pricing and same_price(c.completion, pricing.get("completion")):
                s += 4
            if variant and variant.lower() in re.split(r"[^a-z0-9]+", low):
                s += 3
            region = variant.split("-")[0] if variant else ""
            if region in ("us", "eu", "global", "apac") and low.startswith(region + "."):
                s += 3
            if not variant and re.match(r"^(us|eu|global|apac|au|jp)\.", low):
                s -= 1  # plain Bedrock tag: the base model id
            if c.mode and c.mode not in ("chat", "completion", "responses", "embedding"):
                s -= 5
            if c.source.startswith("models.dev"):
                s += 1  # models.dev ids are the ones sent to the API; litellm keys sometimes are aliases
            if low.endswith("-latest") or "latest" in low.split("-"):
                s -= 1
            return (-s, len(c.id), c.id)

        return sorted(found, key=score)[0]


def fallback_upstream(provider: str, model: dict) -> tuple[str, str]:
    """The documented heuristic when no source lists the model for this provider."""
    base = strip_variant(model["id"])
    if provider in OR_STYLE:
        return base, "fallback:openrouter_id"
    if provider in HF_STYLE and model.get("hugging_face_id"):
        return model["hugging_face_id"], "fallback:hugging_face_id"
    slug = base.split("/", 1)[1]
    if provider in ("anthropic", "azure", "google-vertex", "amazon-bedrock") and slug.startswith("claude"):
        # Anthropic's aliases use dashes where OpenRouter uses dots: claude-sonnet-4.5 -> claude-sonnet-4-5
        slug = slug.replace(".", "-")
    return slug, "fallback:model_slug"


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------

def describe(model: dict, reasoning: bool) -> str:
    """A short factual one-liner from the model's fields (OpenRouter's prose is not copied)."""
    name = " ".join(model["name"].split())
    author = model["id"].split("/", 1)[0]
    if ": " in name:
        author, name = name.split(": ", 1)
    order = ["text", "image", "file", "audio", "video", "embeddings"]
    arch = model["architecture"]

    def join(items):
        items = sorted(set(items), key=lambda x: order.index(x) if x in order else len(order))
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]

    ctx = model["context_length"] or 0
    if ctx >= 1_000_000:
        ctx_text = f"{Decimal(ctx) / Decimal(1_000_000):.3g}M"
    elif ctx >= 1000:
        ctx_text = f"{round(ctx / 1000)}K"
    else:
        ctx_text = str(ctx)
    text = (f"{name} by {author}: {join(arch['input_modalities'])} in, {join(arch['output_modalities'])} out; "
            f"{ctx_text}-token context")
    if reasoning:
        text += "; reasoning"
    return text + "."


def model_record(src: dict, knowledge: str | None = None) -> dict:
    arch = src["architecture"]
    rec = {
        "id": src["id"],
        "canonical_slug": src.get("canonical_slug") or src["id"],
        "name": src["name"],
        "created": int(src["created"]),
        "context_length": int(src.get("context_length") or (src.get("top_provider") or {}).get("context_length") or 0),
        "architecture": {
            "modality": arch.get("modality"),
            "input_modalities": list(arch.get("input_modalities") or []),
            "output_modalities": list(arch.get("output_modalities") or []),
            "tokenizer": arch.get("tokenizer"),
            "instruct_type": arch.get("instruct_type"),
        },
    }
    if src.get("hugging_face_id"):
        rec["hugging_face_id"] = src["hugging_face_id"]
    if src.get("default_parameters"):
        rec["default_parameters"] = src["default_parameters"]
    if src.get("supported_voices"):
        rec["supported_voices"] = src["supported_voices"]
    cutoff = src.get("knowledge_cutoff") or knowledge
    if cutoff:
        rec["knowledge_cutoff"] = cutoff
    if src.get("expiration_date"):
        rec["expiration_date"] = src["expiration_date"]
    if src.get("reasoning"):
        rec["reasoning"] = src["reasoning"]
    if (src.get("top_provider") or {}).get("is_moderated"):
        rec["is_moderated"] = True
    is_reasoning = bool(src.get("reasoning")) or "reasoning" in (src.get("supported_parameters") or [])
    rec["description"] = describe(rec, is_reasoning)
    return rec


def pricing_record(prices: dict, zero: bool = False) -> dict:
    """OpenRouter's pricing keys as decimal strings; zero ones dropped except prompt and completion."""
    out = {}
    for k in PRICE_KEYS:
        v = "0" if zero else dec_str(prices.get(k))
        if v is None:
            if k in ("prompt", "completion"):
                v = "0"
            else:
                continue
        if Decimal(v) < 0:
            raise ValueError(f"negative price {k}={v}")
        if v == "0" and k not in ("prompt", "completion"):
            continue
        out[k] = v
    discount = prices.get("discount") or 0
    if discount and not zero:
        out["discount"] = float(discount) if not float(discount).is_integer() else int(discount)
    return out


def tag_for(tag: str) -> tuple[str, str]:
    """(provider slug, tag): the one exception OpenRouter's data has is `sambanova-turbo`."""
    if tag == "sambanova-turbo":
        return "sambanova", "sambanova/turbo"
    return tag.split("/", 1)[0], tag


# ---------------------------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------------------------

class Build:
    def __init__(self, data: Path):
        self.data = data
        self.or_models = {m["id"]: m for m in load(data, OR_MODELS_FILE)["data"]}
        self.may_models = {m["id"]: m for m in load(data, OR_MODELS_MAY_FILE)["data"]}
        endpoints_doc = load(data, OR_ENDPOINTS_FILE)
        self.may_endpoints = {}
        self.may_endpoint_models = {}
        for row in endpoints_doc["data"]:
            self.may_endpoints[row["modelId"]] = row["response"]["data"].get("endpoints") or []
            self.may_endpoint_models[row["modelId"]] = row
        self.or_providers = {p["slug"]: p for p in load(data, OR_PROVIDERS_FILE)["data"]}
        self.md = load(data, MODELS_DEV_FILE)
        self.ll = load(data, LITELLM_FILE)
        self.ll_like = load(data, LITELLM_LIKE_FILE)
        pk_or = data / "portkey" / "pricing" / "openrouter.json"
        self.pk_openrouter = json.loads(pk_or.read_text(encoding="utf-8"))
        self.matcher = Matcher(build_candidates(data, self.md, self.ll))
        self.method: dict[tuple[str, str], str] = {}  # (model, tag) -> how upstream_model was found

    # -- upstream names ------------------------------------------------------------------------
    def upstream(self, provider: str, model: dict, tag: str, pricing: dict | None = None) -> str:
        base_id = strip_variant(model["id"])
        if (provider, base_id) in MANUAL:
            name, method = MANUAL[(provider, base_id)], "manual"
        else:
            cand, how = self.matcher.find(provider, model, tag, pricing)
            if cand:
                name, method = cand.id, f"{cand.source.split(':')[0]}:{how}"
            else:
                name, method = fallback_upstream(provider, model)
        self.method[(model["id"], tag)] = method
        return name

    # -- providers -----------------------------------------------------------------------------
    def provider_record(self, slug: str) -> dict:
        spec = PROVIDERS[slug]
        orp = self.or_providers.get(slug, {})
        md = self.md.get(spec.get("md", ""), {})
        like = self.ll_like.get(spec.get("ll", ""), {})
        base = spec.get("base") or md.get("api") or like.get("base_url")
        if not base:
            raise SystemExit(f"provider {slug}: no base URL")
        base = base.rstrip("/")
        env = spec.get("env")
        if not env:
            keys = [e for e in md.get("env") or [] if re.search(r"(KEY|TOKEN|PAT)$", e)]
            env = keys[-1] if keys else like.get("api_key_env") or slug.upper().replace("-", "_") + "_API_KEY"
        name = orp.get("name") or spec.get("name")
        if not name:
            raise SystemExit(f"provider {slug}: no display name")
        rec = {
            "slug": slug,
            "name": name,
            "protocol": spec.get("protocol", "openai"),
            "base_url": base,
            "api_key_env": env,
            "privacy_policy_url": orp.get("privacy_policy_url"),
            "terms_of_service_url": orp.get("terms_of_service_url"),
            "status_page_url": orp.get("status_page_url"),
            "headquarters": orp.get("headquarters"),
            "datacenters": list(orp.get("datacenters") or []),
            "data_policy": DATA_POLICY.get(slug, {"training": False, "retains_prompts": False, "retention_days": None, "zdr": False}),
        }
        return {k: v for k, v in rec.items() if v is not None}

    # -- models and endpoints ------------------------------------------------------------------
    def source_model(self, model_id: str) -> dict:
        return self.or_models.get(model_id) or self.may_models[model_id]

    def knowledge_from_models_dev(self, model: dict) -> str | None:
        author = model["id"].split("/", 1)[0]
        fp = FIRST_PARTY.get(author)
        if not fp:
            return None
        cand, _ = self.matcher.find(fp, model, exact_only=True)
        if cand and cand.knowledge and re.fullmatch(r"\d{4}-\d{2}-\d{2}", cand.knowledge):
            return cand.knowledge
        return None

    def or_endpoint(self, model: dict, ep: dict, zero: bool = False, cap: dict | None = None) -> dict:
        provider, tag = tag_for(ep["tag"])
        if provider not in PROVIDERS:
            raise SystemExit(f"endpoint {model['id']} {ep['tag']}: provider {provider} has no entry in PROVIDERS")
        upstream = self.upstream(provider, model, tag, ep.get("pricing"))
        rec = {
            "model": model["id"],
            "provider": provider,
            "tag": tag,
            "upstream_model": upstream,
            "context_length": int(ep["context_length"] or self.context_fallback(provider, model, tag, ep)),
            "max_completion_tokens": ep.get("max_completion_tokens"),
            "max_prompt_tokens": ep.get("max_prompt_tokens"),
            "quantization": ep.get("quantization") if ep.get("quantization") in QUANTIZATIONS else None,
            "pricing": pricing_record(ep.get("pricing") or {}, zero=zero),
            "supported_parameters": list(ep.get("supported_parameters") or []),
            "supports_implicit_caching": bool(ep.get("supports_implicit_caching")),
            "status": int(ep.get("status") or 0),
        }
        if cap:
            if cap.get("context_length"):
                rec["context_length"] = min(rec["context_length"], int(cap["context_length"]))
            if cap.get("max_completion_tokens") and rec["max_completion_tokens"]:
                rec["max_completion_tokens"] = min(rec["max_completion_tokens"], int(cap["max_completion_tokens"]))
        return {k: v for k, v in rec.items() if v is not None}

    def context_fallback(self, provider: str, model: dict, tag: str, ep: dict) -> int:
        """OpenRouter lists one endpoint with context_length 0: use the source's limit, else the model's."""
        cand, _ = self.matcher.find(provider, model, tag, ep.get("pricing"))
        return int((cand and cand.context) or model.get("context_length") or 0)

    def first_party_endpoint(self, model: dict, zero: bool = False) -> dict | None:
        """The author's own API at the model's listed price and limits."""
        author = model["id"].split("/", 1)[0]
        provider = SOLE_HOST.get(strip_variant(model["id"])) or FIRST_PARTY.get(author)
        if not provider:
            return None
        top = model.get("top_provider") or {}
        rec = {
            "model": model["id"],
            "provider": provider,
            "tag": provider,
            "upstream_model": self.upstream(provider, model, provider, model.get("pricing")),
            "context_length": int(top.get("context_length") or model.get("context_length") or 0),
            "max_completion_tokens": top.get("max_completion_tokens"),
            "pricing": pricing_record({k: v for k, v in (model.get("pricing") or {}).items() if k != "overrides"}, zero=zero),
            "supported_parameters": list(model.get("supported_parameters") or []),
            "supports_implicit_caching": False,
            "status": 0,
        }
        return {k: v for k, v in rec.items() if v is not None}

    def third_party_endpoints(self, model: dict, skip: set[str]) -> list[dict]:
        """Other catalog providers that models.dev or litellm list for this exact model, at their prices."""
        out = []
        listed = (model.get("pricing") or {}).get("prompt")
        for provider in sorted(PROVIDERS):
            if provider in skip:
                continue
            cand, _ = self.matcher.find(provider, model, exact_only=True)
            if not cand or not plausible_price(cand.prompt, listed) or cand.completion is None:
                continue
            if cand.mode and cand.mode not in ("chat", "responses", "completion"):
                continue
            ctx = cand.context or model.get("context_length")
            if not ctx:
                continue
            prices = {"prompt": cand.prompt, "completion": cand.completion,
                      "input_cache_read": cand.cache_read, "input_cache_write": cand.cache_write}
            self.method[(model["id"], provider)] = f"{cand.source.split(':')[0]}:exact"
            rec = {
                "model": model["id"],
                "provider": provider,
                "tag": provider,
                "upstream_model": cand.id,
                "context_length": int(ctx),
                "max_completion_tokens": int(cand.max_output) if cand.max_output else None,
                "pricing": pricing_record(prices),
                "supported_parameters": list(model.get("supported_parameters") or []),
                "supports_implicit_caching": False,
                "status": 0,
            }
            out.append({k: v for k, v in rec.items() if v is not None})
        out.sort(key=lambda e: (Decimal(e["pricing"]["prompt"]), Decimal(e["pricing"]["completion"]), e["provider"]))
        return out

    def run(self):
        models: dict[str, dict] = {}
        endpoints: dict[str, list[dict]] = {}
        dropped: list[tuple[str, str]] = []

        ids = list(self.may_endpoints)  # the May set, with endpoint data
        ids += [i for i in self.or_models if i not in self.may_endpoints]
        # Paid models first so that `:free` variants can reuse their endpoints.
        ids.sort(key=lambda i: (":free" in i, i))
        for model_id in ids:
            src = self.source_model(model_id)
            if model_id.endswith(":batch"):
                continue
            if model_id.startswith("~"):
                continue  # aliases, handled below
            if not self.may_endpoints.get(model_id) and (
                    model_id.startswith("openrouter/") or src["architecture"].get("tokenizer") == "Router"):
                dropped.append((model_id, "OpenRouter router, no upstream"))
                continue
            eps: list[dict] = []
            if model_id.endswith(":free"):
                base = strip_variant(model_id)
                cap = src.get("top_provider") or {}
                if base in endpoints:
                    # OpenRouter's May capture fetched `:free` ids by canonical slug, i.e. the paid
                    # endpoints. The providers and names are right; the price is the `:free` price.
                    for e in endpoints[base]:
                        e = json.loads(json.dumps(e))
                        e["model"] = model_id
                        e["pricing"] = pricing_record({}, zero=True)
                        if cap.get("context_length"):
                            e["context_length"] = min(e["context_length"], int(cap["context_length"]))
                        if cap.get("max_completion_tokens") and e.get("max_completion_tokens"):
                            e["max_completion_tokens"] = min(e["max_completion_tokens"], int(cap["max_completion_tokens"]))
                        eps.append(e)
                        self.method[(model_id, e["tag"])] = self.method[(base, e["tag"])]
                elif self.may_endpoints.get(model_id):
                    for ep in self.may_endpoints[model_id]:
                        eps.append(self.or_endpoint(src, ep, zero=True, cap=cap))
                else:
                    fp = self.first_party_endpoint(src, zero=True)
                    if fp:
                        eps.append(fp)
            elif self.may_endpoints.get(model_id):
                for ep in self.may_endpoints[model_id]:
                    eps.append(self.or_endpoint(src, ep))
            else:
                fp = self.first_party_endpoint(src)
                if fp:
                    eps.append(fp)
                eps += self.third_party_endpoints(src, {fp["provider"]} if fp else set())
            seen_tags: set[str] = set()
            unique = []
            for e in eps:  # OpenRouter lists google-vertex/us-south1 twice for one model; keep the first
                if e["tag"] not in seen_tags:
                    seen_tags.add(e["tag"])
                    unique.append(e)
            eps = unique
            if not eps:
                dropped.append((model_id, "no endpoint can be sourced"))
                continue
            models[model_id] = model_record(src, self.knowledge_from_models_dev(src))
            endpoints[model_id] = eps

        for model_id, rec, eps in self.embedding_models():
            if model_id in models:
                continue
            models[model_id] = rec
            endpoints[model_id] = eps

        aliases = {}
        for model_id, src in self.or_models.items():
            target = (src.get("alias_target") or {}).get("slug")
            if model_id.startswith("~") and target and target in models:
                aliases[model_id] = target

        used = {e["provider"] for eps in endpoints.values() for e in eps}
        providers = [self.provider_record(s) for s in sorted(used)]
        self.dropped = dropped
        return providers, models, endpoints, aliases

    # -- embeddings ----------------------------------------------------------------------------
    def embedding_models(self):
        """OpenRouter's embedding ids (from portkey's OpenRouter price list) with the providers that list them."""
        for model_id in sorted(self.pk_openrouter):
            low = model_id.lower()
            if model_id == "default" or ":" in model_id:
                continue
            if not re.search(r"embed|bge-|/e5-|minilm|mpnet|/gte-", low):
                continue
            author, slug = model_id.split("/", 1)
            stub = {"id": model_id, "name": slug, "canonical_slug": model_id}
            eps = []
            for provider in sorted(PROVIDERS):
                cand, _ = self.matcher.find(provider, stub, exact_only=True)
                listed = per_cent(((self.pk_openrouter[model_id].get("pricing_config") or {}).get("pay_as_you_go") or {})
                                  .get("request_token", {}).get("price"))
                if not cand or cand.mode != "embedding" or not plausible_price(cand.prompt, listed):
                    continue
                self.method[(model_id, provider)] = f"{cand.source.split(':')[0]}:exact"
                rec = {
                    "model": model_id, "provider": provider, "tag": provider, "upstream_model": cand.id,
                    "context_length": int(cand.context or 8192),
                    "pricing": pricing_record({"prompt": cand.prompt, "completion": "0"}),
                    "supported_parameters": [], "supports_implicit_caching": False, "status": 0,
                }
                if not cand.context:
                    continue
                eps.append(rec)
            if not eps:
                continue
            fp = FIRST_PARTY.get(author)
            eps.sort(key=lambda e: (e["provider"] != fp, Decimal(e["pricing"]["prompt"]), e["provider"]))
            info = self.embedding_info(slug, [e["upstream_model"] for e in eps])
            display = info.get("name") or slug
            author_name = AUTHOR_NAMES.get(author, author)
            src = {
                "id": model_id,
                "canonical_slug": model_id,
                "name": f"{author_name}: {display}",
                "created": info.get("created") or 0,
                "context_length": max(e["context_length"] for e in eps),
                "architecture": {"modality": "text->embeddings", "input_modalities": ["text"],
                                 "output_modalities": ["embeddings"], "tokenizer": None, "instruct_type": None},
                "top_provider": {},
            }
            yield model_id, model_record(src), eps

    def embedding_info(self, slug: str, upstreams: list[str]) -> dict:
        """Display name and release date from models.dev, when it lists the model (by name or upstream id).
        Otherwise the name is the slug and `created` is 0 (unknown)."""
        wanted = {key(n) for n in [slug, *upstreams]}
        for prov in sorted(self.md):
            models = self.md[prov].get("models", {})
            for mid in sorted(models):
                m = models[mid]
                if key(mid) in wanted and m.get("release_date"):
                    return {"name": m.get("name"), "created": date_to_unix(m.get("release_date"))}
        return {}


AUTHOR_NAMES = {
    "openai": "OpenAI", "mistralai": "Mistral", "google": "Google", "qwen": "Qwen", "baai": "BAAI",
    "intfloat": "intfloat", "thenlper": "thenlper", "sentence-transformers": "Sentence Transformers",
    "perplexity": "Perplexity", "nvidia": "NVIDIA",
}

# ---------------------------------------------------------------------------------------------
# Data policies: OpenRouter's provider-logging table ("Data Retention" / "Train on Prompts"), as
# rendered on openrouter.ai/docs/features/privacy-and-logging (undated capture, 2025). Providers
# not in that table keep the all-false default: unknown, not "known to be private".
# zero retention -> zdr; "Retained for N days" -> retains, N; "retained for unknown period" -> retains.
# ---------------------------------------------------------------------------------------------

def _policy(retention, train=False):
    if retention == "zero":
        return {"training": train, "retains_prompts": False, "retention_days": None, "zdr": not train}
    days = retention if isinstance(retention, int) else None
    return {"training": train, "retains_prompts": True, "retention_days": days, "zdr": False}


DATA_POLICY = {
    "ai21": _policy("unknown"), "aion-labs": _policy("unknown"), "alibaba": _policy("unknown"),
    "amazon-bedrock": _policy("zero"), "anthropic": _policy(30), "atlas-cloud": _policy("zero"),
    "azure": _policy(30), "baseten": _policy("zero"), "cerebras": _policy("zero"),
    "chutes": _policy("unknown", train=True), "clarifai": _policy("zero"), "cloudflare": _policy("unknown"),
    "cohere": _policy(30), "deepinfra": _policy("zero"), "deepseek": _policy("unknown", train=True),
    "featherless": _policy("zero"), "fireworks": _policy("zero"), "friendli": _policy("unknown"),
    "gmicloud": _policy("unknown"), "google-ai-studio": _policy(55), "google-vertex": _policy("zero"),
    "groq": _policy("zero"), "inception": _policy("zero"), "infermatic": _policy("zero"),
    "inflection": _policy(30), "meta": _policy(30), "minimax": _policy("unknown"), "mistral": _policy(30),
    "moonshotai": _policy("zero"), "morph": _policy("zero"), "nebius": _policy("zero"), "nextbit": _policy("zero"),
    "novita": _policy("unknown"), "nvidia": _policy("zero"), "openai": _policy("unknown"),
    "parasail": _policy("zero"), "perplexity": _policy("zero"), "phala": _policy("zero"), "relace": _policy("zero"),
    "sambanova": _policy("zero"), "siliconflow": _policy("zero"), "stealth": _policy("unknown", train=True),
    "switchpoint": _policy("unknown"), "together": _policy("zero"), "venice": _policy("zero"),
    "wandb": _policy("unknown"), "xai": _policy(30), "z-ai": _policy("zero"),
}


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------

def dump_lines(head: dict, key_name: str, records: list[dict]) -> str:
    """`{"<head>...", "<key>": [\n{record},\n{record}\n]}` with one sorted-key record per line."""
    parts = ["{"]
    for k, v in head.items():
        parts.append(f"{json.dumps(k)}: {json.dumps(v, sort_keys=True, ensure_ascii=False)},\n")
    parts.append(f"{json.dumps(key_name)}: [\n")
    parts.append(",\n".join(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in records))
    parts.append("\n]")
    return "".join(parts)


def write_catalog(out: Path, providers, models, endpoints, aliases) -> dict[str, str]:
    files = {}
    files["providers.json"] = dump_lines({}, "providers", providers) + "}\n"
    model_list = [models[i] for i in sorted(models)]
    text = dump_lines({"version": f"{SNAPSHOT_DATE}.{REVISION}"}, "models", model_list)
    text += ",\n\"aliases\": " + json.dumps(dict(sorted(aliases.items())), sort_keys=True, ensure_ascii=False) + "}\n"
    files["models.json"] = text
    ep_list = [e for i in sorted(endpoints) for e in endpoints[i]]
    files["endpoints.json"] = dump_lines({}, "endpoints", ep_list) + "}\n"
    out.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        json.loads(content)  # must stay valid JSON
        if len(content.encode("utf-8")) >= 2 * 1024 * 1024:
            raise SystemExit(f"{name} is over 2 MiB")
        (out / name).write_text(content, encoding="utf-8")
    return files


def openapi_enum(text: str, schema: str, prop: str | None = None) -> set[str]:
    """The values of an enum in OpenRouter's OpenAPI document (a plain-text scan; no YAML parser in the stdlib)."""
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if l == f"    {schema}:"), None)
    if start is None:
        return set()
    i = start + 1
    if prop:
        while i < len(lines) and not lines[i].strip().startswith(f"{prop}:"):
            i += 1
    while i < len(lines) and lines[i].strip() != "enum:":
        i += 1
    values = set()
    for line in lines[i + 1:]:
        m = re.fullmatch(r"\s*- '?(.*?)'?", line)
        if not m:
            break
        values.add(m.group(1))
    return values


def validate(data: Path, providers: list[dict], endpoints: dict[str, list[dict]]) -> None:
    """Provider names must be OpenRouter's ProviderName values, quantizations its Quantization values."""
    ref = data.parent / "reference" / "openrouter-openapi.yaml"
    if not ref.exists():
        print(f"note: {ref} not found, provider names not checked", file=sys.stderr)
        return
    text = ref.read_text(encoding="utf-8")
    names = openapi_enum(text, "ProviderResponse", "provider_name")
    quants = openapi_enum(text, "Quantization")
    bad = [p["slug"] + ": " + p["name"] for p in providers if p["name"] not in names]
    bad += [f"{e['model']} {e['tag']}: quantization {e['quantization']}" for eps in endpoints.values() for e in eps
            if e.get("quantization") is not None and e["quantization"] not in quants]
    if not names or not quants or bad:
        raise SystemExit("not OpenRouter enum values:\n  " + "\n  ".join(bad or ["(enums not found in the OpenAPI file)"]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared/data folder (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the catalog (default: %(default)s)")
    ap.add_argument("--check", action="store_true", help="build into a temp dir and fail if --out differs")
    ap.add_argument("--stats", action="store_true", help="print counts and upstream-name match methods")
    ap.add_argument("--matches", action="store_true", help="print every endpoint's upstream name and method (TSV)")
    args = ap.parse_args(argv)
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `build.py --matches | head` ends quietly

    build = Build(args.data)
    providers, models, endpoints, aliases = build.run()
    validate(args.data, providers, endpoints)

    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = write_catalog(Path(tmp), providers, models, endpoints, aliases)
            bad = []
            for name, content in fresh.items():
                path = args.out / name
                old = path.read_text(encoding="utf-8") if path.exists() else None
                if old != content:
                    old_lines = set((old or "").splitlines())
                    new_lines = set(content.splitlines())
                    bad.append(f"{name}: {len(new_lines - old_lines)} lines added, {len(old_lines - new_lines)} removed")
            if bad:
                print("catalog is out of date; run scripts/catalog/build.py\n  " + "\n  ".join(bad))
                return 1
            print("catalog is up to date")
            return 0

    write_catalog(args.out, providers, models, endpoints, aliases)
    methods = collections.Counter()
    for model_id in sorted(endpoints):
        for e in endpoints[model_id]:
            method = build.method[(model_id, e["tag"])]
            methods[method] += 1
            if args.matches:
                print("\t".join((model_id, e["tag"], e["upstream_model"], method)))
    if args.stats:
        n_ep = sum(len(v) for v in endpoints.values())
        print(f"models {len(models)}  providers {len(providers)}  endpoints {n_ep}  aliases {len(aliases)}")
        print("providers per protocol:", dict(sorted(collections.Counter(p["protocol"] for p in providers).items())))
        by_proto = collections.Counter()
        proto = {p["slug"]: p["protocol"] for p in providers}
        for eps in endpoints.values():
            for e in eps:
                by_proto[proto[e["provider"]]] += 1
        print("endpoints per protocol:", dict(sorted(by_proto.items())))
        total = sum(methods.values())
        print("upstream_model methods:")
        for m, c in sorted(methods.items(), key=lambda x: (-x[1], x[0])):
            print(f"  {m:28s} {c:5d}  {100 * c / total:5.1f}%")
        print("dropped:", len(build.dropped))
        for model_id, why in build.dropped:
            print(f"  {model_id}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
