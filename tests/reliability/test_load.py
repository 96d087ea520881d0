"""Load without loss and faults, on the real thing: the FastAPI chat example under uvicorn with
2 workers, PostgreSQL and Redis behind TCP proxies, 128 concurrent clients that obtain answers
from the app and post feedback on them (``bench.soak`` at a bounded size; ``make soak``
runs the same at full size).

Two runs per session: one clean (then SIGTERM while posts are in flight), one with
PostgreSQL cut, Redis cut and a worker SIGKILLed along the way.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bench.soak.faults import PostgresCut, RedisCut, WorkerKill
from bench.soak.scenario import TEST_SIZE, RunReport, run
from tests import services

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def _run(**kwargs: Any) -> RunReport:
    services.require("PostgreSQL", services.PG_HOST, services.PG_PORT)
    services.require("Redis", services.REDIS_HOST, services.REDIS_PORT)
    return asyncio.run(run(**kwargs))


@pytest.fixture(scope="module")
def clean_run() -> RunReport:
    return _run(size=TEST_SIZE, faults=[], drain=True)


@pytest.fixture(scope="module")
def faulty_run() -> RunReport:
    size = TEST_SIZE.__class__(posts=1200, seconds=90.0)
    return _run(size=size, faults=[PostgresCut(at=0.2, hold=2.0), RedisCut(at=0.5, hold=2.0),
                                   WorkerKill(at=0.75)])


def _fault(report: RunReport, name: str) -> dict[str, Any]:
    found = [f for f in report.figures["faults"] if f["name"] == name]
    assert len(found) == 1, report.figures["faults"]
    return dict(found[0])


def _no_loss(figures: dict[str, Any]) -> None:
    assert figures["lost"] == 0, figures
    assert figures["duplicates"] == 0, figures
    assert figures["stored"] == figures["acknowledged"], figures
    assert figures["stored_not_acknowledged"] == 0, figures
    assert figures["other_5xx"] == 0, figures
    assert figures["refused_4xx"] == 0, figures


def test_rows_equal_acknowledged_posts(clean_run: RunReport) -> None:
    figures = clean_run.figures
    _no_loss(figures)
    # every post of the load phase was acknowledged (only SIGTERM may leave some unanswered)
    assert figures["acknowledged"] >= TEST_SIZE.posts, figures
    assert figures["status_503"] == 0, figures
    assert figures["context_checked"] == figures["acknowledged"] - figures["context_fault_exempt"]
    assert figures["context_cross_worker"] > 0, figures  # the second worker rated the first's


def test_each_row_holds_the_exchange_it_rates(clean_run: RunReport) -> None:
    assert clean_run.figures["context_problems"] == {}, clean_run.figures


def test_sigterm_drains_the_exchange_writer_and_loses_nothing(clean_run: RunReport) -> None:
    drain = _fault(clean_run, "SIGTERM drain")
    assert drain["exchanges_missing"] == 0, drain
    assert drain["exit_seconds"] is not None
    assert drain["exit_seconds"] < 15, drain  # uvicorn's graceful timeout is 10 s
    assert drain["lost"] == 0, drain
    assert drain["survived"], drain


def test_postgres_cut_answers_503_then_recovers_without_restart(faulty_run: RunReport) -> None:
    _no_loss(faulty_run.figures)
    cut = _fault(faulty_run, "postgres cut")
    assert cut["post_statuses_during"].keys() == {503}, cut
    assert cut["all_503_with_retry_after"], cut
    assert cut["app_route_answers_during"] > 0, cut
    assert cut["app_route_non_2xx_during"] == 0, cut
    assert cut["acked_after_restore"] > 0, cut
    assert cut["survived"], cut


def test_redis_cut_fails_no_request(faulty_run: RunReport) -> None:
    cut = _fault(faulty_run, "redis cut")
    assert cut["answers_during"] > 0, cut
    assert cut["failed_during"] == 0, cut
    assert cut["acked_during"] > 0, cut
    assert cut["survived"], cut


def test_killed_worker_loses_nothing_it_acknowledged(faulty_run: RunReport) -> None:
    kill = _fault(faulty_run, "worker SIGKILL")
    assert kill["acked_by_killed_worker"] > 0, kill
    assert kill["lost_of_killed_worker"] == 0, kill
    assert kill["replaced"], kill
    assert kill["survived"], kill


def test_faulty_run_keeps_contexts_outside_the_fault_windows(faulty_run: RunReport) -> None:
    figures = faulty_run.figures
    assert figures["context_problems"] == {}, figures
    assert figures["context_checked"] > 0, figures
