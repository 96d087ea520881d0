"""The feedback-asgi command with hostile data and input: stored names that carry terminal
escape sequences, bidi overrides and rich markup are printed escaped, never raw; times out of
range are one error line and exit status 2."""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from feedback_asgi.core.records import FeedbackItem, utc_now
from feedback_asgi.terminal.escape import printable
from tests.cli.test_cli import EXE, _invoke, _seed

CLEAR = "\x1b[2J\x1b[H"
EVIL_MODEL = f"m{CLEAR}\x1b[31mred\u202egnp.exe\x9b31m[bold red]loud[/]\\x"
EVIL_COMMENT = "\x1b]0;pwned\x07slow\r\nfake row\u2066"
EVIL_PROJECT = "[link=file:///etc/passwd]p[/link]\x7f"
RAW = [b"\x1b", "\u202e".encode(), "\x9b".encode(), "\u2066".encode(), b"\x07", b"\x7f", b"\r"]
SHOWN = [b"m\\x1b[2J\\x1b[H\\x1b[31mred\\u202egnp.exe\\x9b31m[bold red]loud[/]\\\\x",
         b"\\x1b]0;pwned\\x07slow\\r\\nfake row\\u2066",
         b"[link=file:///etc/passwd]p[/link]\\x7f"]


def _items() -> list[FeedbackItem]:
    now = utc_now()
    context = {"model": EVIL_MODEL, "project": EVIL_PROJECT}
    return [
        FeedbackItem("thumbs", -1, {**context, "trace_id": "a"}, {"comment": EVIL_COMMENT},
                     created_at=now - timedelta(hours=1)),
        FeedbackItem("thumbs", 1, {**context, "trace_id": "b"},
                     created_at=now - timedelta(hours=2)),
        FeedbackItem("rating", 1, {"trace_id": "c", "model": "plain"},
                     {"comment": EVIL_COMMENT}, created_at=now - timedelta(hours=3)),
    ]


@pytest.fixture(params=["sqlite", "postgres"])
def evil_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database holding feedback on a model whose name is a terminal attack."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'evil.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    _seed(url, _items())
    return url


def _run_bytes(*args: str, color: bool = False) -> subprocess.CompletedProcess[bytes]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("FORCE_COLOR", "NO_COLOR", "TERM")}
    env["COLUMNS"] = "400"  # no wrapping inside the escaped names
    if color:
        env["FORCE_COLOR"] = "1"
        env["TERM"] = "xterm-256color"
    return subprocess.run([str(EXE), *args], capture_output=True, timeout=60, check=False,
                          env=env)


@pytest.mark.parametrize("command", [["stats", "--by", "model"], ["stats", "--by", "project"],
                                     ["dashboard", "--once"],
                                     ["dashboard", "--once", "--by", "project"]])
def test_stored_names_are_shown_escaped(evil_url: str, command: list[str]) -> None:
    done = _run_bytes(*command, "--database-url", evil_url)
    assert done.returncode == 0, done.stderr
    for raw in RAW:
        assert raw not in done.stdout, raw
    shown = SHOWN[2] if "project" in command else SHOWN[0]
    assert shown in done.stdout, done.stdout
    if command[0] == "dashboard":
        assert SHOWN[1] in done.stdout  # the comment of the recent negative feedback


def test_with_colors_only_our_own_styles_reach_the_terminal(evil_url: str) -> None:
    done = _run_bytes("dashboard", "--once", "--database-url", evil_url, color=True)
    assert done.returncode == 0, done.stderr
    assert b"\x1b[" in done.stdout  # colors are on: rich's own SGR sequences
    for sequence in (CLEAR.encode(), b"\x1b]0;", "\u202e".encode(), "\x9b".encode()):
        assert sequence not in done.stdout
    assert SHOWN[0] in done.stdout
    assert SHOWN[1] in done.stdout


def test_the_json_output_stays_json(evil_url: str) -> None:
    done = _run_bytes("stats", "--by", "model", "--json", "--database-url", evil_url)
    assert done.returncode == 0
    assert b"\\u001b[2J" in done.stdout  # JSON's own escape, not a raw ESC
    assert b"\x1b" not in done.stdout


def test_an_error_line_shows_user_input_escaped(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'out.db'}"
    done = _run_bytes("export", "finetune", "--database-url", url,
                      "--out", str(tmp_path / f"no{CLEAR}[bold]x[/]" / "never.jsonl"))
    assert done.returncode == 2
    assert done.stderr.startswith(b"error: ")
    assert done.stderr.count(b"\n") == 1
    assert b"\x1b" not in done.stderr
    assert b"\\x1b[2J" in done.stderr
    assert b"[bold]x[/]" in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["stats", "--since", "0001-01-01"],
        ["stats", "--until", "0001-01-01T00:00:00Z"],
        ["stats", "--since", "9999-12-31"],
        ["stats", "--until", "9999-12-31T23:00:00-05:00"],
        ["export", "finetune", "--until", "0001-01-02"],
        ["export", "finetune", "--since", "9999-12-31"],
        ["export", "kto", "--since", "1969-12-31T23:59:59Z"],
        ["export", "labels", "--until", "9999-12-31T23:00:00-05:00"],
        ["export", "finetune", "--since", "2026-01-01\x00"],
    ],
)
def test_times_out_of_range_are_one_line_and_exit_2(tmp_path: Path, args: list[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'range.db'}"
    _seed(url, _items())
    code, stdout, stderr = _invoke(*args, "--database-url", url)
    assert code == 2, stderr
    assert stderr.startswith("error: ")
    assert stderr.count("\n") == 1
    name = "since" if "--since" in args else "until"
    assert name in stderr
    assert "Traceback" not in stdout + stderr


def test_printable_escapes_every_control_and_bidi_character() -> None:
    unsafe = [chr(code) for code in (*range(0x20), *range(0x7F, 0xA0), 0x61C, 0x200E, 0x200F,
                                     0x2028, 0x2029, *range(0x202A, 0x202F),
                                     *range(0x2066, 0x206A))]
    for char in unsafe:
        shown = printable(f"a{char}b")
        assert char not in shown
        assert shown.isascii(), repr(shown)
        assert shown.isprintable(), repr(shown)
    assert printable("a\\x1b") == "a\\\\x1b"  # text that only looks like an escape
    assert printable("plain [b]é 😀 שלום") == "plain [b]é 😀 שלום"
