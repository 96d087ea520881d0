"""The load: traces obtained from the app's own ``POST /chat``, then feedback posted on each.

``concurrency`` runners share one HTTP client. Each takes the next trace number, asks the
app a question (retrying connection errors: a killed worker), then posts ``kinds`` feedback
on the answer, each with its own ``Idempotency-Key``, retrying 503s (waiting ``Retry-After``,
capped) and connection errors with the same key until a 201 or the deadline. Every
answer is recorded: status, latency, the worker that gave it, and when.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

PROBE_INTERVAL_SECONDS = 0.05
"""How often the app-route probe asks while the load runs."""

KINDS: tuple[tuple[str, Any], ...] = (("thumbs", "up"), ("rating", 4), ("text", "soak comment"))


@dataclass
class TraceRecord:
    """One ``POST /chat`` answer: the exchange the feedback will rate."""

    index: int
    message: str
    trace_id: str
    token: str
    reply: str
    worker: int
    finished: float


@dataclass
class PostRecord:
    """One feedback post, over all its attempts."""

    trace: TraceRecord
    kind: str
    key: str
    acked_id: str | None = None
    worker: int | None = None
    attempts: int = 0
    acked_at: float | None = None
    refused: int | None = None
    """The 4xx status that ended it, if one did."""


@dataclass
class Answer:
    """One HTTP answer (or failure) seen by the client."""

    route: str
    """``chat`` or ``post``."""
    at: float
    status: int | None
    """``None`` for a connection error or timeout."""
    seconds: float
    retry_after: str | None = None
    error: str | None = None
    """The exception's class name when there was no answer."""


@dataclass
class LoadResult:
    """Everything the client saw."""

    traces: list[TraceRecord] = field(default_factory=list)
    posts: list[PostRecord] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    deadline_hit: bool = False

    @property
    def acked(self) -> list[PostRecord]:
        """Posts that got a 201."""
        return [post for post in self.posts if post.acked_id is not None]

    def statuses(self, route: str) -> Counter[int | None]:
        """How often each status (``None``: connection error) answered ``route``."""
        return Counter(answer.status for answer in self.answers if answer.route == route)


class LoadClient:
    """Drives one run of the load against ``base_url`` (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        *,
        concurrency: int = 128,
        kinds: int = 2,
        retry_cap_seconds: float = 1.0,
        run_id: str = "soak",
    ) -> None:
        self.base_url = base_url
        self.concurrency = concurrency
        self.kinds = KINDS[:kinds]
        self.retry_cap_seconds = retry_cap_seconds
        self.run_id = run_id
        self.result = LoadResult()
        self.answers = self.result.answers
        """Where answers are recorded (the SIGTERM phase keeps its own)."""
        self.acked_count = 0
        self._next = 0
        self._deadline = 0.0

    def client(self) -> httpx.AsyncClient:
        """An HTTP client with one connection per runner."""
        limits = httpx.Limits(max_connections=self.concurrency,
                              max_keepalive_connections=self.concurrency)
        return httpx.AsyncClient(base_url=self.base_url, limits=limits,
                                 timeout=httpx.Timeout(30.0))

    def _note(self, route: str, started: float, response: httpx.Response | None,
              error: Exception | None = None) -> None:
        now = time.monotonic()
        status = response.status_code if response is not None else None
        retry_after = response.headers.get("retry-after") if response is not None else None
        self.answers.append(Answer(route, now, status, now - started, retry_after,
                                   type(error).__name__ if error else None))

    async def chat(self, http: httpx.AsyncClient, index: int) -> TraceRecord | None:
        """Ask the app one question (retrying connection errors); ``None`` past the deadline."""
        message = f"{self.run_id} question {index}: how are you?"
        while time.monotonic() < self._deadline:
            started = time.monotonic()
            try:
                response = await http.post("/chat", json={"message": message})
            except httpx.TransportError as exc:
                self._note("chat", started, None, exc)
                await asyncio.sleep(0.05)
                continue
            self._note("chat", started, response)
            if response.status_code != 200:
                await asyncio.sleep(0.05)
                continue
            body = response.json()
            record = TraceRecord(index, message, body["trace_id"], body["feedback_token"],
                                 body["reply"], int(response.headers["x-worker"]),
                                 time.monotonic())
            self.result.traces.append(record)
            return record
        return None

    async def post(self, http: httpx.AsyncClient, post: PostRecord, value: Any) -> None:
        """Post one feedback until it is acknowledged, refused for good, or the deadline."""
        body = {"trace_id": post.trace.trace_id, "type": post.kind, "value": value}
        headers = {"X-Feedback-Token": post.trace.token, "Idempotency-Key": post.key}
        while time.monotonic() < self._deadline:
            post.attempts += 1
            started = time.monotonic()
            try:
                response = await http.post("/feedback", json=body, headers=headers)
            except httpx.TransportError as exc:
                self._note("post", started, None, exc)
                await asyncio.sleep(0.05)
                continue
            self._note("post", started, response)
            if response.status_code == 201:
                post.acked_id = response.json()["feedback_id"]
                post.worker = int(response.headers["x-worker"])
                post.acked_at = time.monotonic()
                self.acked_count += 1
                return
            if response.status_code < 500:
                post.refused = response.status_code  # a 4xx is final: nothing to retry
                return
            wait = response.headers.get("retry-after", "1")
            seconds = float(wait) if wait.isdigit() else 1.0
            await asyncio.sleep(min(seconds, self.retry_cap_seconds))

    async def _runner(self, http: httpx.AsyncClient, traces: int) -> None:
        while self._next < traces and time.monotonic() < self._deadline:
            index = self._next
            self._next += 1
            trace = await self.chat(http, index)
            if trace is None:
                return
            for kind, value in self.kinds:
                post = PostRecord(trace, kind, f"{self.run_id}-{index}-{kind}")
                self.result.posts.append(post)
                await self.post(http, post, value)

    async def _probe(self, stop: asyncio.Event) -> None:
        """Keep asking the app's own route on a connection of its own, so that every fault
        window has app-route answers to judge even while every runner waits on a retry."""
        async with self.client() as http:
            count = 0
            while not stop.is_set() and time.monotonic() < self._deadline:
                started = time.monotonic()
                try:
                    response = await http.post(
                        "/chat", json={"message": f"{self.run_id} probe {count}"}
                    )
                except httpx.TransportError as exc:
                    self._note("chat", started, None, exc)
                else:
                    self._note("chat", started, response)
                count += 1
                await asyncio.sleep(PROBE_INTERVAL_SECONDS)

    def set_deadline(self, seconds: float) -> None:
        """Stop retrying ``seconds`` from now."""
        self._deadline = time.monotonic() + seconds

    async def run(self, traces: int, seconds: float) -> LoadResult:
        """Obtain ``traces`` answers and post on each, within ``seconds`` at most."""
        self.result.started = time.monotonic()
        self._deadline = self.result.started + seconds
        stop = asyncio.Event()
        probe = asyncio.create_task(self._probe(stop))
        try:
            async with self.client() as http:
                await asyncio.gather(
                    *(self._runner(http, traces) for _ in range(self.concurrency))
                )
        finally:
            stop.set()
            await probe
        self.result.finished = time.monotonic()
        self.result.deadline_hit = self._next < traces or self.result.finished >= self._deadline
        return self.result


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank); 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[rank]
