"""The feedback-asgi command: export, stats, dashboard, through CliRunner and as a real process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from feedback_asgi.cli import app
from feedback_asgi.core.records import FeedbackItem, utc_now
from feedback_asgi.storage.sql.store import SqlFeedbackStore
from tests.export import fixtures as fx

EXE = Path(sys.executable).parent / "feedback-asgi"
WINDOW = ["--since", fx.SINCE.isoformat(), "--until", fx.UNTIL.isoformat()]
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nothing"


def _seed(url: str, items: list[FeedbackItem] | None = None) -> None:
    async def main() -> None:
        store = SqlFeedbackStore(url)
        try:
            if items is None:
                await fx.load(store)
            else:
                assert (await store.save_many(items)).is_ok()
        finally:
            await store.close()

    asyncio.run(main())


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    _seed(url)
    return url


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_export_finetune_to_file(sqlite_url: str, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    code, stdout, stderr = _invoke("export", "finetune", *WINDOW, "--database-url", sqlite_url,
                                   "--out", str(out))
    assert code == 0, stderr
    assert out.read_text(encoding="utf-8") == "".join(fx.FINETUNE)
    assert not (tmp_path / "train.jsonl.partial").exists()
    assert stdout == ""
    assert "7 lines" in stderr
    assert "11 rows" in stderr


def test_export_to_stdout_in_each_format(sqlite_url: str) -> None:
    for args, expected in (
        (["preferences", "--format", "openai"], fx.PREFERENCES_OPENAI),
        (["kto"], fx.KTO),
        (["labels"], fx.LABELS),
        (["finetune", "--format", "openai"], fx.FINETUNE_OPENAI),
        (["finetune", "--model", "m2"], [fx.FINETUNE[2], fx.FINETUNE[5]]),
    ):
        code, stdout, stderr = _invoke("export", *args, *WINDOW, "--database-url", sqlite_url)
        assert code == 0, stderr
        assert stdout == "".join(expected), args


def test_export_weights_options(sqlite_url: str) -> None:
    code, stdout, _ = _invoke("export", "finetune", *WINDOW, "--database-url", sqlite_url,
                              "--positive-weight", "1.5", "--include-neutral")
    assert code == 0
    weights = [json.loads(line)["weight"] for line in stdout.split("\n") if line]
    assert weights == [1.5, 0.5, 1.5, 1.0, 1.5, 1.0, 1.5, 0.5, 0.5]


def test_stats_json_and_table(sqlite_url: str) -> None:
    code, stdout, stderr = _invoke("stats", *WINDOW, "--by", "model", "--json",
                                   "--database-url", sqlite_url)
    assert code == 0, stderr
    report = json.loads(stdout)
    groups = {g["key"]: g["total_count"] for g in report["groups"]}
    assert groups == {"m1": 7, "m2": 2, None: 2}
    totals = report["totals"]
    assert (totals["total_count"], totals["thumbs_up"], totals["thumbs_down"]) == (11, 3, 3)
    assert totals["average_rating"] == 4.0
    code, stdout, _ = _invoke("stats", *WINDOW, "--by", "model", "--database-url", sqlite_url)
    assert code == 0
    assert "m2" in stdout
    assert "50.0%" in stdout


def test_dashboard_once_shows_accuracy_and_recent_negatives(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'dash.db'}"
    now = utc_now()
    _seed(url, [
        FeedbackItem("thumbs", -1, {"trace_id": "a", "model": "m9"}, {"comment": "too slow"},
                     created_at=now - timedelta(hours=1)),
        FeedbackItem("thumbs", 1, {"trace_id": "b", "model": "m9"},
                     created_at=now - timedelta(hours=2)),
        FeedbackItem("thumbs", 1, {"trace_id": "c", "model": "m8"},
                     created_at=now - timedelta(hours=3)),
        FeedbackItem("rating", 1, {"trace_id": "d", "model": "m8"}, {"comment": "off topic"},
                     created_at=now - timedelta(hours=4)),
    ])
    code, stdout, stderr = _invoke("dashboard", "--once", "--database-url", url)
    assert code == 0, stderr
    assert "too slow" in stdout
    assert "off topic" in stdout
    assert "50.0%" in stdout
    assert "100.0%" in stdout
    assert "█" * 10 in stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["stats", "--window", "7x"], 2, "is not a window"),
        (["stats", "--by", "colour"], 2, "--by"),
        (["export", "finetune", "--since", "yesterday"], 2, "not an ISO 8601"),
        (["export", "finetune", "--since", "2025-03-02", "--until", "2025-03-01"], 2, "since"),
        (["export", "kto", "--format", "openai"], 2, "openai format"),
        (["export", "finetune", "--database-url", "nope://x"], 2, "bad database URL"),
        (["stats", "--database-url", "not a url"], 2, "database_url"),
        (["export", "finetune", "--database-url", UNREACHABLE], 1, "unavailable"),
        (["dashboard", "--once", "--database-url", UNREACHABLE], 1, "unavailable"),
    ],
)
def test_errors_are_one_line_without_traceback(args: list[str], code: int, message: str) -> None:
    exit_code, stdout, stderr = _invoke(*args)
    assert exit_code == code, stderr
    assert message in stderr
    assert stderr.startswith("error: ")
    assert stderr.count("\n") == 1
    assert "Traceback" not in stderr + stdout


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def test_real_process_export_and_errors(sqlite_url: str, tmp_path: Path) -> None:
    out = tmp_path / "kto.jsonl"
    done = _run("export", "kto", *WINDOW, "--database-url", sqlite_url, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8") == "".join(fx.KTO)
    done = _run("export", "finetune", *WINDOW, "--database-url", sqlite_url)
    assert done.stdout == "".join(fx.FINETUNE)
    for args, code in ((["stats", "--window", "seven days"], 2),
                       (["export", "labels", "--database-url", UNREACHABLE], 1)):
        done = _run(*args, "--database-url", sqlite_url) if code == 2 else _run(*args)
        assert done.returncode == code
        assert done.stderr.startswith("error: ")
        assert done.stderr.count("\n") == 1
        assert "Traceback" not in done.stderr


def test_failed_export_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "never.jsonl"
    done = _run("export", "finetune", "--database-url", UNREACHABLE, "--out", str(out))
    assert done.returncode == 1
    assert not out.exists()
    assert not (tmp_path / "never.jsonl.partial").exists()


@pytest.mark.postgres
def test_real_process_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    _seed(postgres_url)
    out = tmp_path / "pg.jsonl"
    done = _run("export", "finetune", *WINDOW, "--database-url", postgres_url, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8") == "".join(fx.FINETUNE)
    done = _run("stats", *WINDOW, "--json", "--database-url", postgres_url)
    assert json.loads(done.stdout)["totals"]["total_count"] == 11
