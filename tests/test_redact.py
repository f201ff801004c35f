"""Redactor: built-in patterns, user patterns and callables, invalid input, previews, split secrets in streams."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbcallbacks.redact import BUILTIN_PATTERNS, FAILED_MARKER, MARKER, Redactor, StreamRedactor, make_redactor

OPENAI = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z" * 2
SECRETS = {
    "api_keys": [
        OPENAI,
        "sk-" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0uvwx",
        "sk-ant-api03-" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp-_AbCdEf" * 2,
        "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
        "AKIA" + "IOSFODNN7EXAMPLE",
        "ghp_" + "A" * 36,
        "github_pat_" + "11ABCDEFG0" * 4,
        "xoxb-" + "1234567890-0987654321-AbCdEfGhIjKl",
        "hf_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ012345",
    ],
    "emails": ["jane.doe+ai@example.co.uk", "ops@sub.domain.io"],
}


@pytest.mark.parametrize(("name", "secret"), [(n, s) for n, secrets in SECRETS.items() for s in secrets])
def test_builtin_sets_mask_their_secrets(name, secret):
    redactor = Redactor([name])
    text = f"config: {secret}, then more text"
    assert redactor.redact_text(text) == f"config: {MARKER}, then more text"


def test_bearer_masks_only_the_token():
    redactor = Redactor(["bearer"])
    header = "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_value-1"
    assert redactor.redact_text(header) == f"Authorization: Bearer {MARKER}"
    assert redactor.redact_text("a bearer of good news") == "a bearer of good news"


def test_builtins_are_off_by_default_and_leave_ordinary_text_alone():
    assert make_redactor(None) is None
    assert make_redactor([]) is None
    assert make_redactor(redact=False) is None
    everything = Redactor(list(BUILTIN_PATTERNS))
    prose = "The sky-blue task costs $3; ask Ann at the desk (sk-short). AKIA is a word? hf_x too."
    assert everything.redact_text(prose) == prose


def test_user_patterns_compiled_patterns_and_secret_groups():
    redactor = Redactor([r"\b\d{3}-\d{2}-\d{4}\b", re.compile("hunter2", re.IGNORECASE), r"pw=(?P<secret>\S+)"])
    assert redactor.redact_text("ssn 123-45-6789 pw HUNTER2 pw=abc;x") == f"ssn {MARKER} pw {MARKER} pw={MARKER}"


def test_callables_run_after_patterns_and_fail_closed():
    redactor = Redactor(["emails", lambda text: text.replace("Alice", "[NAME]")])
    assert redactor.redact_text("Alice <alice@example.com>") == f"[NAME] <{MARKER}>"

    def broken(text: str) -> str:
        raise RuntimeError("boom")

    failing = Redactor([broken])
    assert failing.redact_text("my secret") == FAILED_MARKER
    assert failing.failures == 1
    assert failing.last_failure == "RuntimeError: boom"
    wrong = Redactor([lambda text: None])
    assert wrong.redact_text("my secret") == FAILED_MARKER
    assert "NoneType" in str(wrong.last_failure)


@pytest.mark.parametrize(
    ("rules", "error", "words"),
    [
        ([42], TypeError, "each rule must be"),
        ([b"sk-"], TypeError, "each rule must be"),
        ([re.compile(b"x")], TypeError, "bytes pattern"),
        (["(unclosed"], ValueError, "invalid regular expression '\\(unclosed'"),
        ([""], ValueError, "matches the empty string"),
        (["x*"], ValueError, "matches the empty string"),
        ([r"\b"], ValueError, "matches the empty string"),
        (["api_key"], ValueError, "not a built-in pattern set"),
        (42, TypeError, "redact= takes"),
    ],
)
def test_invalid_rules_say_what_is_wrong(rules, error, words):
    with pytest.raises(error, match=re.escape(words) if "\\" not in words else words):
        Redactor(rules)


def test_invalid_options():
    with pytest.raises(ValueError, match="holdback"):
        Redactor(["emails"], holdback=-1)
    with pytest.raises(TypeError, match="marker"):
        Redactor(["emails"], marker=None)  # type: ignore[arg-type]


def test_single_rules_need_no_list():
    assert Redactor("emails").redact_text("a@b.org") == MARKER
    assert Redactor(str.upper).redact_text("abc") == "ABC"
    assert make_redactor(Redactor("emails")) is not None


def test_redact_preview_returns_a_new_structure():
    redactor = Redactor(["api_keys", "emails"])
    preview = {
        "messages": [{"type": "human", "content": f"key {OPENAI}"}],
        "count": 3,
        "ok": True,
        "nothing": None,
        f"{OPENAI}": "key as a key",
        "sk-" + "b" * 30: "another",
        "nested": [[["bob@example.com"]]],
    }
    out = redactor.redact_preview(preview)
    assert out == {
        "messages": [{"type": "human", "content": f"key {MARKER}"}],
        "count": 3,
        "ok": True,
        "nothing": None,
        MARKER: "key as a key",
        f"{MARKER} #2": "another",
        "nested": [[[MARKER]]],
    }
    assert preview["messages"][0]["content"] == f"key {OPENAI}"  # the input is untouched


def test_redact_chunks_masks_a_secret_split_across_chunks():
    redactor = Redactor(["api_keys"])
    text = f"Use {OPENAI} to call the API."
    chunks = [text[i : i + 5] for i in range(0, len(text), 5)]
    assert all(redactor.redact_text(c) == c for c in chunks)  # no single chunk holds the secret
    out = redactor.redact_chunks(chunks)
    assert out is not None
    assert len(out) == len(chunks)
    assert "".join(out) == f"Use {MARKER} to call the API."
    assert redactor.redact_chunks(["nothing ", "secret ", "here"]) is None
    assert redactor.redact_chunks([]) is None


def test_redact_chunks_keeps_kinds_apart():
    redactor = Redactor(["emails"])
    chunks = ["thinking about ", "bo", "b@x.org", "Hello ", "al", "ice@y.org", '{"to": "c@z.org"}']
    kinds = [2, 2, 2, 0, 0, 0, 1]
    out = redactor.redact_chunks(chunks, kinds)
    assert out == [f"thinking about {MARKER}", "", "", f"Hello {MARKER}", "", "", f'{{"to": "{MARKER}"}}']


def _stream_all(stream: StreamRedactor, chunks: list[str], kind: int = 0) -> tuple[list[str], str]:
    released = [stream.feed(chunk, kind) for chunk in chunks]
    tail = "".join(text for _, text in stream.finish())
    return released, tail


def test_stream_never_releases_a_piece_of_a_split_secret():
    redactor = Redactor(["api_keys", "emails", "bearer"], holdback=200)
    text = (
        "Here is the config. "
        + "word " * 60
        + f"key={OPENAI} and mail someone@example.com with header Bearer abcdefghijklmnop.qrs "
        + "tail " * 80
    )
    chunks = [text[i : i + 3] for i in range(0, len(text), 3)]
    released, tail = _stream_all(StreamRedactor(redactor), chunks)
    assert len(released) == len(chunks)
    assert "".join(released) + tail == redactor.redact_text(text)
    for piece in [*released, tail]:  # no released piece holds any part of a secret
        assert "Ab3dEf" not in piece
        assert "someone" not in piece
        assert "abcdefgh" not in piece
    # Text keeps flowing while the run streams: at most holdback + a quarter is pending at any time.
    assert 0 < len(tail) <= 250
    assert sum(bool(p) for p in released) >= (len(text) - 250) // 50


@given(
    prefix=st.text(alphabet="ab ,.\n", max_size=400),
    suffix=st.text(alphabet="ab ,.\n", max_size=400),
    cuts=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=50),
)
def test_stream_output_equals_whole_text_redaction(prefix, suffix, cuts):
    redactor = Redactor(["api_keys", "emails"], holdback=128)
    text = f"{prefix} {OPENAI} x@y.org {suffix}"
    chunks, start, index = [], 0, 0
    while start < len(text):
        size = cuts[index % len(cuts)]
        chunks.append(text[start : start + size])
        start += size
        index += 1
    released, tail = _stream_all(StreamRedactor(redactor), chunks)
    assert "".join(released) + tail == redactor.redact_text(text)
    assert OPENAI[:12] not in "".join(released) + tail


def test_stream_kinds_are_held_separately():
    stream = StreamRedactor(Redactor(["emails"], holdback=4))
    assert stream.feed("abcdef", 0) == "ab"
    assert stream.feed("xyz", 1) == ""
    assert stream.held == 4 + 3
    assert sorted(stream.finish()) == [(0, "cdef"), (1, "xyz")]
    assert stream.held == 0


def test_stream_without_holdback_is_per_chunk():
    stream = Redactor(["emails"], holdback=0).stream()
    assert stream.feed("a@b.org ", 0) == f"{MARKER} "
    assert stream.finish() == []


def test_random_chunkings_of_every_builtin_secret():
    redactor = Redactor(list(BUILTIN_PATTERNS))
    rng = random.Random(7)  # noqa: S311 - chunk sizes, not secrets
    for secrets in SECRETS.values():
        for secret in secrets:
            text = f"start {secret} end"
            for _ in range(20):
                chunks, start = [], 0
                while start < len(text):
                    size = rng.randint(1, 8)
                    chunks.append(text[start : start + size])
                    start += size
                released, tail = _stream_all(redactor.stream(), chunks)
                assert "".join(released) + tail == f"start {MARKER} end"


def test_a_preview_string_cut_inside_a_secret_masks_the_fragment():
    from nbcallbacks.events import Limits
    from nbcallbacks.payload import preview

    limits = Limits(max_string=40)
    redactor = Redactor(["api_keys", "emails"])
    key_cut = preview("x" * 28 + " key=" + OPENAI, limits)
    assert key_cut.startswith("x" * 28 + " key=sk-pro")
    assert redactor.redact_preview(key_cut) == "x" * 28 + f" key={MARKER}…[+{len(OPENAI) - 7:,} chars]"
    mail_cut = preview("y" * 30 + " bob@example.com", limits)
    assert redactor.redact_preview(mail_cut).startswith("y" * 30 + f" {MARKER}…[+")
    plain_cut = preview("z " * 40, limits)
    assert redactor.redact_preview(plain_cut) == plain_cut
    assert Redactor([r"\d{9}"]).redact_preview(key_cut) == key_cut  # user patterns: no prefixes known


_json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet="abc XYZ-_.\u00e9", max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(alphabet="abc_", max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@given(value=_json_like, where=st.integers(min_value=0, max_value=50))
def test_no_secret_survives_redact_preview_anywhere(value, where):
    import json

    redactor = Redactor(["api_keys", "emails"])
    planted = {"payload": value, "note": f"token {OPENAI} here", f"k{where}": ["bob@example.com", {OPENAI: 1}]}
    out = redactor.redact_preview(planted)
    dumped = json.dumps(out, ensure_ascii=False)
    assert OPENAI[:20] not in dumped
    assert "bob@example.com" not in dumped
    assert redactor.redact_preview(value) == value  # text without secrets comes back equal
