"""Django under WSGI (a throwaway event loop per request) with Redis: the POST /feedback rate
limit is shared through Redis and answers 201 then 429, never 503."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client, override_settings

from feedback_asgi.integrations.django.conf import reset_kit


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_post_limit_works_under_wsgi_with_redis(
    redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = {**settings.FEEDBACK_ASGI, "redis_url": redis_url, "redis_key_prefix": redis_prefix,
              "connect_timeout_seconds": 0.5, "rate_limit_per_minute": 3}
    statuses = []
    with override_settings(FEEDBACK_ASGI=config):
        reset_kit()
        for attempt in range(5):
            if attempt == 2:
                reset_kit()  # another worker: a new kit, the same Redis buckets
            answer = Client().get("/sync/")
            posted = Client().post(
                "/feedback/", {"trace_id": answer["X-Trace-Id"], "type": "thumbs", "value": 1},
                content_type="application/json",
                headers={"X-Feedback-Token": answer["X-Feedback-Token"]})
            statuses.append(posted.status_code)
    reset_kit()
    assert statuses == [201, 201, 201, 429, 429]
    assert not [r for r in caplog.records if "endpoint failed" in r.getMessage()]
