"""Compare two recordings of ``recorder.py``: without our middleware and with it.

Each recording maps ``nodeid#index`` to one response (status, headers, cookies, body, SQL).
The documented differences are taken out first, and counted:

* ``X-Trace-Id`` and ``X-Feedback-Token`` present with us and absent without (their values
  are per request); an ``X-Trace-Id`` the app set itself must come through unchanged;
* ``Access-Control-Expose-Headers`` on a CORS response (one with
  ``Access-Control-Allow-Origin``): the app's names plus ours, nothing else.

Everything else must be equal. Values that differ from run to run whatever the middleware
does (session keys, CSRF tokens, timestamps, random keys) are masked in both recordings
before they are compared; see :data:`VOLATILE`.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

OURS = ("x-trace-id", "x-feedback-token")
EXPOSE = "access-control-expose-headers"
EXAMPLES = 5

# run-to-run values: masked in both recordings before comparing
VOLATILE: tuple[tuple[re.Pattern[str], str], ...] = (
    # django.core.signing: compressed payloads (session data holds the random password
    # salt's hash), then value:timestamp:signature (signed cookies, session data)
    (re.compile(r"\.eJ[A-Za-z0-9_-]+"), ".<compressed>"),
    (re.compile(r":[0-9A-Za-z]{4,8}:[A-Za-z0-9_-]{27,86}(?![A-Za-z0-9_-])"), ":<signed>"),
    # ISO and SQL timestamps, HTTP dates
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?"), "<time>"),
    (re.compile(r"[A-Z][a-z]{2}, \d\d[ -][A-Z][a-z]{2}[ -]\d{4} \d\d:\d\d:\d\d GMT"), "<date>"),
    # random tokens: 32+ characters of letters and digits with both in them
    (re.compile(r"\b(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{32,}\b"), "<random>"),
    # savepoint names carry the thread id; temporary files their random names
    (re.compile(r'"s\d+_x\d+"'), '"<savepoint>"'),
    (re.compile(r"/tmp/tmp[A-Za-z0-9_]+"), "/tmp/<tmp>"),
    # password hashes (random salt)
    (re.compile(r"(md5|pbkdf2_sha256|argon2|bcrypt_sha256)\$[^'\" ,)]+"), "<hash>"),
)


def mask(value: Any) -> Any:
    """``value`` with run-to-run values replaced by placeholders, recursively."""
    if isinstance(value, str):
        for pattern, placeholder in VOLATILE:
            value = pattern.sub(placeholder, value)
        return value
    if isinstance(value, list):
        return [mask(item) for item in value]
    if isinstance(value, dict):
        return {key: mask(item) for key, item in value.items()}
    return value


def _headers(record: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in record.get("headers", []):
        found.setdefault(name.lower(), []).append(value)
    return found


def _names(values: list[str] | None) -> list[str]:
    return [part.strip().lower() for value in values or [] for part in value.split(",")
            if part.strip()]


def compare_one(without: dict[str, Any], with_: dict[str, Any]) -> tuple[list[str], list[str]]:
    """``(documented, undocumented)`` differences between two records of one request."""
    documented: list[str] = []
    undocumented: list[str] = []
    if "recorder_error" in without or "recorder_error" in with_:
        undocumented.append("recorder error: "
                            f"{without.get('recorder_error')} / {with_.get('recorder_error')}")
        return documented, undocumented
    if without.get("status") != with_.get("status"):
        undocumented.append(f"status {without.get('status')} -> {with_.get('status')}")
    before, after = _headers(without), _headers(with_)
    for name in OURS:
        if name in after and name not in before:
            documented.append(f"{name} added")
        elif name in before and before[name] != after.get(name):
            undocumented.append(f"header {name}: the app's {before[name]} -> {after.get(name)}")
        before.pop(name, None)
        after.pop(name, None)
    if before.get(EXPOSE) != after.get(EXPOSE):
        cors = "access-control-allow-origin" in after
        old, new = _names(before.get(EXPOSE)), _names(after.get(EXPOSE))
        wanted = old if "*" in old else old + [name for name in OURS if name not in old]
        if cors and sorted(new) == sorted(wanted):
            documented.append("access-control-expose-headers names ours")
        else:
            undocumented.append(f"header {EXPOSE}: {before.get(EXPOSE)} -> {after.get(EXPOSE)}"
                                + ("" if cors else " (not a CORS response)"))
        before.pop(EXPOSE, None)
        after.pop(EXPOSE, None)
    before, after = mask(before), mask(after)
    for name in sorted(before.keys() | after.keys()):
        if before.get(name) != after.get(name):
            undocumented.append(f"header {name}: {before.get(name)} -> {after.get(name)}")
    cookies_before, cookies_after = mask(without.get("cookies")), mask(with_.get("cookies"))
    if cookies_before != cookies_after:
        undocumented.append(f"cookies: {cookies_before} -> {cookies_after}")
    body_before, body_after = without.get("body", {}), with_.get("body", {})
    if body_before.get("sha256") != body_after.get("sha256") and (
            mask(body_before.get("preview")) != mask(body_after.get("preview"))
            or body_before.get("length") != body_after.get("length")):
        undocumented.append(f"body: {body_before.get('length')} bytes "
                            f"{body_before.get('preview', '')[:80]!r} -> "
                            f"{body_after.get('length')} bytes "
                            f"{body_after.get('preview', '')[:80]!r}")
    queries_before = mask(without.get("queries", []))
    queries_after = mask(with_.get("queries", []))
    if queries_before != queries_after:
        undocumented.append(_query_difference(queries_before, queries_after))
    return documented, undocumented


def _query_difference(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> str:
    text_before = [f"{query['db']}: {query['sql']} {query['params']}" for query in before]
    text_after = [f"{query['db']}: {query['sql']} {query['params']}" for query in after]
    extra = [line for line in text_after if line not in text_before]
    missing = [line for line in text_before if line not in text_after]
    parts = [f"SQL: {len(before)} -> {len(after)} statements"]
    if extra:
        parts.append(f"added {extra[0][:200]!r}" + (f" (+{len(extra) - 1})" if len(extra) > 1
                                                    else ""))
    if missing:
        parts.append(f"gone {missing[0][:200]!r}" + (f" (+{len(missing) - 1})"
                                                     if len(missing) > 1 else ""))
    if not extra and not missing:
        parts.append("same statements, other order or parameters")
    return "; ".join(parts)


def _kind(difference: str) -> str:
    """A difference's group: ``status``, ``header <name>``, ``cookies``, ``body``, ``SQL``."""
    if difference.startswith("header "):
        return difference.split(":", 1)[0]
    return difference.split(" ", 1)[0].rstrip(":")


def compare_records(without: dict[str, Any], with_: dict[str, Any]) -> dict[str, Any]:
    """The comparison of two recordings, as a JSON-ready dict."""
    documented: Counter[str] = Counter()
    undocumented: dict[str, list[str]] = {}
    identical = 0
    for key in sorted(without.keys() | with_.keys()):
        if key not in with_:
            undocumented[key] = ["request made only without our middleware"]
            continue
        if key not in without:
            undocumented[key] = ["request made only with our middleware"]
            continue
        found, problems = compare_one(without[key], with_[key])
        documented.update(found)
        if problems:
            undocumented[key] = problems
        elif not found:
            identical += 1
    kinds: Counter[str] = Counter(_kind(item) for items in undocumented.values()
                                  for item in items)
    return {
        "requests_without": len(without),
        "requests_with": len(with_),
        "identical": identical,
        "documented": dict(documented),
        "undocumented": undocumented,
        "undocumented_kinds": dict(kinds),
    }


def summarize(result: dict[str, Any]) -> list[str]:
    """A few lines on a comparison: counts, and examples of each kind of difference."""
    lines = [
        f"requests: {result['requests_without']} without, {result['requests_with']} with; "
        f"{result['identical']} identical, "
        f"{len(result['undocumented'])} with undocumented differences",
        "documented differences: " + (", ".join(
            f"{name} ({count})" for name, count in sorted(result["documented"].items()))
            or "none"),
    ]
    if not result["undocumented"]:
        return lines
    lines.append("undocumented differences by kind: " + ", ".join(
        f"{kind} ({count})" for kind, count in sorted(result["undocumented_kinds"].items())))
    for kind in sorted(result["undocumented_kinds"]):
        shown = 0
        for key, problems in result["undocumented"].items():
            for problem in problems:
                if _kind(problem) == kind and shown < EXAMPLES:
                    lines.append(f"  {key}: {problem[:300]}")
                    shown += 1
    return lines
