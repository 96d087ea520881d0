"""build_store / build_exchange_store pick the backend from the config and never connect."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.exceptions import StorageUnavailableError
from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.core.result import Err, Ok
from feedback_asgi.storage.base import ExchangeStoreProtocol, FeedbackStoreProtocol
from feedback_asgi.storage.factory import build_exchange_store, build_store, is_memory_url
from feedback_asgi.storage.memory import MemoryExchangeStore, MemoryFeedbackStore
from feedback_asgi.storage.redis import CachedFeedbackStore, RedisExchangeStore
from feedback_asgi.storage.sql.store import SqlFeedbackStore

NOWHERE_PG = "postgresql+asyncpg://postgres@127.0.0.1:9/none"
NOWHERE_REDIS = "redis://127.0.0.1:9/0"


def test_memory_url() -> None:
    assert is_memory_url("memory://")
    assert is_memory_url("MEMORY://")
    assert not is_memory_url("sqlite+aiosqlite:///memory.db")
    config = FeedbackConfig(database_url="memory://", exchange_max_items=7, exchange_ttl_seconds=9)
    store = build_store(config)
    assert isinstance(store, MemoryFeedbackStore)
    exchanges = build_exchange_store(config)
    assert isinstance(exchanges, MemoryExchangeStore)
    assert (exchanges.max_items, exchanges.default_ttl) == (7, 9)


def test_sql_url_builds_a_sql_store_with_the_config(tmp_path: Path) -> None:
    config = FeedbackConfig(database_url=f"sqlite:///{tmp_path / 'f.db'}", group_commit_max_batch=3)
    store = build_store(config)
    assert isinstance(store, SqlFeedbackStore)
    assert isinstance(store, FeedbackStoreProtocol)
    assert store.config is config
    assert store.url.drivername == "sqlite+aiosqlite"
    assert not (tmp_path / "f.db").exists()


async def test_unreachable_database_still_gives_a_store_that_answers_err() -> None:
    store = build_store(FeedbackConfig(database_url=NOWHERE_PG, connect_timeout_seconds=0.5))
    result = await store.save(FeedbackItem("thumbs", 1))
    assert isinstance(result, Err)
    assert isinstance(result.error, StorageUnavailableError)
    await store.close()


async def test_redis_url_wraps_the_store_and_shares_exchanges(tmp_path: Path) -> None:
    config = FeedbackConfig(
        database_url=f"sqlite:///{tmp_path / 'c.db'}",
        redis_url=NOWHERE_REDIS,
        redis_key_prefix="fa_factory:",
        cache_ttl_seconds=12,
        exchange_ttl_seconds=34,
        connect_timeout_seconds=0.3,
    )
    store = build_store(config)
    assert isinstance(store, CachedFeedbackStore)
    assert isinstance(store.store, SqlFeedbackStore)
    assert (store.prefix, store.ttl) == ("fa_factory:", 12)
    pool_kwargs = store.redis.connection_pool.connection_kwargs
    assert pool_kwargs["socket_connect_timeout"] == 0.3
    exchanges = build_exchange_store(config)
    assert isinstance(exchanges, RedisExchangeStore)
    assert isinstance(exchanges, ExchangeStoreProtocol)
    assert (exchanges.prefix, exchanges.default_ttl) == ("fa_factory:", 34)
    # Redis is down: the cache steps aside and the database still takes the write.
    item = FeedbackItem("thumbs", 1, context={"session_id": "s"})
    assert await store.save(item) == Ok(item.id)
    assert [i.id for i in await store.find_by_session("s")] == [item.id]
    await store.close()
    await exchanges.close()


def test_importing_the_factory_loads_no_sqlalchemy_or_redis() -> None:
    code = (
        "import sys, feedback_asgi.storage.factory as f; "
        "f.build_store(f.FeedbackConfig(database_url='memory://')); "
        "print(sorted(m for m in ('sqlalchemy', 'redis', 'asyncpg') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
