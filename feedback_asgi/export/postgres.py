"""The finetune export's fast path on PostgreSQL + asyncpg: the server renders the lines.

Building a ``FeedbackItem`` per row and encoding it in Python costs more than the whole
raw dump. Here one server-side cursor (in a read-only REPEATABLE READ transaction) reads
the live rows of the window in ``(created_at, id)`` order; for the common row (plain-text
input and answer) PostgreSQL concatenates the finished line from JSON string literals
(``jsonb::text`` and ``to_json(text)`` escape exactly as ``json.dumps(ensure_ascii=False)``:
``\\" \\\\ \\b \\f \\n \\r \\t`` and ``\\u00xx`` for other control characters) and Python
only joins the lines. Any other row comes back as columns and is rendered by the same
Python code as the generic path (:func:`feedback_asgi.export.records.finetune_line`).
Skipped rows come back as a reason only. The rows are ordered in the innermost query (an
index scan on ``(created_at, id)``) and rendered above it, so PostgreSQL never sorts the
rendered text. ``OFFSET 0`` keeps each level a real subquery: flattened, every reference
to ``line`` or ``inp`` would compute it again.

Only the default format takes this path; ``--format openai`` uses the generic one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from feedback_asgi.core.exceptions import StorageUnavailableError
from feedback_asgi.export.exchange import answer_text, prompt_messages
from feedback_asgi.export.options import EXPORT_FILTERS, ExportFormat, ExportOptions, ExportReport
from feedback_asgi.export.records import FinetuneFacts, finetune_line
from feedback_asgi.storage.base import FeedbackStoreProtocol

__all__ = ["fast_finetune", "postgres_store"]

FETCH_ROWS = 5000

_SIGN = """CASE kind WHEN 'thumbs' THEN coalesce(thumbs, 0)
  WHEN 'rating' THEN CASE WHEN rating >= $3 THEN 1 WHEN rating <= $4 THEN -1 ELSE 0 END
  WHEN 'correction' THEN 1 WHEN 'text' THEN 0 END"""

_FALLBACK_COLUMNS = (
    "sign", "inp::text", "ans::text", "id", "kind", "trace_id", "model", "provider", "intent",
    "project", "created_at",
    "CASE WHEN jsonb_typeof(comment) = 'string' THEN comment #>> '{}' END",
)

_QUERY = """
SELECT line, skip, {fallback}
FROM (
  SELECT *, CASE WHEN skip IS NULL AND jsonb_typeof(inp) = 'string' AND inp <> '""'::jsonb
              AND jsonb_typeof(ans) = 'string' AND ans <> '""'::jsonb
       THEN concat('{{"messages":[{{"role":"user","content":', inp::text,
         '}},{{"role":"assistant","content":', ans::text, '}}],"weight":',
         CASE sign WHEN 1 THEN $5 WHEN -1 THEN $6 ELSE $7 END,
         ',"metadata":{{"feedback_id":', to_json(id)::text,
         ',"feedback_type":', to_json(kind)::text,
         ',"polarity":', CASE sign WHEN 1 THEN '"positive"' WHEN -1 THEN '"negative"'
                              ELSE '"neutral"' END,
         ',"trace_id":', coalesce(to_json(trace_id)::text, 'null'),
         ',"model":', coalesce(to_json(model)::text, 'null'),
         ',"provider":', coalesce(to_json(provider)::text, 'null'),
         ',"intent":', coalesce(to_json(intent)::text, 'null'),
         ',"project":', coalesce(to_json(project)::text, 'null'),
         ',"created_at":"', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS'),
         CASE WHEN extract(microseconds FROM created_at) % 1000000 = 0 THEN ''
              ELSE to_char(created_at AT TIME ZONE 'UTC', '.US') END,
         '+00:00","comment":',
         CASE WHEN jsonb_typeof(comment) = 'string' THEN comment::text ELSE 'null' END,
         E'}}}}\\n')
       END AS line
  FROM (
    SELECT id, kind, created_at, trace_id, model, provider, intent, project, sign,
           context -> 'input' AS inp,
           CASE WHEN kind = 'correction' THEN value -> 'corrected' ELSE context -> 'output' END
             AS ans,
           metadata -> 'comment' AS comment,
           CASE WHEN sign IS NULL THEN 'not_applicable'
                WHEN sign = 0 AND NOT $8 THEN 'neutral' END AS skip
    FROM (SELECT id, kind, created_at, trace_id, model, provider, intent, project, value,
                 context, metadata, {sign} AS sign
          FROM ai_feedback
          WHERE is_live AND created_at >= $1 AND created_at < $2{filters}
          ORDER BY created_at, id) AS live
    OFFSET 0
  ) AS shaped
  OFFSET 0
) AS rendered
"""


def postgres_store(store: FeedbackStoreProtocol) -> Any | None:
    """The ``SqlFeedbackStore`` on PostgreSQL + asyncpg behind ``store``, else ``None``."""
    inner = getattr(store, "store", None)  # CachedFeedbackStore wraps the SQL store
    if inner is not None and type(store).__name__ == "CachedFeedbackStore":
        store = inner
    from feedback_asgi.storage.sql.store import SqlFeedbackStore

    if not isinstance(store, SqlFeedbackStore):
        return None
    if store.dialect_name != "postgresql" or store.url.get_driver_name() != "asyncpg":
        return None
    return store


def _query(options: ExportOptions) -> tuple[str, list[Any]]:
    def weight(value: float) -> str:
        return json.dumps(value)

    args: list[Any] = [
        options.since, options.until, options.positive_rating, options.negative_rating,
        weight(options.positive_weight), weight(options.negative_weight),
        weight(options.neutral_weight), options.include_neutral,
    ]
    filters = ""
    for column in EXPORT_FILTERS:
        wanted = getattr(options, column)
        if wanted is not None:
            args.append(wanted)
            filters += f" AND {column} = ${len(args)}"
    fallback = ", ".join(
        f"CASE WHEN line IS NULL AND skip IS NULL THEN {column} END" for column in _FALLBACK_COLUMNS
    )
    return _QUERY.format(sign=_SIGN, filters=filters, fallback=fallback), args


def _fallback(row: Any, options: ExportOptions, report: ExportReport) -> str | None:
    """Render a row the server did not: the same Python as the generic path."""
    prompt = prompt_messages(json.loads(row[3]) if row[3] is not None else None)
    answer_json = json.loads(row[4]) if row[4] is not None else None
    if row[6] == "correction":
        answer = answer_json if isinstance(answer_json, str) and answer_json else None
    else:
        answer = answer_text(answer_json)
    if prompt is None or answer is None:
        report.skipped["no_exchange"] += 1
        return None
    facts = FinetuneFacts(row[5], row[6], row[7], row[8], row[9], row[10], row[11], row[12], row[13])
    return finetune_line(prompt, answer, row[2], facts, options)


def fast_finetune(
    store: FeedbackStoreProtocol, options: ExportOptions, report: ExportReport
) -> AsyncIterator[str] | None:
    """The fast path's chunks, or ``None`` when it does not apply to this store or format."""
    if options.format is not ExportFormat.DEFAULT:
        return None
    sql_store = postgres_store(store)
    if sql_store is None:
        return None
    return _stream(sql_store, options, report)


async def _stream(sql_store: Any, options: ExportOptions, report: ExportReport) -> AsyncIterator[str]:
    import asyncpg
    from sqlalchemy.exc import SQLAlchemyError

    query, args = _query(options)
    try:
        engine = await sql_store.read_engine()
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            pg = raw.driver_connection
            async with pg.transaction(isolation="repeatable_read", readonly=True):
                cursor = await pg.cursor(query, *args)
                while rows := await cursor.fetch(FETCH_ROWS):
                    yield _render(rows, options, report)
    except (SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError,
            TimeoutError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise StorageUnavailableError(
            f"feedback database unavailable: {type(exc).__name__}{': ' + detail if detail else ''}"
        ) from exc


def _render(rows: list[Any], options: ExportOptions, report: ExportReport) -> str:
    lines: list[str] = []
    for row in rows:
        line = row[0]
        if line is None:
            skip = row[1]
            if skip is not None:
                report.skipped[skip] += 1
                continue
            line = _fallback(row, options, report)
            if line is None:
                continue
        lines.append(line)
    report.scanned += len(rows)
    report.written += len(lines)
    return "".join(lines)
