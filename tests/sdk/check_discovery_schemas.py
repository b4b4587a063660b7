"""Checks every model-discovery response of a running gateway against OpenRouter's OpenAPI document.

Usage:
    python check_discovery_schemas.py GATEWAY_URL [--api-key KEY] [--spec FILE]
                                      [--catalog DIR --enabled-providers SLUG,SLUG,...]

GATEWAY_URL is the gateway's root (`http://127.0.0.1:8080`; a trailing `/api/v1` is ignored).
The inference key for `/models/user` comes from `--api-key` or `SWITCHYARD_API_KEY`.
The OpenAPI document defaults to `../shared/reference/openrouter-openapi.yaml` beside the repository.

It fetches the whole model list (`/models?output_modalities=all`, unpaged and paged), `/models`,
`/models/count`, `/models/user`, `/model/{id}` and `/models/{id}/endpoints` for EVERY model,
`/endpoints/zdr`, `/embeddings/models` and `/providers`, and validates each body against the 200
response schema of its path (JSON Schema 2020-12, `$ref`s resolved inside the document). Then it
checks the semantics: paging, filters, sorting, counts, variants and aliases, 404 envelopes, and the
agreement between lists, single models and endpoints. With `--catalog` and `--enabled-providers` it
also checks that exactly the catalog's models and endpoints of the enabled providers are visible.

Every distinct schema violation is printed once (path template, JSON pointer with `*` for array
indices, message) with how often it occurred and up to three concrete examples. Prints
`N passed, M failed` last and exits non-zero on any failure.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal, InvalidOperation

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SPEC = os.path.join(HERE, "..", "..", "..", "shared", "reference", "openrouter-openapi.yaml")
SPEC_URI = "urn:switchyard-test:openrouter-openapi"
API = "/api/v1"
EXAMPLES_PER_VIOLATION = 3
DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


# ---------------------------------------------------------------------------------------------
# HTTP


class Response:
    def __init__(self, url, status, headers, text):
        self.url = url
        self.status = status
        self.headers = headers
        self.text = text
        try:
            self.json = json.loads(text) if text else None
            self.json_error = None
        except ValueError as e:
            self.json = None
            self.json_error = str(e)

    def describe(self):
        return f"GET {self.url} -> {self.status}: {self.text[:300]}"


class Gateway:
    def __init__(self, root):
        root = root.rstrip("/")
        if root.endswith(API):
            root = root[: -len(API)]
        self.root = root

    def post_json(self, path, body, key):
        """POSTs a JSON body with a bearer key; returns the Response (the whole body, SSE or not)."""
        req = urllib.request.Request(self.root + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return Response(self.root + path, r.status, r.headers, r.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as e:
            return Response(self.root + path, e.code, e.headers, e.read().decode("utf-8", "replace"))

    def get(self, path, params=None, key=None):
        """GETs `path` (from the root, e.g. `/api/v1/models`) with query `params` (a dict or pairs)."""
        url = self.root + path
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        req = urllib.request.Request(url, headers={"Accept": "application/json"})
        if key:
            req.add_header("Authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return Response(url, r.status, r.headers, r.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as e:
            return Response(url, e.code, e.headers, e.read().decode("utf-8", "replace"))


def stats_problems(where, ep):
    """What is wrong with an endpoint's live statistics (each may be null)."""
    problems = []
    for f in ("uptime_last_5m", "uptime_last_30m", "uptime_last_1d"):
        v = ep.get(f)
        if v is not None and not (isinstance(v, (int, float)) and 0 <= v <= 100):
            problems.append(f"{where}: {f} = {v!r} is not a percentage")
    for f in ("latency_last_30m", "throughput_last_30m"):
        v = ep.get(f)
        if v is None:
            continue
        values = [v.get(p) if isinstance(v, dict) else None for p in ("p50", "p75", "p90", "p99")]
        if not all(isinstance(x, (int, float)) and x >= 0 for x in values) or values != sorted(values):
            problems.append(f"{where}: {f} = {v!r} is not ordered non-negative percentiles")
    return problems


def model_path(model_id):
    """A model id as path segments (`author/slug`), escaping what a path cannot hold but `/`, `:`, `~`."""
    return urllib.parse.quote(model_id, safe="/:~@!$&'()*+,;=-._")


# ---------------------------------------------------------------------------------------------
# The OpenAPI document


class Spec:
    """The OpenAPI document as one JSON Schema 2020-12 resource; validators for response schemas."""

    def __init__(self, path):
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.load(f, Loader=loader)  # noqa: S506 - a safe loader
        resource = Resource.from_contents(self.doc, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(SPEC_URI, resource)
        # `#/components/schemas/X` must resolve from every schema: check a few now, so a broken
        # document fails loudly here rather than as odd validation errors later.
        for name in ("Model", "PublicEndpoint", "NotFoundResponse"):
            if name not in self.doc["components"]["schemas"]:
                raise SystemExit(f"{path}: components/schemas/{name} is missing")
        self._validators = {}

    def response_validator(self, path, status="200"):
        """The validator of the `application/json` body of `GET path`'s `status` response."""
        key = (path, status)
        if key not in self._validators:
            op = self.doc["paths"][path]["get"]
            responses = op["responses"]
            response = responses.get(status, responses.get(int(status)))
            if response is None:
                raise SystemExit(f"the OpenAPI document has no {status} response for GET {path}")
            response_pointer = f"/paths/{_escape(path)}/get/responses/{status}"
            if "$ref" in response:  # a shared response object
                response_pointer = response["$ref"].lstrip("#")
                response = self._resolve(response_pointer)
            if "application/json" not in response.get("content", {}):
                raise SystemExit(f"GET {path} {status} has no application/json schema")
            pointer = f"{response_pointer}/content/application~1json/schema"
            schema = {"$ref": f"{SPEC_URI}#{pointer}"}
            jsonschema.Draft202012Validator.check_schema(self._resolve(pointer))
            self._validators[key] = jsonschema.Draft202012Validator(schema, registry=self.registry)
        return self._validators[key]

    def _resolve(self, pointer):
        node = self.doc
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node


def _escape(token):
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer_of(parts):
    return "".join("/" + _escape(p) for p in parts)


def _num(value):
    """A Decimal price per token as USD per million tokens; other values as they are."""
    return f"{value * 1_000_000:f}".rstrip("0").rstrip(".") if isinstance(value, Decimal) else value


def _short(value, limit=120):
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_error(error):
    """A one-line message for a validation error, without dumping huge enums or instances."""
    kind = error.validator
    if kind == "enum":
        return f"{_short(error.instance)} is not one of the {len(error.validator_value)} values of the enum"
    if kind == "type":
        return f"{_short(error.instance)} is not of type {error.validator_value}"
    if kind in ("anyOf", "oneOf"):
        subs = sorted({describe_error(e) for e in (error.context or [])})
        return f"{_short(error.instance)} matches none of the {kind} branches ({'; '.join(subs)[:300]})"
    if kind == "additionalProperties":
        return error.message[:300]
    return error.message[:300]


# ---------------------------------------------------------------------------------------------
# Results


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        # (template, generic pointer, schema keyword path, message) -> [count, examples]
        self.violations = collections.OrderedDict()
        self.validated = collections.Counter()
        self.invalid = collections.Counter()

    def ok(self, name):
        self.passed += 1
        print(f"ok   {name}")

    def fail(self, name, details):
        self.failed += 1
        print(f"FAIL {name}")
        for d in details[:25]:
            print(f"       {d}")
        if len(details) > 25:
            print(f"       ... and {len(details) - 25} more")

    def check(self, name, problems):
        """Records one check: passes when `problems` (a list of strings) is empty."""
        if problems:
            self.fail(name, problems)
        else:
            self.ok(name)
        return not problems

    def validate(self, spec, template, resp, status="200"):
        """Validates a response body against the spec; records violations. True when valid."""
        spec_template = template
        template = f"{template} -> {status}"
        self.validated[template] += 1
        if resp.json is None:
            self._violation(template, "", "(body)", f"not JSON: {resp.json_error}", resp.url, "")
            self.invalid[template] += 1
            return False
        errors = list(spec.response_validator(spec_template, status).iter_errors(resp.json))
        for e in errors:
            generic = pointer_of("*" if isinstance(p, int) else p for p in e.absolute_path)
            schema_path = "/".join(str(p) for p in e.absolute_schema_path)
            self._violation(template, generic, schema_path, describe_error(e), resp.url,
                            pointer_of(e.absolute_path))
        if errors:
            self.invalid[template] += 1
        return not errors

    def _violation(self, template, generic, schema_path, message, url, pointer):
        key = (template, generic, schema_path, message)
        entry = self.violations.setdefault(key, [0, []])
        entry[0] += 1
        if len(entry[1]) < EXAMPLES_PER_VIOLATION:
            entry[1].append(f"{url} at {pointer or '/'}")

    def schema_summary(self):
        by_template = collections.defaultdict(list)
        for (template, generic, schema_path, message), (count, examples) in self.violations.items():
            by_template[template].append((generic, schema_path, message, count, examples))
        for template in self.validated:
            name = (f"schema: GET {template} ({self.validated[template]} responses, "
                    f"{self.invalid[template]} invalid)")
            rows = by_template.get(template, [])
            details = []
            for generic, schema_path, message, count, examples in rows:
                details.append(f"{generic or '/'}: {message}  [x{count}; schema {schema_path}]")
                details.extend(f"    e.g. {ex}" for ex in examples)
            if rows:
                self.failed += 1
                print(f"FAIL {name}: {len(rows)} distinct violations")
                for d in details:
                    print(f"       {d}")
            else:
                self.ok(name)


# ---------------------------------------------------------------------------------------------
# Helpers over model lists


def ids(models):
    return [m.get("id") for m in models]


def dupes(values):
    return sorted(v for v, n in collections.Counter(values).items() if n > 1)


def same_list(got, expected, what):
    """Problems when two id lists differ (membership first, then order)."""
    problems = []
    missing = [i for i in expected if i not in set(got)]
    extra = [i for i in got if i not in set(expected)]
    if missing:
        problems.append(f"{what}: {len(missing)} expected models missing, e.g. {missing[:8]}")
    if extra:
        problems.append(f"{what}: {len(extra)} unexpected models, e.g. {extra[:8]}")
    if dupes(got):
        problems.append(f"{what}: duplicate ids {dupes(got)[:8]}")
    if not problems and got != expected:
        first = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
        problems.append(f"{what}: same models, different order (first difference at index {first}: "
                        f"{got[first]} vs {expected[first]})")
    return problems


def price(value):
    """A pricing string as a Decimal (USD per token), or None when absent or malformed."""
    if not isinstance(value, str) or not DECIMAL.match(value):
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def per_million(model, field):
    return price(((model.get("pricing") or {}).get(field)))


def output_modalities(model):
    return (model.get("architecture") or {}).get("output_modalities") or []


def input_modalities(model):
    return (model.get("architecture") or {}).get("input_modalities") or []


def strip_variant(model_id):
    return model_id.split(":", 1)[0]


def details_ref(model):
    """The `author/slug` named by `links.details`, or None when it is not `/api/v1/models/X/endpoints`."""
    details = (model.get("links") or {}).get("details")
    m = re.fullmatch(r"/api/v1/models/(.+)/endpoints", details or "")
    return m.group(1) if m else None


def between(values, integer=False):
    """A threshold strictly between two distinct values (nearest the median), or None; so a filter's
    inclusive and exclusive readings select the same models."""
    distinct = sorted(set(v for v in values if v is not None))
    pairs = list(zip(distinct, distinct[1:]))
    pairs.sort(key=lambda p: abs(distinct.index(p[0]) - len(distinct) // 2))
    for a, b in pairs:
        if not integer:
            return (a + b) / 2
        if b - a >= 2:
            return a + (b - a) // 2
    return None


# ---------------------------------------------------------------------------------------------
# The checks


class Checker:
    def __init__(self, gw, spec, key, catalog, enabled):
        self.gw = gw
        self.spec = spec
        self.key = key
        self.catalog = catalog
        self.enabled = enabled
        self.r = Report()

    # -- fetching ----------------------------------------------------------------------------

    def list_models(self, template, path, params=None, key=None, validate=True):
        """GETs a model list; validates it; returns (response, data list or [])."""
        resp = self.gw.get(path, params, key)
        if resp.status != 200:
            self.r.fail(f"GET {resp.url} answers 200", [resp.describe()])
            return resp, []
        if validate:
            self.r.validate(self.spec, template, resp)
        data = (resp.json or {}).get("data")
        return resp, data if isinstance(data, list) else []

    def run(self):
        r = self.r
        # ---- the lists ----
        resp_all, everything = self.list_models("/models", API + "/models", {"output_modalities": "all"})
        if not everything:
            r.fail("the full model list is not empty", ["GET /models?output_modalities=all returned no models"])
            return r
        self.all = everything
        self.by_id = {m.get("id"): m for m in everything}
        resp_default, default = self.list_models("/models", API + "/models")
        self.default = default
        self.check_list_envelope(resp_all, everything, "?output_modalities=all")
        self.check_list_envelope(resp_default, default, "(no query)")
        r.check("list: ids are unique (output_modalities=all)", [f"duplicates {dupes(ids(everything))[:10]}"]
                if dupes(ids(everything)) else [])
        expected_default = [m["id"] for m in everything if "text" in output_modalities(m)]
        r.check("list: default = output_modalities=text = the text-output models of output_modalities=all",
                same_list(ids(default), expected_default, "default list"))
        _, text = self.list_models("/models", API + "/models", {"output_modalities": "text"})
        r.check("list: output_modalities=text equals the default list", same_list(ids(text), ids(default), "text"))
        r.check("list: every model of the full list is a dict with a string id",
                [f"entry {i}: {_short(m)}" for i, m in enumerate(everything)
                 if not isinstance(m, dict) or not isinstance(m.get("id"), str)])

        self.fetch_details()
        self.check_paging()
        self.check_counts()
        self.check_filters()
        self.check_sorts()
        self.check_user(default)
        self.check_embeddings()
        self.check_single_models()
        self.check_endpoints()
        self.check_live_stats()
        self.check_zdr()
        self.check_providers()
        self.check_variants_and_aliases()
        self.check_not_found()
        self.check_v1_prefix()
        if self.catalog:
            self.check_catalog()
        r.schema_summary()
        return r

    def check_list_envelope(self, resp, data, what):
        body = resp.json or {}
        problems = []
        if body.get("total_count") != len(data):
            problems.append(f"total_count {body.get('total_count')} but {len(data)} models in data")
        if (body.get("links") or {}).get("next") is not None:
            problems.append(f"links.next is {body['links']['next']!r} for an unpaged list (want null)")
        self.r.check(f"list {what}: total_count = len(data), links.next = null when unpaged", problems)

    def fetch_details(self):
        """GETs /model/{id} and /models/{id}/endpoints for every model, in parallel."""
        def one(model_id):
            p = model_path(model_id)
            return (model_id, self.gw.get(f"{API}/model/{p}"), self.gw.get(f"{API}/models/{p}/endpoints"))
        self.single = {}
        self.endpoints = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            for model_id, single, eps in pool.map(one, list(self.by_id)):
                self.single[model_id] = single
                self.endpoints[model_id] = eps

    # -- paging ------------------------------------------------------------------------------

    def check_paging(self):
        total = len(self.all)
        limit = 50 if total > 100 else max(1, total // 3)
        for query in ({"output_modalities": "all"}, {}):
            self.page_through(query, limit, self.all if query else self.default)
        # A filter that keeps some models but not a prefix of the default list: links.next must
        # keep it, or following the link pages through another list.
        authors = dict.fromkeys(m["id"].split("/")[0] for m in self.default)
        narrowing = [{"input_modalities": "image"}] + [{"model_authors": a} for a in authors]
        narrowing += [{"supported_parameters": p} for p in ("tools", "response_format", "seed", "top_k")]
        for query in narrowing:
            _, subset = self.list_models("/models", API + "/models", query, validate=False)
            if len(subset) >= 2 and ids(subset) != ids(self.default)[: len(subset)]:
                self.page_through(query, max(1, len(subset) // 2), subset)
                break
        else:
            print("note: no filter keeps a non-prefix subset of >= 2 models; filtered paging not checked")
        # The last partial page, an offset past the end, and limits at the bounds.
        _, page = self.list_models("/models", API + "/models", {"output_modalities": "all", "offset": total - 1,
                                                             "limit": 1000})
        self.r.check("paging: offset=total-1 returns the last model",
                     same_list(ids(page), ids(self.all)[-1:], "last page"))
        resp, page = self.list_models("/models", API + "/models", {"output_modalities": "all", "offset": total + 5,
                                                                "limit": 10})
        body = resp.json or {}
        self.r.check("paging: offset past the end returns data [], links.next null, total_count = total",
                     [f"got {len(page)} models, links {body.get('links')}, total_count {body.get('total_count')}"]
                     if page or (body.get("links") or {}).get("next") is not None or body.get("total_count") != total
                     else [])
        _, page = self.list_models("/models", API + "/models", {"output_modalities": "all", "limit": 1000})
        self.r.check("paging: limit=1000 alone returns the first 1000 models",
                     same_list(ids(page), ids(self.all)[:1000], "limit=1000"))
        _, page = self.list_models("/models", API + "/models", {"output_modalities": "all", "offset": 3})
        rest = ids(self.all)[3:]
        # limit omitted: everything from the offset (the spec's default limit is 500, so past 500
        # remaining models both readings are accepted).
        allowed = [rest] if len(rest) <= 500 else [rest, rest[:500]]
        self.r.check("paging: offset=3 without limit returns the models from the fourth on",
                     [] if ids(page) in allowed else same_list(ids(page), rest, "offset=3"))
        for bad in ("1001", "0", "-1", "abc"):
            resp = self.gw.get(API + "/models", {"limit": bad})
            problems = [] if resp.status == 400 else [f"status {resp.status}, want 400: {resp.text[:200]}"]
            if resp.status == 400:
                problems += self.error_envelope_problems(resp, 400)
                self.r.validate(self.spec, "/models", resp, "400")
            self.r.check(f"paging: limit={bad} is rejected with 400 in the error envelope", problems)

    def page_through(self, query, limit, expected):
        """Pages with `limit`, checking each page against the slice of the unpaged list and
        `links.next` against the next page's URL; also follows `links.next` verbatim."""
        what = f"paging (limit={limit}{', ' + urllib.parse.urlencode(query) if query else ''})"
        problems = []
        got = []
        offset = 0
        followed = []
        pages = 0
        next_url = None
        while pages < 1000:
            params = dict(query, offset=offset, limit=limit)
            resp, page = self.list_models("/models", API + "/models", params)
            if resp.status != 200:
                problems.append(f"offset {offset}: status {resp.status}")
                break
            pages += 1
            body = resp.json or {}
            want = expected[offset: offset + limit]
            if ids(page) != ids(want):
                problems.append(f"offset {offset}: page has {ids(page)[:3]}... ({len(page)}), "
                                f"unpaged slice has {ids(want)[:3]}... ({len(want)})")
            if body.get("total_count") != len(expected):
                problems.append(f"offset {offset}: total_count {body.get('total_count')}, want {len(expected)}")
            nxt = (body.get("links") or {}).get("next")
            more = offset + limit < len(expected)
            if more and not nxt:
                problems.append(f"offset {offset}: links.next is null but {len(expected) - offset - limit} "
                                f"models remain")
            if not more and nxt is not None:
                problems.append(f"offset {offset}: links.next is {nxt!r} on the last page (want null)")
            if nxt:
                parsed = urllib.parse.urlsplit(nxt)
                qs = dict(urllib.parse.parse_qsl(parsed.query))
                if parsed.path != API + "/models" or parsed.scheme or parsed.netloc:
                    problems.append(f"offset {offset}: links.next {nxt!r} is not a path under {API}/models")
                if qs.get("offset") != str(offset + limit) or qs.get("limit") != str(limit):
                    problems.append(f"offset {offset}: links.next {nxt!r} should carry offset={offset + limit}"
                                    f"&limit={limit}")
                # "URL for the next page of results": fetching it must give the next page of THIS query.
                if next_url is None:
                    next_url = nxt
            got.extend(page)
            if not page or not more:
                break
            offset += limit
        # Follow links.next verbatim from the first page.
        url = next_url
        hops = 0
        while url and hops < 1000:
            resp = self.gw.get(url)
            hops += 1
            if resp.status != 200 or not isinstance((resp.json or {}).get("data"), list):
                problems.append(f"following links.next {url!r}: {resp.describe()}")
                break
            followed.extend(resp.json["data"])
            url = (resp.json.get("links") or {}).get("next")
        if next_url:
            followed_ids = ids(expected)[:limit] + ids(followed)
            if followed_ids != ids(expected):
                problems.append(f"following links.next verbatim from the first page yields {len(followed_ids)} "
                                f"models that differ from the unpaged list ({len(expected)}): the link must keep "
                                f"the query's filters")
        if dupes(ids(got)):
            problems.append(f"duplicates across pages: {dupes(ids(got))[:8]}")
        if ids(got) != ids(expected) and not problems:
            problems.append(f"concatenated pages ({len(got)}) differ from the unpaged list ({len(expected)})")
        self.r.check(f"{what}: {pages} pages = the unpaged list, no duplicates, links.next correct", problems)

    # -- counts ------------------------------------------------------------------------------

    def count(self, params=None):
        resp = self.gw.get(API + "/models/count", params)
        if resp.status != 200:
            return None, [resp.describe()]
        self.r.validate(self.spec, "/models/count", resp)
        c = ((resp.json or {}).get("data") or {}).get("count")
        return c, []

    def check_counts(self):
        for params, expected, what in (
            (None, len(self.default), "default"),
            ({"output_modalities": "all"}, len(self.all), "output_modalities=all"),
            ({"output_modalities": "text"}, len(self.default), "output_modalities=text"),
            ({"output_modalities": "embeddings"},
             sum("embeddings" in output_modalities(m) for m in self.all), "output_modalities=embeddings"),
            ({"supported_parameters": "tools"},
             sum("tools" in (m.get("supported_parameters") or []) for m in self.default), "supported_parameters=tools"),
        ):
            c, problems = self.count(params)
            if not problems and c != expected:
                problems = [f"count {c}, want {expected} (the total_count of the same /models query)"]
            self.r.check(f"count: /models/count ({what}) = /models total_count", problems)

    # -- filters -----------------------------------------------------------------------------

    def filtered(self, params, expected, what, base=None):
        """Checks that `/models?params` returns exactly `expected` (ids, in the default order)."""
        resp, got = self.list_models("/models", API + "/models", params)
        problems = same_list(ids(got), expected, what) if resp.status == 200 else [resp.describe()]
        body = resp.json or {}
        if resp.status == 200 and body.get("total_count") != len(got):
            problems.append(f"total_count {body.get('total_count')} for {len(got)} models")
        self.r.check(f"filter: {urllib.parse.urlencode(params)} -> {len(expected)} models", problems)
        return got

    def check_filters(self):
        default, everything = self.default, self.all

        def having(models, pred):
            return [m["id"] for m in models if pred(m)]

        params = lambda m: set(m.get("supported_parameters") or [])  # noqa: E731
        self.filtered({"supported_parameters": "tools"}, having(default, lambda m: "tools" in params(m)),
                      "supported_parameters=tools")
        self.filtered({"supported_parameters": "tools,response_format"},
                      having(default, lambda m: {"tools", "response_format"} <= params(m)),
                      "supported_parameters=tools,response_format (all of them)")
        self.filtered({"input_modalities": "image"}, having(default, lambda m: "image" in input_modalities(m)),
                      "input_modalities=image")
        self.filtered({"input_modalities": "text,image"},
                      having(default, lambda m: {"text", "image"} <= set(input_modalities(m))),
                      "input_modalities=text,image (all of them)")
        for modality in ("embeddings", "image"):
            self.filtered({"output_modalities": modality},
                          having(everything, lambda m, mo=modality: mo in output_modalities(m)),
                          f"output_modalities={modality}")
        r = self.r
        r.check("filter: output_modalities=all is a superset of the default list",
                [f"default models missing from all: {sorted(set(ids(default)) - set(ids(everything)))[:8]}"]
                if set(ids(default)) - set(ids(everything)) else [])

        # q: a case-insensitive substring of the id or the name.
        for q in self.pick_queries():
            self.filtered({"q": q}, having(default, lambda m, q=q: q.lower() in m["id"].lower()
                                           or q.lower() in (m.get("name") or "").lower()), f"q={q}")

        # context: minimum context length.
        threshold = between([m.get("context_length") for m in default], integer=True)
        if threshold is not None:
            self.filtered({"context": threshold},
                          having(default, lambda m: (m.get("context_length") or 0) >= threshold), f"context={threshold}")

        # model_authors
        authors = sorted({m["id"].split("/")[0] for m in default})
        picked = authors[:1] + authors[len(authors) // 2: len(authors) // 2 + 1]
        self.filtered({"model_authors": ",".join(picked)},
                      having(default, lambda m: m["id"].split("/")[0] in picked), f"model_authors={','.join(picked)}")

        # Prices in USD per million tokens, on the model's pricing. Thresholds fall strictly between
        # two listed prices, so inclusive and exclusive bounds agree.
        for field, lo, hi in (("prompt", "min_price", "max_price"),
                              ("completion", "min_output_price", "max_output_price")):
            t = between([per_million(m, field) for m in default])
            if t is None:
                continue
            t_m = t * 1_000_000
            self.filtered({lo: str(t_m)}, having(default, lambda m, f=field: (per_million(m, f) or 0) * 1_000_000
                                                  >= t_m), f"{lo}={t_m}")
            self.filtered({hi: str(t_m)}, having(default, lambda m, f=field: (per_million(m, f) or 0) * 1_000_000
                                                  <= t_m), f"{hi}={t_m}")

        # category: accepted, no effect (no category data).
        self.filtered({"category": "programming"}, ids(default), "category=programming (accepted, no effect)")

        # providers: every model with an endpoint of that provider (per /models/{id}/endpoints).
        serving = collections.defaultdict(set)
        for model_id, resp in self.endpoints.items():
            for ep in self.endpoint_list(resp):
                serving[(ep.get("tag") or "").split("/")[0]].add(model_id)
        slugs = sorted(serving, key=lambda s: -len(serving[s]))
        chosen = (["groq"] if "groq" in serving else []) + [s for s in slugs if s != "groq"][:2]
        for slug in chosen:
            self.filtered({"providers": slug}, having(default, lambda m, s=slug: m["id"] in serving[s]),
                          f"providers={slug}")
        if len(chosen) >= 2:
            two = chosen[:2]
            self.filtered({"providers": ",".join(two)},
                          having(default, lambda m: any(m["id"] in serving[s] for s in two)),
                          f"providers={','.join(two)} (any of them)")

        # zdr=true: models with an endpoint listed by /endpoints/zdr.
        zdr = self.gw.get(API + "/endpoints/zdr")
        zdr_models = set()
        for ep in ((zdr.json or {}).get("data") or []) if zdr.status == 200 else []:
            zdr_models |= self.models_of_endpoint(ep)
        self.filtered({"zdr": "true"}, having(default, lambda m: m["id"] in zdr_models), "zdr=true")

    def pick_queries(self):
        queries = []
        for m in self.default[:: max(1, len(self.default) // 3)][:3]:
            slug = m["id"].split("/")[-1]
            word = re.split(r"[-:.]", slug)[0]
            if len(word) >= 3:
                queries.append(word.upper())  # case-insensitive
        name = next((m.get("name") for m in self.default if " " in (m.get("name") or "")), None)
        if name:
            queries.append(name.split(" ")[-1].lower())  # part of a name
        queries.append("no-such-model-anywhere")
        return list(dict.fromkeys(queries))

    # -- sorting -----------------------------------------------------------------------------

    def check_sorts(self):
        def avg_price(m):
            p, c = per_million(m, "prompt"), per_million(m, "completion")
            return None if p is None or c is None else (p + c) / 2

        orders = {
            "newest": (lambda m: m.get("created"), True),
            "pricing-low-to-high": (avg_price, False),
            "pricing-high-to-low": (avg_price, True),
            "context-high-to-low": (lambda m: m.get("context_length"), True),
        }
        for sort, (key, descending) in orders.items():
            resp, got = self.list_models("/models", API + "/models", {"sort": sort})
            problems = [] if resp.status == 200 else [resp.describe()]
            if set(ids(got)) != set(ids(self.default)) or len(got) != len(self.default):
                problems.append(f"sort={sort} returns {len(got)} models, not the {len(self.default)} of the default list")
            keys = [key(m) for m in got]
            for i in range(len(keys) - 1):
                a, b = keys[i], keys[i + 1]
                if a is None or b is None:
                    continue
                if (a < b) if descending else (a > b):
                    problems.append(f"sort={sort}: {got[i]['id']} ({_num(a)}) before {got[i + 1]['id']} ({_num(b)})"
                                    + (" (key: the mean of prompt and completion price, USD/M tokens)"
                                       if sort.startswith("pricing") else ""))
                    break
            self.r.check(f"sort={sort}: ordered by {'descending' if descending else 'ascending'} key", problems)
        for sort in ("most-popular", "throughput-high-to-low", "something-unknown"):
            resp, got = self.list_models("/models", API + "/models", {"sort": sort})
            self.r.check(f"sort={sort}: accepted, same models as the default list",
                         same_list(sorted(ids(got)), sorted(ids(self.default)), f"sort={sort}")
                         if resp.status == 200 else [resp.describe()])

    # -- /models/user, /embeddings/models ----------------------------------------------------

    def check_user(self, default):
        resp = self.gw.get(API + "/models/user")
        problems = [] if resp.status == 401 else [f"status {resp.status} without a key, want 401"]
        if resp.status == 401:
            problems += self.error_envelope_problems(resp, 401)
            self.r.validate(self.spec, "/models/user", resp, "401")
        self.r.check("/models/user without a key: 401 in the error envelope", problems)
        if not self.key:
            self.r.fail("/models/user with a key", ["no key: pass --api-key or set SWITCHYARD_API_KEY"])
            return
        resp, got = self.list_models("/models/user", API + "/models/user", key=self.key)
        problems = same_list(ids(got), ids(default), "/models/user") if resp.status == 200 else []
        body = resp.json or {}
        if resp.status == 200 and body.get("total_count") != len(got):
            problems.append(f"total_count {body.get('total_count')} for {len(got)} models")
        self.r.check("/models/user with a key: the default list (no per-user preferences)", problems)
        resp, page = self.list_models("/models/user", API + "/models/user", {"offset": 1, "limit": 2}, key=self.key)
        self.r.check("/models/user pages with offset/limit",
                     same_list(ids(page), ids(default)[1:3], "/models/user?offset=1&limit=2"))

    def check_embeddings(self):
        resp, got = self.list_models("/embeddings/models", API + "/embeddings/models")
        expected = [m["id"] for m in self.all if "embeddings" in output_modalities(m)]
        problems = same_list(ids(got), expected, "/embeddings/models") if resp.status == 200 else []
        body = resp.json or {}
        if resp.status == 200 and body.get("total_count") != len(got):
            problems.append(f"total_count {body.get('total_count')} for {len(got)} models")
        self.r.check(f"/embeddings/models: exactly the {len(expected)} embedding models of the full list", problems)
        if len(expected) > 1:
            _, page = self.list_models("/embeddings/models", API + "/embeddings/models", {"offset": 1, "limit": 1})
            self.r.check("/embeddings/models pages with offset/limit",
                         same_list(ids(page), expected[1:2], "/embeddings/models?offset=1&limit=1"))

    # -- single models -----------------------------------------------------------------------

    def check_single_models(self):
        problems = []
        for model_id, resp in self.single.items():
            if resp.status != 200:
                problems.append(resp.describe())
                continue
            self.r.validate(self.spec, "/model/{author}/{slug}", resp)
            data = (resp.json or {}).get("data")
            listed = self.by_id[model_id]
            if data != listed:
                if not isinstance(data, dict):
                    problems.append(f"/model/{model_id}: data is {_short(data)}")
                    continue
                differ = sorted(k for k in set(data) | set(listed) if data.get(k) != listed.get(k))
                problems.append(f"/model/{model_id}: differs from its /models entry in {differ}")
        self.r.check(f"/model/{{id}} for all {len(self.single)} models: 200, equal to the /models entry", problems)

        problems = []
        for m in self.all:
            ref = details_ref(m)
            if ref is None:
                problems.append(f"{m.get('id')}: links.details {_short((m.get('links') or {}).get('details'))} "
                                f"is not /api/v1/models/<id or canonical_slug>/endpoints")
            elif ref not in (m.get("id"), m.get("canonical_slug")):
                problems.append(f"{m.get('id')}: links.details names {ref}, neither the id nor the canonical slug")
        self.r.check("models: links.details = /api/v1/models/<id or canonical_slug>/endpoints", problems)

        problems = []
        for m in self.all:
            for where, pricing in [(m["id"], m.get("pricing") or {})]:
                problems += self.pricing_problems(where, pricing)
        self.r.check("models: every price is a plain non-negative decimal string", problems)

        problems = []
        for m in self.all:
            target = m.get("alias_target")
            if target is not None:
                t = self.by_id.get(target.get("slug"))
                if t is None:
                    problems.append(f"{m['id']}: alias_target.slug {target.get('slug')!r} is not a listed model")
                elif t.get("name") != target.get("name"):
                    problems.append(f"{m['id']}: alias_target.name {target.get('name')!r} != {t.get('name')!r}")
        self.r.check("models: alias_target names a listed model (slug = its id, same name)", problems)

    @staticmethod
    def pricing_problems(where, pricing):
        problems = []
        for k, v in pricing.items():
            if k in ("discount", "overrides"):
                continue
            if price(v) is None or price(v) < 0:
                problems.append(f"{where}: pricing.{k} = {v!r}")
        return problems

    # -- live statistics ---------------------------------------------------------------------

    def check_live_stats(self):
        """Sends traffic to one model, then checks that the endpoint which served it reports uptime,
        latency and throughput, and that the response still validates against the schema."""
        r = self.r
        if not self.key:
            r.fail("live stats: an inference key is needed (--api-key)", [])
            return
        candidates = [m for m, resp in self.endpoints.items() if self.endpoint_list(resp)
                      and not m.endswith(":free") and "text" in ((self.by_id[m].get("architecture") or {})
                                                                  .get("output_modalities") or [])]
        if not candidates:
            r.fail("live stats: no model with endpoints to send traffic to", [])
            return
        model_id = sorted(candidates)[0]
        served, problems = set(), []
        for stream in (False, True, False):
            body = {"model": model_id, "stream": stream, "max_tokens": 16,
                    "messages": [{"role": "user", "content": "Say something for the stats."}]}
            resp = self.gw.post_json(API + "/chat/completions", body, self.key)
            if resp.status != 200:
                problems.append(f"chat {model_id} stream={stream}: {resp.describe()}")
                continue
            if stream:
                chunks = [json.loads(line[5:]) for line in resp.text.splitlines()
                          if line.startswith("data:") and line[5:].strip() != "[DONE]"]
                served |= {c.get("provider") for c in chunks if c.get("provider")}
            elif resp.json:
                served.add(resp.json.get("provider"))
        resp = self.gw.get(f"{API}/models/{model_path(model_id)}/endpoints")
        self.r.validate(self.spec, "/models/{author}/{slug}/endpoints", resp)
        eps = [ep for ep in self.endpoint_list(resp) if ep.get("provider_name") in served]
        if not eps:
            problems.append(f"{model_id}: no endpoint of the serving providers {sorted(served)} is listed")
        for ep in eps:
            where = f"{model_id} {ep.get('tag')}"
            problems += stats_problems(where, ep)
            for f in ("uptime_last_5m", "uptime_last_30m", "uptime_last_1d", "latency_last_30m",
                      "throughput_last_30m"):
                if ep.get(f) is None:
                    problems.append(f"{where}: {f} is null after it served traffic")
        r.check(f"live stats: after 3 requests to {model_id}, its serving endpoint reports uptime, latency and "
                f"throughput", problems)

    # -- endpoints ---------------------------------------------------------------------------

    @staticmethod
    def endpoint_list(resp):
        if resp.status != 200:
            return []
        eps = ((resp.json or {}).get("data") or {}).get("endpoints")
        return eps if isinstance(eps, list) else []

    def models_of_endpoint(self, ep):
        """The listed model ids a PublicEndpoint's model_id names: by id or canonical slug, else
        (a variant's endpoint) by the id without its `:variant` suffix."""
        if not hasattr(self, "_by_name"):
            self._by_name = collections.defaultdict(set)
            self._by_base = collections.defaultdict(set)
            for m in self.all:
                self._by_name[m["id"]].add(m["id"])
                self._by_name[m.get("canonical_slug")].add(m["id"])
                self._by_base[strip_variant(m["id"])].add(m["id"])
        mid = ep.get("model_id") or ""
        return set(self._by_name.get(mid) or self._by_base.get(strip_variant(mid)) or ())

    def check_endpoints(self):
        problems, stats, shape, pricing = [], [], [], []
        for model_id, resp in self.endpoints.items():
            model = self.by_id[model_id]
            if resp.status != 200:
                problems.append(resp.describe())
                continue
            self.r.validate(self.spec, "/models/{author}/{slug}/endpoints", resp)
            data = (resp.json or {}).get("data") or {}
            for field in ("id", "name", "created", "description", "architecture"):
                if data.get(field) != model.get(field):
                    shape.append(f"{model_id}: endpoints data.{field} {_short(data.get(field), 60)} != the model's "
                                 f"{_short(model.get(field), 60)}")
            eps = self.endpoint_list(resp)
            if not eps:
                shape.append(f"{model_id}: listed model has no endpoints")
            tags = [ep.get("tag") for ep in eps]
            if dupes(tags):
                shape.append(f"{model_id}: duplicate endpoint tags {dupes(tags)}")
            for ep in eps:
                if model_id not in self.models_of_endpoint(ep):
                    shape.append(f"{model_id}: endpoint {ep.get('tag')} model_id {ep.get('model_id')!r} names "
                                 f"another model")
                if ep.get("model_name") != model.get("name"):
                    shape.append(f"{model_id}: endpoint {ep.get('tag')} model_name {ep.get('model_name')!r} != "
                                 f"{model.get('name')!r}")
                stats += stats_problems(f"{model_id} {ep.get('tag')}", ep)
                pricing += self.pricing_problems(f"{model_id} {ep.get('tag')}", ep.get("pricing") or {})
        r = self.r
        r.check(f"/models/{{id}}/endpoints for all {len(self.endpoints)} models: 200", problems)
        r.check("endpoints: id, name, created, description, architecture equal the model's; endpoints non-empty; "
                "model_id/model_name name the model", shape)
        r.check("endpoints: live stats are null or well-formed (uptime 0-100, ordered non-negative percentiles)",
                stats)
        r.check("endpoints: every price is a plain non-negative decimal string", pricing)

        # links.details, fetched as given (canonical slug or id), answers like /models/{id}/endpoints.
        # A variant (`x:free`) shares its base model's canonical slug, so its link answers for the
        # base model, as OpenRouter's does.
        problems = []
        for m in self.all:
            ref = details_ref(m)
            if ref is None or ref == m["id"]:
                continue
            resp = self.gw.get(m["links"]["details"])
            if resp.status != 200:
                problems.append(f"{m['id']}: {resp.describe()}")
                continue
            self.r.validate(self.spec, "/models/{author}/{slug}/endpoints", resp)
            got = ((resp.json or {}).get("data") or {}).get("id")
            if got not in (m["id"], strip_variant(m["id"])):
                problems.append(f"{m['id']}: {m['links']['details']} answers for {got!r}")
            elif got in self.endpoints and resp.json != self.endpoints[got].json:
                problems.append(f"{m['id']}: {m['links']['details']} differs from /models/{got}/endpoints")
        r.check("endpoints: links.details (canonical slug) answers like /models/{id}/endpoints (a variant's: like "
                "its base model's)", problems)

    def check_zdr(self):
        resp = self.gw.get(API + "/endpoints/zdr")
        if resp.status != 200:
            self.r.fail("/endpoints/zdr answers 200", [resp.describe()])
            return
        self.r.validate(self.spec, "/endpoints/zdr", resp)
        known = {}
        for model_id, eresp in self.endpoints.items():
            for ep in self.endpoint_list(eresp):
                known[(model_id, ep.get("tag"))] = ep
        problems = []
        zdr = (resp.json or {}).get("data") or []
        for ep in zdr:
            matches = [known[(mid, ep.get("tag"))] for mid in self.models_of_endpoint(ep) if (mid, ep.get("tag")) in known]
            if not matches:
                problems.append(f"zdr endpoint {ep.get('model_id')} {ep.get('tag')} is not among its model's endpoints")
            elif all(m != ep for m in matches):
                problems.append(f"zdr endpoint {ep.get('model_id')} {ep.get('tag')} differs from its entry in "
                                f"/models/{{id}}/endpoints")
        keys = [(ep.get("model_id"), ep.get("tag")) for ep in zdr]
        if dupes(keys):
            problems.append(f"duplicates: {dupes(keys)[:5]}")
        self.zdr = zdr
        self.r.check(f"/endpoints/zdr: {len(zdr)} endpoints, each one of a listed model's endpoints", problems)

    def check_providers(self):
        resp = self.gw.get(API + "/providers")
        if resp.status != 200:
            self.r.fail("/providers answers 200", [resp.describe()])
            return
        self.r.validate(self.spec, "/providers", resp)
        providers = (resp.json or {}).get("data") or []
        by_slug = {p.get("slug"): p for p in providers}
        problems = [f"duplicate slugs {dupes([p.get('slug') for p in providers])}"] if dupes(
            [p.get("slug") for p in providers]) else []
        for model_id, eresp in self.endpoints.items():
            for ep in self.endpoint_list(eresp):
                slug = (ep.get("tag") or "").split("/")[0]
                p = by_slug.get(slug)
                if p is None:
                    problems.append(f"{model_id}: endpoint tag {ep.get('tag')!r}: provider {slug!r} not in /providers")
                elif p.get("name") != ep.get("provider_name"):
                    problems.append(f"{model_id} {ep.get('tag')}: provider_name {ep.get('provider_name')!r} != "
                                    f"/providers name {p.get('name')!r}")
        self.providers = providers
        self.r.check(f"/providers: {len(providers)} providers; every endpoint's tag prefix is a provider slug with "
                     f"the same name", sorted(set(problems)))

    # -- variants, aliases, 404 --------------------------------------------------------------

    def check_variants_and_aliases(self):
        base = next((m for m in self.default if ":" not in m["id"]), None)
        if base is None:
            return
        for variant in (":free", ":nitro", ":floor"):
            resp = self.gw.get(f"{API}/model/{model_path(base['id'] + variant)}")
            problems = [] if resp.status == 200 else [resp.describe()]
            if resp.status == 200:
                self.r.validate(self.spec, "/model/{author}/{slug}", resp)
                got = ((resp.json or {}).get("data") or {}).get("id", "")
                if strip_variant(got) != base["id"]:
                    problems.append(f"data.id {got!r} is not {base['id']!r} (with or without the suffix)")
            self.r.check(f"/model/{base['id']}{variant}: variant suffix accepted", problems)

        aliases = dict(self.catalog["aliases"]) if self.catalog else {}
        for m in self.all:  # alias rows in the list itself
            if m.get("alias_target"):
                aliases.setdefault(m["id"], m["alias_target"].get("slug"))
        if not aliases:
            print("note: no `~author/family-latest` aliases in the catalog or the list; alias look-ups not checked")
        for alias, target in sorted(aliases.items()):
            resp = self.gw.get(f"{API}/model/{model_path(alias)}")
            visible = target in self.by_id
            if not visible:
                self.r.check(f"/model/{alias}: target {target} is hidden, so 404",
                             [] if resp.status == 404 else [resp.describe()])
                continue
            problems = [] if resp.status == 200 else [resp.describe()]
            if resp.status == 200:
                self.r.validate(self.spec, "/model/{author}/{slug}", resp)
                data = (resp.json or {}).get("data") or {}
                resolved = data.get("id") == target or (
                    data.get("id") == alias and (data.get("alias_target") or {}).get("slug") == target)
                if not resolved:
                    problems.append(f"data.id {data.get('id')!r}, alias_target {data.get('alias_target')}; "
                                    f"want the target {target!r} (or the alias row pointing at it)")
            self.r.check(f"/model/{alias}: alias resolves to {target}", problems)

    def error_envelope_problems(self, resp, status):
        body = resp.json
        if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
            return [f"body is not an error envelope: {resp.text[:200]}"]
        err = body["error"]
        problems = []
        if err.get("code") != status:
            problems.append(f"error.code {err.get('code')!r}, want {status}")
        if not isinstance(err.get("message"), str) or not err.get("message"):
            problems.append(f"error.message {err.get('message')!r} is not a non-empty string")
        ctype = resp.headers.get("content-type", "")
        if "application/json" not in ctype:
            problems.append(f"content-type {ctype!r}")
        return problems

    def check_not_found(self):
        cases = [
            ("/model/{author}/{slug}", f"{API}/model/acme/no-such-model"),
            ("/model/{author}/{slug}", f"{API}/model/acme/no-such-model:free"),
            ("/model/{author}/{slug}", f"{API}/model/~acme/no-such-latest"),
            ("/models/{author}/{slug}/endpoints", f"{API}/models/acme/no-such-model/endpoints"),
        ]
        for template, path in cases:
            resp = self.gw.get(path)
            problems = [] if resp.status == 404 else [f"status {resp.status}, want 404: {resp.text[:200]}"]
            if resp.status == 404:
                problems += self.error_envelope_problems(resp, 404)
                self.r.validate(self.spec, template, resp, "404")
            self.r.check(f"404 envelope for {path}", problems)

    def check_v1_prefix(self):
        problems = []
        sample = self.default[0]["id"] if self.default else None
        for path in ["/models", "/models/count", "/providers", "/endpoints/zdr", "/embeddings/models"] + (
                [f"/model/{model_path(sample)}", f"/models/{model_path(sample)}/endpoints"] if sample else []):
            a, b = self.gw.get(API + path), self.gw.get("/v1" + path)
            if (a.status, a.json) != (b.status, b.json):
                problems.append(f"/v1{path} ({b.status}) differs from {API}{path} ({a.status})")
        a, b = self.gw.get(API + "/models/user", key=self.key), self.gw.get("/v1/models/user", key=self.key)
        if (a.status, a.json) != (b.status, b.json):
            problems.append(f"/v1/models/user ({b.status}) differs from {API}/models/user ({a.status})")
        self.r.check("/v1/... answers like /api/v1/...", problems)

    # -- the catalog -------------------------------------------------------------------------

    def check_catalog(self):
        cat, enabled = self.catalog, self.enabled
        served = collections.defaultdict(list)
        for ep in cat["endpoints"]:
            if ep["provider"] in enabled:
                served[ep["model"]].append(ep)
        expected = [m["id"] for m in cat["models"] if served.get(m["id"])]
        hidden = [m["id"] for m in cat["models"] if not served.get(m["id"])]
        r = self.r
        r.check(f"catalog: the full list holds exactly the {len(expected)} catalog models served by an enabled "
                f"provider ({len(hidden)} hidden)", same_list(sorted(ids(self.all)), sorted(expected), "visible models"))
        problems = []
        for model_id in hidden[:20]:
            for path in (f"{API}/model/{model_path(model_id)}", f"{API}/models/{model_path(model_id)}/endpoints"):
                resp = self.gw.get(path)
                if resp.status != 404:
                    problems.append(f"{path}: {resp.status}, want 404 (no enabled provider)")
        r.check(f"catalog: hidden models answer 404 ({min(20, len(hidden))} tried)", problems)

        problems = []
        for model_id, want in served.items():
            if model_id not in self.endpoints:
                continue
            got = {ep.get("tag"): ep for ep in self.endpoint_list(self.endpoints[model_id])}
            want_tags = sorted(ep["tag"] for ep in want)
            if sorted(got) != want_tags:
                problems.append(f"{model_id}: endpoint tags {sorted(got)}, catalog (enabled) {want_tags}")
                continue
            for ep in want:
                g = got[ep["tag"]]
                for field in ("prompt", "completion", "request", "image", "web_search", "internal_reasoning",
                              "input_cache_read", "input_cache_write"):
                    cv = (ep.get("pricing") or {}).get(field)
                    gv = (g.get("pricing") or {}).get(field)
                    if cv is None and gv in (None, "0"):
                        continue
                    if price(gv) is None or cv is None or price(gv) != Decimal(str(cv)):
                        problems.append(f"{model_id} {ep['tag']}: pricing.{field} {gv!r}, catalog {cv!r}")
                if g.get("context_length") != ep.get("context_length"):
                    problems.append(f"{model_id} {ep['tag']}: context_length {g.get('context_length')}, catalog "
                                    f"{ep.get('context_length')}")
                if g.get("max_completion_tokens") != ep.get("max_completion_tokens"):
                    problems.append(f"{model_id} {ep['tag']}: max_completion_tokens {g.get('max_completion_tokens')}"
                                    f", catalog {ep.get('max_completion_tokens')}")
                if g.get("quantization") != ep.get("quantization"):
                    problems.append(f"{model_id} {ep['tag']}: quantization {g.get('quantization')!r}, catalog "
                                    f"{ep.get('quantization')!r}")
                if sorted(g.get("supported_parameters") or []) != sorted(ep.get("supported_parameters") or []):
                    problems.append(f"{model_id} {ep['tag']}: supported_parameters differ from the catalog")
        r.check("catalog: each visible model's endpoints are its enabled catalog endpoints, with their prices, "
                "context, max tokens, quantization and parameters", problems)

        providers = {p["slug"]: p for p in cat["providers"]}
        want_zdr = sorted((ep["model"], ep["tag"]) for eps in served.values() for ep in eps
                          if (providers.get(ep["provider"], {}).get("data_policy") or {}).get("zdr"))
        got_zdr = []
        for ep in getattr(self, "zdr", []):
            for mid in self.models_of_endpoint(ep):
                got_zdr.append((mid, ep.get("tag")))
        got_zdr = sorted(set(got_zdr))
        missing = sorted(set(want_zdr) - set(got_zdr))
        extra = sorted(set(got_zdr) - set(want_zdr))
        r.check(f"catalog: /endpoints/zdr = the {len(want_zdr)} enabled endpoints of providers with data_policy.zdr",
                ([f"missing {missing[:8]}"] if missing else []) + ([f"unexpected {extra[:8]}"] if extra else []))

        problems = []
        for p in getattr(self, "providers", []):
            c = providers.get(p.get("slug"))
            if c is None:
                problems.append(f"/providers lists {p.get('slug')!r}, not a catalog provider")
                continue
            for field in ("name", "privacy_policy_url", "terms_of_service_url", "status_page_url", "headquarters"):
                if p.get(field) != c.get(field):
                    problems.append(f"{p['slug']}: {field} {p.get(field)!r}, catalog {c.get(field)!r}")
            if (p.get("datacenters") or []) != (c.get("datacenters") or []):
                problems.append(f"{p['slug']}: datacenters {p.get('datacenters')!r}, catalog {c.get('datacenters')!r}")
        listed = {p.get("slug") for p in getattr(self, "providers", [])}
        serving = {ep["provider"] for eps in served.values() for ep in eps}
        if serving - listed:
            problems.append(f"enabled providers serving models but missing from /providers: {sorted(serving - listed)}")
        r.check("catalog: /providers entries match the catalog and include every enabled provider in use", problems)


def load_catalog(directory):
    """The catalog's three documents, or None (with a note) when they are not in the expected format."""
    try:
        with open(os.path.join(directory, "providers.json"), encoding="utf-8") as f:
            providers = json.load(f)["providers"]
        with open(os.path.join(directory, "models.json"), encoding="utf-8") as f:
            models_doc = json.load(f)
        with open(os.path.join(directory, "endpoints.json"), encoding="utf-8") as f:
            endpoints = json.load(f)["endpoints"]
        return {"providers": providers, "models": models_doc["models"],
                "aliases": models_doc.get("aliases") or {}, "endpoints": endpoints}
    except (OSError, KeyError, ValueError) as e:
        print(f"note: catalog at {directory} not readable ({e}); catalog checks skipped")
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("gateway")
    ap.add_argument("--api-key", default=os.environ.get("SWITCHYARD_API_KEY"))
    ap.add_argument("--spec", default=DEFAULT_SPEC)
    ap.add_argument("--catalog", help="catalog directory (providers.json, models.json, endpoints.json)")
    ap.add_argument("--enabled-providers", default="", help="comma list of the gateway's enabled provider slugs")
    args = ap.parse_args(argv)
    if not os.path.exists(args.spec):
        print(f"FAIL the OpenAPI document is missing: {os.path.abspath(args.spec)}")
        print("0 passed, 1 failed")
        return 1
    catalog = load_catalog(args.catalog) if args.catalog else None
    if catalog is not None and not args.enabled_providers:
        print("note: --catalog without --enabled-providers; catalog checks skipped")
        catalog = None
    spec = Spec(args.spec)
    checker = Checker(Gateway(args.gateway), spec, args.api_key, catalog,
                      {s for s in args.enabled_providers.split(",") if s})
    report = checker.run()
    print(f"{report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
