"""The durable-write benchmark's app: ``POST /feedback`` answered 201 only after COMMIT.

``BENCH_VARIANT`` picks the implementation:

* ``feedback``: a FastAPI app with :class:`~feedback_asgi.middleware.FeedbackMiddleware`,
  which serves ``POST /feedback`` itself (token check, validation, one vote per submitter,
  group commit) on ``BENCH_DB_URL`` (PostgreSQL or SQLite);
* ``sqlalchemy``: a hand-written FastAPI endpoint, SQLAlchemy 2 async Core + asyncpg,
  one ``INSERT`` and ``COMMIT`` per request (pool 20);
* ``asyncpg``: the same with a raw asyncpg pool (20 connections), one autocommit INSERT;
* ``aiosqlite``: SQLAlchemy async Core + aiosqlite on a SQLite file in WAL mode,
  synchronous=NORMAL, pool 1 (SQLite has one writer);
* ``nostore``: the hand-written endpoint's validation and row building, no database (the
  ceiling).

The hand-written endpoints write table ``bench_feedback`` (made by ``bench_durable.py``) and
read the token header without checking it, as such endpoints usually do.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

VARIANT = os.environ.get("BENCH_VARIANT", "feedback")
DB_URL = os.environ.get("BENCH_DB_URL", "")
SECRET = "bench-secret-key-0123456789abcdef"
INSERT = ("INSERT INTO bench_feedback (id, created_at, type, value, comment, metadata, trace_id)"
          " VALUES ($1, $2, $3, $4, $5, $6, $7)")


class FeedbackIn(BaseModel):
    trace_id: str
    type: str
    value: Any
    comment: str | None = None
    metadata: dict[str, Any] = {}


def _row(body: FeedbackIn) -> dict[str, Any]:
    return {"id": uuid.uuid4(), "created_at": datetime.now(UTC), **body.model_dump()}


state: dict[str, Any] = {}


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    if VARIANT in ("feedback", "nostore"):
        yield
        return
    if VARIANT == "asyncpg":
        import asyncpg

        state["pool"] = await asyncpg.create_pool(
            DB_URL.replace("postgresql+asyncpg://", "postgresql://"), min_size=20, max_size=20)
        yield
        await state["pool"].close()
        return
    from sqlalchemy import JSON, Column, DateTime, MetaData, Table, Text, Uuid, event
    from sqlalchemy.ext.asyncio import create_async_engine

    state["table"] = Table(
        "bench_feedback", MetaData(),
        Column("id", Uuid, primary_key=True), Column("created_at", DateTime(timezone=True)),
        Column("type", Text), Column("value", JSON), Column("comment", Text),
        Column("metadata", JSON), Column("trace_id", Text),
    )
    if VARIANT == "aiosqlite":
        engine = create_async_engine(DB_URL, pool_size=1, max_overflow=0)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()
    else:
        engine = create_async_engine(DB_URL, pool_size=20, max_overflow=0)
    state["engine"] = engine
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)

if VARIANT == "feedback":
    from feedback_asgi.core.config import FeedbackConfig
    from feedback_asgi.kit import FeedbackKit
    from feedback_asgi.middleware import FeedbackMiddleware

    kit = FeedbackKit(FeedbackConfig(database_url=DB_URL, secret_key=SECRET))
    app.add_middleware(FeedbackMiddleware, kit=kit)

elif VARIANT in ("sqlalchemy", "aiosqlite"):

    @app.post("/feedback", status_code=201)
    async def post_core(body: FeedbackIn) -> dict[str, str]:
        row = _row(body)
        async with state["engine"].begin() as conn:  # BEGIN; INSERT; COMMIT
            await conn.execute(state["table"].insert(), row)
        return {"status": "success", "feedback_id": str(row["id"])}

elif VARIANT == "asyncpg":

    @app.post("/feedback", status_code=201)
    async def post_asyncpg(body: FeedbackIn) -> dict[str, str]:
        r = _row(body)
        await state["pool"].execute(INSERT, r["id"], r["created_at"], r["type"],
                                    json.dumps(r["value"]), r["comment"],
                                    json.dumps(r["metadata"]), r["trace_id"])
        return {"status": "success", "feedback_id": str(r["id"])}

elif VARIANT == "nostore":

    @app.post("/feedback", status_code=201)
    async def post_nostore(body: FeedbackIn) -> dict[str, str]:
        return {"status": "success", "feedback_id": str(_row(body)["id"])}

else:
    raise SystemExit(f"unknown BENCH_VARIANT {VARIANT!r}")
