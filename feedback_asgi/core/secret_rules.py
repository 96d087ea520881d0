"""What counts as a secret: key names, value patterns, and a quick check for both.

Pure data and matching primitives for :mod:`feedback_asgi.capture.redaction`.

* Key names are compared after :func:`normalise_name` (case folded; ``-``, ``_``, ``+`` and
  spaces removed). A name is a secret's when it contains one of :data:`SECRET_NAME_PARTS`
  (some with what may not follow, so ``max_tokens`` and ``author`` stay) or is one of
  :data:`SECRET_NAMES`.
* Values are searched with :data:`VALUE_PATTERNS` (bearer and basic credentials, JWTs,
  AWS access key ids, PEM private keys, card numbers passing Luhn, passwords in URLs,
  well-known API key formats).
* :class:`SecretScan` says, in a few literal searches, whether a text may hold anything
  either rule would redact; it never says no when one would.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus, unquote_to_bytes

__all__ = [
    "REDACTED",
    "SECRET_NAMES",
    "SECRET_NAME_PARTS",
    "VALUE_PATTERNS",
    "SecretScan",
    "ValuePattern",
    "card_like_int",
    "fold",
    "is_builtin_secret_name",
    "luhn_valid",
    "name_part_pattern",
    "normalise_name",
    "scan_needles",
]

REDACTED = "[redacted]"
"""What replaces a redacted value."""

_NAME_SEPARATORS = {ord(char): None for char in "-_ +"}

# LLM usage counters and tokenizer settings are no credentials: max_tokens, prompt_tokens,
# token_count, tokenizer, token_type ("Bearer"), token_usage, token_limit, prompt_token_ids
_TOKEN_COUNTERS = ("s", "count", "ids", "iz", "ise", "isation", "usage", "limit", "budget",
                   "type")

SECRET_NAME_PARTS: Mapping[str, tuple[str, ...]] = {
    # passwords
    "password": (), "passwd": (), "pwd": (), "passphrase": (),
    # secrets, keys, credentials (OWASP: encryption keys, connection strings)
    "secret": (), "credential": (), "apikey": (), "accesskey": (), "privatekey": (),
    "signingkey": (), "encryptionkey": (), "connectionstring": (),
    # tokens, but not LLM token counters; plural names of real tokens still match
    "token": _TOKEN_COUNTERS,
    "accesstokens": (), "refreshtokens": (), "apitokens": (), "idtokens": (),
    "sessiontokens": (),
    # auth, oauth, x-auth-token, authorization; not author, authors, authority
    "auth": ("or",), "authoriz": (), "authoris": (),
    # cookies, session ids, CSRF, signatures
    "cookie": (), "sessionid": (), "sessid": (), "sessionkey": (), "connect.sid": (),
    "csrf": (), "xsrf": (), "signature": (), "jwt": (),
    # card holder and bank data (OWASP)
    "cardnumber": (), "creditcard": (), "cvv": (), "cvc": (), "iban": (),
    # client addresses (sentry's PII denylist)
    "xforwardedfor": (), "xrealip": (), "ipaddress": (), "remoteaddr": (),
}
"""Normalised name parts that make a key a secret's, each with the continuations that do
not (``token`` followed by ``s`` or ``count`` is a counter: ``max_tokens``)."""

SECRET_NAMES: frozenset[str] = frozenset({
    # session cookies named by frameworks (sentry's denylist): _session, user_session, ...
    "session", "usersession", "aiohttpsession", "symfony", "sid",
    # Azure SAS and similar signed URLs
    "sig",
})
"""Normalised names that are a secret's only as a whole (``sid``, not ``inside``)."""


def name_part_pattern(part: str, keep: Iterable[str]) -> str:
    """The regex for one name part: the part, not followed by any of ``keep``."""
    words = "|".join(re.escape(word) for word in keep)
    return re.escape(part) + (f"(?!{words})" if words else "")


def normalise_name(name: str) -> str:
    """``name`` case folded, without ``-``, ``_``, ``+`` and spaces: ``X-Api-Key`` -> ``xapikey``."""
    return name.casefold().translate(_NAME_SEPARATORS)


def luhn_valid(digits: str) -> bool:
    """Whether a string of ASCII digits passes the Luhn check (card numbers do)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _is_card_number(digits: str) -> bool:
    # 13-19 digits, a card network's first digit (2-6: Mastercard, Amex/Diners/JCB, Visa,
    # Discover/UnionPay/Maestro), and the Luhn check: an order id or a timestamp rarely is
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_valid(digits)


def card_like_int(value: int) -> bool:
    """Whether a JSON integer is a card number (see :data:`VALUE_PATTERNS`)."""
    return 10**12 <= value < 10**19 and _is_card_number(str(value))


def _card(match: re.Match[str]) -> str:
    text = match.group()
    return REDACTED if _is_card_number(text.replace(" ", "").replace("-", "")) else text


def _basic(match: re.Match[str]) -> str:
    # "Basic dXNlcjpwYXNz" is base64 of "user:pass"; "basic idea" decodes to no such thing
    try:
        decoded = base64.b64decode(match.group(2), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return match.group()
    if ":" in decoded and decoded.isprintable():
        return f"{match.group(1)} {REDACTED}"
    return match.group()


@dataclass(frozen=True, slots=True)
class ValuePattern:
    """One kind of secret found by its shape, wherever it appears in text."""

    name: str
    regex: re.Pattern[str]
    replace: str | Callable[[re.Match[str]], str]
    needles: tuple[str, ...]
    """Fragments one of which every match holds, as normalised names are (lowercase, no
    ``-``, ``_``, ``+`` or spaces); none when :class:`SecretScan` finds it by itself."""


_TOKEN_CHARS = r"[A-Za-z0-9._~+/-]"
VALUE_PATTERNS: tuple[ValuePattern, ...] = (
    ValuePattern(
        "private key",
        re.compile(r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
                   r"(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|\Z)"),
        REDACTED, ("privatekey",)),
    ValuePattern(
        "jwt",
        re.compile(r"\beyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*"
                   r"(?:\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)?", re.ASCII),
        REDACTED, ("eyj",)),
    ValuePattern(
        "bearer",
        # a token has a digit, or is too long for a word: "bearer bonds" stays
        re.compile(rf"\b(bearer)\s+(?:(?={_TOKEN_CHARS}*[0-9]){_TOKEN_CHARS}{{8,}}|"
                   rf"{_TOKEN_CHARS}{{20,}})=*", re.ASCII | re.IGNORECASE),
        rf"\1 {REDACTED}", ("bearer",)),
    ValuePattern(
        "basic",
        re.compile(r"\b(basic)\s+([A-Za-z0-9+/]{4,}={0,2})(?![A-Za-z0-9+/=])",
                   re.ASCII | re.IGNORECASE),
        _basic, ("basic",)),
    ValuePattern(
        "aws access key id",
        re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", re.ASCII), REDACTED, ("akia", "asia")),
    ValuePattern(
        "api key formats",
        re.compile(
            r"\bsk-(?:proj|svcacct|admin|ant|or)-[A-Za-z0-9_-]{16,}"  # OpenAI, Anthropic, OpenRouter
            r"|\bsk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}\b"  # OpenAI, older keys
            r"|\b[sr]k_live_[A-Za-z0-9]{16,}"  # Stripe
            r"|\bgh[pousr]_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{22,}"  # GitHub
            r"|\bglpat-[A-Za-z0-9_-]{20,}"  # GitLab
            r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"  # Slack
            r"|\bAIza[A-Za-z0-9_-]{35}",  # Google
            re.ASCII),
        REDACTED,
        ("skproj", "sksvcacct", "skadmin", "skant", "skor", "t3blbkfj", "sklive", "rklive",
         "ghp", "gho", "ghu", "ghs", "ghr", "githubpat", "glpat", "xox", "aiza")),
    ValuePattern(
        "password in a url",
        re.compile(r"\b([a-z][a-z0-9+.-]{0,30}://[^\s/?#@:\"'<>]+:)[^\s/?#@\"'<>]+(?=@)",
                   re.ASCII | re.IGNORECASE),
        rf"\1{REDACTED}", ()),  # found by SecretScan's check for "@" and "://"
    ValuePattern(
        "card number",
        re.compile(r"(?<![\w.-])(?:[0-9]{13,19}|[0-9]{4}([ -])[0-9]{4}\1[0-9]{4}\1[0-9]{1,7}"
                   r"|[0-9]{4}([ -])[0-9]{6}\2[0-9]{4,5})(?![\w-]|[.,][0-9])", re.ASCII),
        _card, ()),  # found by SecretScan's check for 13 digits
)
"""The built-in value patterns, in the order they are applied."""

# Scanning: a text is folded into a "blob": ASCII lowercase, every digit a 0, the letters
# rarer than k made k (fewer letters to search for), no "-", "_", "+" or spaces. Folding
# maps characters to characters, so a name part or needle in a name or text is still in its
# blob, folded the same way; only a "keep" continuation must survive folding unchanged.
_COARSE = "jqvxz"
_FOLD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", b"abcdefghijklmnopqrstuvwxyz0000000000"
).translate(bytes.maketrans(_COARSE.encode(), b"k" * len(_COARSE)))
_DELETED = b"-_ +"
_LETTER_SHARE = dict(zip("etaoinshrdlcumwfgypbvkjxqz", (
    12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8, 2.4, 2.4, 2.2, 2.0, 2.0,
    1.9, 1.5, 1.0, 0.8, 0.15, 0.15, 0.1, 0.07), strict=True))
"""Percent of English letters: a scan costs per occurrence of its anchor letter."""
_LETTER_SHARE["k"] = sum(_LETTER_SHARE[char] for char in "k" + _COARSE)  # k stands for them
_CARD_DIGITS = b"0" * 13
_DIGITS = bytes.maketrans(b"0123456789", b"0" * 10)
_CARDS = (b"0" * 13, b"0000 0000 0000 0", b"0000-0000-0000-0", b"0000 000000 0000",
          b"0000-000000-0000")
"""What every match of the card number pattern holds, its digits made 0."""
_SHORT_BLOB = 256
"""Below this many bytes one search over every needle costs less than one per anchor."""


def _anchors(needles: Iterable[str]) -> dict[str, int]:
    """Where to anchor each needle's search: a rare letter, in few distinct letters.

    Each letter used costs one pass over the text, and each of its occurrences a check:
    a needle takes the cheapest of its letters, counting a letter not used yet as dearer
    and its last letter as dearer (a check there looks behind at every occurrence).
    """
    used: set[str] = set()
    chosen: dict[str, int] = {}
    for needle in sorted(needles, key=lambda n: (min(_LETTER_SHARE.get(c, 3.0) for c in n), n)):
        def cost(at: int, needle: str = needle) -> float:
            last = at == len(needle) - 1 and len(needle) > 1
            return (_LETTER_SHARE.get(needle[at], 3.0) + (2.5 if last else 0.0)
                    + (0.0 if needle[at] in used else 2.5))

        at = min(range(len(needle)), key=cost)
        chosen[needle] = at
        used.add(needle[at])
    return chosen


def _trie_pattern(suffixes: list[tuple[str, str]]) -> str:
    """One pattern for ``(literal suffix, check at its end)`` pairs, common prefixes shared."""
    trie: dict[str, Any] = {}
    for suffix, check in suffixes:
        node = trie
        for char in suffix:
            node = node.setdefault(char, {})
        node.setdefault("", []).append(check)

    def emit(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + emit(child)
                    for char, child in sorted(node.items()) if char]
        branches.extend(node.get("", []))
        if len(branches) == 1:
            return str(branches[0])
        return "(?:" + "|".join(branches) + ")"

    return emit(trie)


def _encoded(text: str) -> bytes:
    if text.isascii():
        return text.encode()
    return text.casefold().encode("utf-8", "surrogatepass")


def fold(text: str) -> bytes:
    """The blob form of a name or needle: what :class:`SecretScan` searches."""
    return _encoded(text).translate(_FOLD, _DELETED)


class SecretScan:
    """Whether a text may hold a secret name part, a secret name or a value pattern's match.

    Built from needles (folded strings, each with a lookahead on what follows): one regex
    per anchor letter, each starting with that letter so ``re`` skips to its occurrences
    at ``memchr`` speed and checks the rest only there. A "no" is exact for everything the
    redactor would replace; a "yes" may be wrong (then the full redaction finds nothing).
    """

    __slots__ = ("_anchored", "_at_once")

    def __init__(self, needles: Mapping[str, str]) -> None:
        """``needles``: folded needle -> a look ahead on what follows it (or ``""``)."""
        groups: dict[str, list[tuple[str, str]]] = {}
        anchors = _anchors(needles)
        for needle, after in needles.items():
            at = anchors[needle]
            # the anchor letter, the rest of the needle after it, the whole needle behind
            check = f"(?<={re.escape(needle)})" if at else ""
            groups.setdefault(needle[at], []).append((needle[at + 1 :], check + after))
        patterns = [re.escape(anchor) + _trie_pattern(suffixes)
                    for anchor, suffixes in sorted(groups.items())]
        self._anchored = tuple(re.compile(pattern.encode()) for pattern in patterns)
        self._at_once = re.compile("|".join(patterns).encode()) if patterns else None

    def may_match(self, data: bytes) -> bool:
        """Whether text encoded as UTF-8 (case folded when not ASCII) may hold what a
        needle stands for."""
        blob = data.translate(_FOLD, _DELETED)
        # 13 digits once separators are gone, then in a card's shape; a password in a URL
        if _CARD_DIGITS in blob:
            digits = data.translate(_DIGITS)
            if any(shape in digits for shape in _CARDS):
                return True
        if b"@" in blob and b"://" in blob:
            return True
        if len(blob) < _SHORT_BLOB:
            return self._at_once is not None and self._at_once.search(blob) is not None
        return any(pattern.search(blob) is not None for pattern in self._anchored)

    def text_may_match(self, text: str) -> bool:
        """:meth:`may_match` for a text, percent-escapes read both ways (form keys are
        unquoted before they are compared)."""
        if "%" in text and self.may_match(_encoded(unquote_plus(text))):
            return True
        return self.may_match(_encoded(text))

    def body_may_match(self, data: bytes) -> bool:
        """:meth:`may_match` for raw body bytes, as JSON text, a form or plain text.

        A ``\\u`` escape can spell anything, so such a body may always match; ``\\/`` is
        read as ``/``; a non-UTF-8 body may always match.
        """
        if b"\\" in data:
            if b"\\u" in data:
                return True
            data = data.replace(b"\\/", b"/")
        if b"%" in data:
            data += b"\n" + unquote_to_bytes(data)
        if not data.isascii():
            try:
                data = data.decode("utf-8").casefold().encode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                return True
        return self.may_match(data)


def _keep_after_folding(keep: Iterable[str]) -> str:
    # a continuation with a folded character could stand for others: not a reason to keep
    words = [word for word in keep if not any(char in _COARSE + "k0123456789" for char in word)]
    return f"(?!{'|'.join(words)})" if words else ""


def scan_needles(extra_parts: Iterable[str]) -> dict[str, str]:
    """The needles of :class:`SecretScan` for the built-in rules plus ``extra_parts``
    (normalised name parts): folded, each with a look ahead on what follows it."""
    needles: dict[str, str] = {}

    def add(needle: bytes, after: str) -> None:
        text = needle.decode("utf-8", "surrogatepass")
        # one needle for two rules: the looser look ahead (none) covers both
        needles[text] = after if needles.get(text, after) == after else ""

    for part, keep in SECRET_NAME_PARTS.items():
        add(fold(part), _keep_after_folding(keep))
    for name in SECRET_NAMES:
        add(fold(name), "(?![a-z0])")  # a whole name: its blob goes on with no letter
    for pattern in VALUE_PATTERNS:
        for needle in pattern.needles:
            add(fold(needle), "")
    for part in extra_parts:
        add(fold(part), "")
    return needles


_BUILTIN_NAME_RULE = re.compile(
    "|".join(name_part_pattern(part, keep) for part, keep in SECRET_NAME_PARTS.items()))


def is_builtin_secret_name(name: str) -> bool:
    """Whether the built-in rules alone redact values under the key ``name``."""
    normal = normalise_name(name)
    return normal in SECRET_NAMES or _BUILTIN_NAME_RULE.search(normal) is not None
