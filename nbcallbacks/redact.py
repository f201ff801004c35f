r"""Keep secrets out of traces: ``NotebookHandler(redact=...)``.

``redact`` is a list of rules (or one rule):

- a regular expression, as a string or a compiled pattern: every match is replaced by ``[REDACTED]``; when the
  pattern has a group named ``secret``, only that group is (``r"password=(?P<secret>\S+)"``);
- a callable ``str -> str`` that returns the text with whatever it wants masked (a PII library, say);
- the name of a built-in set of patterns (off unless named): ``"api_keys"`` (OpenAI ``sk-...``, Anthropic
  ``sk-ant-...``, Google ``AIza...``, AWS ``AKIA...``/``ASIA...``, GitHub ``ghp_...``/``github_pat_...``, Slack
  ``xox.-...``, Hugging Face ``hf_...``), ``"bearer"`` (``Authorization: Bearer ...`` tokens), ``"emails"``.

The handler applies one :class:`Redactor` when an event is recorded, to every string it keeps: payload previews
(:meth:`Redactor.redact_preview`), errors, tracebacks and tags (:meth:`Redactor.redact_text`), and streamed text.
Streamed text is redacted through a :class:`StreamRedactor` per model run, which holds back the last ``holdback``
characters (256 by default) until more text arrives or the run ends, so a secret split across chunks is masked
before any piece of it is kept, shown or written by a sink (for secrets up to ``holdback`` characters; the live
view lags by as much). When the run ends, :meth:`Redactor.redact_chunks` checks the whole kept text once more.

Without ``redact`` the handler holds ``None`` and pays nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

__all__ = ["BUILTIN_PATTERNS", "MARKER", "Redactor", "StreamRedactor", "make_redactor"]

MARKER: Final = "[REDACTED]"
FAILED_MARKER: Final = "[REDACTED: redact function failed]"
"""What a string becomes when a user's redact callable raises or returns a non-string (fail closed)."""

BUILTIN_PATTERNS: Final[dict[str, tuple[str, ...]]] = {
    "api_keys": (
        (
            r"(?<![A-Za-z0-9_-])(?:"
            r"sk-ant-[A-Za-z0-9_-]{20,}"  # Anthropic (before OpenAI's, which it also looks like)
            r"|sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}"  # OpenAI
            r"|AIza[0-9A-Za-z_-]{35}"  # Google API keys
            r"|(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key ids
            r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}"  # GitHub tokens
            r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack tokens
            r"|hf_[A-Za-z0-9]{30,}"  # Hugging Face tokens
            r")"
        ),
    ),
    "bearer": (r"(?i)\bbearer\s+(?P<secret>[A-Za-z0-9\-._~+/]{8,}=*)",),
    "emails": (r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",),
}
"""Built-in pattern sets, by the name ``redact=`` takes."""


def _may_hold_api_key(text: str) -> bool:
    return (
        "sk-" in text
        or "xox" in text
        or ("_" in text and ("gh" in text or "hf_" in text or "github_pat_" in text))
        or "AIza" in text
        or "AKIA" in text
        or "ASIA" in text
    )


def _may_hold_bearer(text: str) -> bool:
    return "earer" in text or "EARER" in text or "earer" in text.lower()


def _may_hold_email(text: str) -> bool:
    return "@" in text


_HINTS: Final[dict[str, Callable[[str], bool]]] = {
    "api_keys": _may_hold_api_key,
    "bearer": _may_hold_bearer,
    "emails": _may_hold_email,
}
"""Per built-in set: whether a text contains a literal every match contains (C-speed ``in`` checks, ~0.1 µs),
which skips the full regular expression scan of most texts (tens of nanoseconds per character)."""

DEFAULT_HOLDBACK: Final = 256
"""Characters of streamed text held back per run and kind until more arrives (see ``StreamRedactor``)."""

_NAME: Final = re.compile(r"[a-z][a-z0-9_]*")
_MAX_DEPTH: Final = 64
_ENCODE: Final = json.JSONEncoder(ensure_ascii=False).encode
_CUT_MARK: Final = re.compile(r"…\[\+[\d,]+ chars\]$")
"""The marker ``nbcallbacks.payload`` ends a string cut by ``Limits.max_string`` with."""
_LAST_WORD: Final = re.compile(r"[^\s\"'=:,;(){}\[\]<>]{1,200}$")
_CUT_PREFIXES: Final[dict[str, tuple[str, ...]]] = {
    "api_keys": ("sk-", "AIza", "AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "hf_"),
    "bearer": (),
    "emails": ("@",),
}
_PROBE: Final = "a b-1_.\n@Z "
"""Text to find patterns that match empty strings (``\\b``, ``x*``) on."""


class Redactor:
    """Masks secrets in the strings nbcallbacks keeps. Build one with :func:`make_redactor` (or directly).

    Args:
        rules: regular expressions (strings or compiled), callables ``str -> str`` and built-in set names.
        marker: what replaces a match.
        holdback: characters of streamed text held back per run (see :class:`StreamRedactor`).

    Raises:
        TypeError: a rule of another type.
        ValueError: an invalid regular expression, one that matches the empty string, an unknown built-in
            name, no rules at all, or a bad ``holdback``.
    """

    __slots__ = (
        "_all_builtin",
        "_cut_prefixes",
        "_hints",
        "_prefilter",
        "_steps",
        "failures",
        "holdback",
        "last_failure",
        "marker",
        "patterns",
    )

    def __init__(
        self,
        rules: Any,
        *,
        marker: Any = MARKER,
        holdback: Any = DEFAULT_HOLDBACK,
    ) -> None:
        """Compile the rules once; see the class docstring."""
        if isinstance(rules, (str, re.Pattern)) or callable(rules):
            rules = [rules]
        if not isinstance(rules, Iterable):
            msg = f"redact= takes a list of regular expressions, callables and built-in names; got {rules!r}"
            raise TypeError(msg)
        if not isinstance(marker, str):
            msg = f"marker must be a string, got {marker!r}"
            raise TypeError(msg)
        if isinstance(holdback, bool) or not isinstance(holdback, int) or holdback < 0:
            msg = f"holdback must be a non-negative integer (characters), got {holdback!r}"
            raise ValueError(msg)
        self.marker = marker
        self.holdback = holdback
        self.patterns: list[tuple[re.Pattern[str], Callable[[str], object] | None]] = []
        """The compiled regular expressions, in order, each with a quick "may it match?" check or None (what
        ``StreamRedactor`` avoids cutting through)."""
        self._steps: list[Callable[[str], str]] = []
        self._hints: list[Callable[[str], bool]] = []
        self._all_builtin = True
        self._prefilter: Callable[[str], object] | None = None
        """When every rule is built-in: a search for any of their literals (no hit, nothing to do)."""
        self._cut_prefixes: tuple[str, ...] = ()
        """Starts of built-in secrets: a preview string cut short right after one is masked from there on."""
        self.failures = 0
        """How often a user callable raised or returned a non-string (the text was then fully masked)."""
        self.last_failure: str | None = None
        for rule in rules:
            self._add(rule)
        if not self._steps:
            msg = "redact= got no rules; pass None to turn redaction off"
            raise ValueError(msg)
        if self._all_builtin:
            self._prefilter = _any_of(tuple(self._hints))

    def _add(self, rule: Any) -> None:
        if isinstance(rule, str) and rule in BUILTIN_PATTERNS:
            for pattern in BUILTIN_PATTERNS[rule]:
                self._add_pattern(re.compile(pattern), f"built-in {rule!r}", _HINTS[rule])
            self._hints.append(_HINTS[rule])
            self._cut_prefixes += _CUT_PREFIXES.get(rule, ())
            return
        self._all_builtin = False
        if isinstance(rule, str):
            if _NAME.fullmatch(rule):
                msg = (
                    f"redact=: {rule!r} is not a built-in pattern set (known: {', '.join(BUILTIN_PATTERNS)}); to mask"
                    f" the literal word, pass re.compile({rule!r})"
                )
                raise ValueError(msg)
            try:
                compiled = re.compile(rule)
            except re.error as exc:
                msg = f"redact=: invalid regular expression {rule!r}: {exc}"
                raise ValueError(msg) from exc
            self._add_pattern(compiled, repr(rule))
        elif isinstance(rule, re.Pattern):
            if not isinstance(rule.pattern, str):
                msg = f"redact=: patterns must be text (str) patterns, got bytes pattern {rule.pattern!r}"
                raise TypeError(msg)
            self._add_pattern(rule, repr(rule.pattern))
        elif callable(rule):
            self._steps.append(self._guarded(rule))
        else:
            msg = (
                f"redact=: each rule must be a regular expression (str or re.Pattern), a callable str -> str, or a"
                f" built-in name ({', '.join(BUILTIN_PATTERNS)}); got {type(rule).__name__}: {rule!r}"
            )
            raise TypeError(msg)

    def _add_pattern(
        self, pattern: re.Pattern[str], described: str, quick: Callable[[str], object] | None = None
    ) -> None:
        if pattern.fullmatch("") or any(m.end() == m.start() for m in pattern.finditer(_PROBE)):
            msg = f"redact=: the pattern {described} matches the empty string (it would mask between every character)"
            raise ValueError(msg)
        self.patterns.append((pattern, quick))
        marker = self.marker
        if "secret" in pattern.groupindex:

            def mask_group(match: re.Match[str]) -> str:
                whole, start, end = match.group(0), match.start("secret"), match.end("secret")
                if start < 0:
                    return whole
                offset = match.start()
                return whole[: start - offset] + marker + whole[end - offset :]

            replacement: Any = mask_group
        else:
            replacement = marker
        if quick is None:
            self._steps.append(lambda text: pattern.sub(replacement, text))
        else:
            self._steps.append(lambda text: pattern.sub(replacement, text) if quick(text) else text)

    def _guarded(self, function: Callable[[str], Any]) -> Callable[[str], str]:
        """A user callable that can never let the unmasked text through: on failure the whole text is masked."""

        def step(text: str) -> str:
            try:
                result = function(text)
            except Exception as exc:  # noqa: BLE001 - fail closed: nothing unredacted is kept
                self.failures += 1
                self.last_failure = f"{type(exc).__name__}: {exc}"[:500]
                return FAILED_MARKER
            if not isinstance(result, str):
                self.failures += 1
                self.last_failure = f"redact function returned {type(result).__name__}, not str"
                return FAILED_MARKER
            return result

        return step

    def redact_text(self, text: str) -> str:
        """``text`` with every rule applied, in order."""
        if self._prefilter is not None and not self._prefilter(text):
            return text
        for step in self._steps:
            if not text:
                break
            text = step(text)
        return text

    def redact_preview(self, value: Any, _depth: int = 0) -> Any:
        """A copy of a payload preview (dicts, lists, strings, numbers) with every string redacted, keys too.

        ``value`` is not modified. Numbers, booleans and None are kept as they are.
        """
        if _depth == 0 and self._prefilter is not None and not isinstance(value, str):
            # Previews are JSON-ready: one C-speed dump and a few substring checks skip the walk when no
            # built-in secret can be in there (JSON escaping never touches the literals looked for).
            try:
                dumped = _ENCODE(value)
            except (TypeError, ValueError):
                dumped = None
            if dumped is not None and not self._prefilter(dumped):
                return value
        if isinstance(value, str):
            text = self.redact_text(value)
            return self._mask_cut_secret(text) if self._cut_prefixes and text.endswith(" chars]") else text
        if _depth > _MAX_DEPTH:
            return self.marker
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for key, item in value.items():
                name = self.redact_text(key) if isinstance(key, str) else key
                unique, number = name, 2
                while unique in out:  # two keys masked to the same text stay two entries
                    unique = f"{name} #{number}"
                    number += 1
                out[unique] = self.redact_preview(item, _depth + 1)
            return out
        if isinstance(value, (list, tuple)):
            return [self.redact_preview(item, _depth + 1) for item in value]
        return value

    def _mask_cut_secret(self, text: str) -> str:
        """Mask the last word of a preview string cut inside what may be a secret.

        A string cut by ``Limits.max_string`` right inside a secret keeps its first characters, too few for a
        pattern to match (``"sk-proj-Ab3d…[+1,804 chars]"``); a last word holding a built-in secret's start
        (``sk-``, ``AKIA``, ``@``, ...) is masked.
        """
        cut = _CUT_MARK.search(text)
        if cut is None:
            return text
        head = text[: cut.start()]
        word = _LAST_WORD.search(head)
        if word is None or not any(prefix in word.group(0) for prefix in self._cut_prefixes):
            return text
        return head[: word.start()] + self.marker + text[cut.start() :]

    def redact_chunks(self, texts: Sequence[str], kinds: Sequence[int] | None = None) -> list[str] | None:
        """The end-of-run pass over a run's kept streamed chunks: None when nothing changes, else new chunks.

        Consecutive chunks of one kind are joined and redacted as one text, so a secret split across chunks is
        masked. A group that changed is returned as its first chunk holding the whole redacted text and the
        others empty: the number of chunks (and their kinds) stays the same.
        """
        if not texts:
            return None
        kinds = kinds if kinds is not None else [0] * len(texts)
        out: list[str] | None = None
        start = 0
        for end in range(1, len(texts) + 1):
            if end < len(texts) and kinds[end] == kinds[start]:
                continue
            joined = "".join(texts[start:end])
            redacted = self.redact_text(joined)
            if redacted != joined:
                if out is None:
                    out = list(texts)
                out[start] = redacted
                for index in range(start + 1, end):
                    out[index] = ""
            start = end
        return out

    def stream(self) -> StreamRedactor:
        """A new per-run stream redactor."""
        return StreamRedactor(self)


class StreamRedactor:
    """Redacts one model run's streamed text as it arrives, without letting a split secret through.

    ``feed(text, kind)`` returns the text to keep now for that chunk (possibly ``""``): once more than
    ``holdback`` (plus a quarter, so that the text is scanned once per quarter holdback, not per chunk) characters
    of that kind are pending, everything but the last ``holdback``, never cut through a match of a pattern,
    redacted.
    ``finish()`` returns what is still held back, per kind, redacted: keep it when the run ends.

    A secret of at most ``holdback`` characters is therefore whole when it is redacted. User callables see the
    released pieces (and, at the end, the whole text through :meth:`Redactor.redact_chunks`).
    """

    __slots__ = ("_pending", "redactor", "spoke")

    def __init__(self, redactor: Redactor) -> None:
        """Start an empty stream."""
        self.redactor = redactor
        self._pending: dict[int, str] = {}
        self.spoke = False
        """Set by the caller once a chunk with text was fed (its time is the run's first token)."""

    def feed(self, text: str, kind: int = 0) -> str:
        """The redacted text to keep for this chunk now (the rest is held back)."""
        pending = self._pending.get(kind, "") + text
        holdback = self.redactor.holdback
        if len(pending) <= holdback + (holdback >> 2):  # release in steps of a quarter holdback: one scan each
            self._pending[kind] = pending
            return ""
        cut = self._safe_cut(pending, len(pending) - holdback)
        self._pending[kind] = pending[cut:]
        return self.redactor.redact_text(pending[:cut]) if cut else ""

    def _safe_cut(self, text: str, cut: int) -> int:
        """``cut`` moved back to the start of any pattern match it would split."""
        moved = True
        while moved and cut > 0:
            moved = False
            for pattern, quick in self.redactor.patterns:
                if quick is not None and not quick(text):
                    continue
                for match in pattern.finditer(text, max(0, cut - self.redactor.holdback)):
                    if match.start() >= cut:
                        break
                    if match.start() < cut < match.end():
                        cut = match.start()
                        moved = True
                        break
        return cut

    def finish(self) -> list[tuple[int, str]]:
        """What was held back, as ``(kind, redacted text)`` pairs (non-empty ones only); the stream is then empty."""
        tails = [(kind, self.redactor.redact_text(text)) for kind, text in self._pending.items() if text]
        self._pending.clear()
        return tails

    @property
    def held(self) -> int:
        """Characters held back right now."""
        return sum(len(text) for text in self._pending.values())


def _any_of(hints: tuple[Callable[[str], bool], ...]) -> Callable[[str], bool]:
    """Whether any of ``hints`` holds for a text (a plain loop: cheaper than ``any`` over a generator)."""
    if len(hints) == 1:
        return hints[0]

    def check(text: str) -> bool:
        for hint in hints:  # noqa: SIM110 - a loop is faster here than any() over a generator
            if hint(text):
                return True
        return False

    return check


def make_redactor(redact: Any, *, holdback: int = DEFAULT_HOLDBACK) -> Redactor | None:
    """The handler's redactor for ``redact=``: None (no cost at all) for None/False/empty, else a ``Redactor``."""
    if redact is None or redact is False:
        return None
    if isinstance(redact, Redactor):
        return redact
    if isinstance(redact, (list, tuple)) and not redact:
        return None
    return Redactor(redact, holdback=holdback)
