"""A pytest plugin for your own tests: enable it with one line in ``conftest.py``::

    pytest_plugins = ["feedback_asgi.testing.plugin"]

Fixtures:

* ``feedback_kit``: a fresh :meth:`FeedbackKit.for_testing` kit per test (in-memory
  stores, a fixed secret, no background threads); it starts itself on first use.
* ``feedback_token``: a function ``(trace_id, *, session_id=None, user_id=None) -> str``
  returning a valid feedback token for that trace, signed by ``feedback_kit``.

::

    async def test_thumbs_up(feedback_kit, feedback_token):
        app = build_app(kit=feedback_kit)
        ...
        response = await client.post(
            "/feedback",
            json={"trace_id": "t1", "type": "thumbs", "value": "up"},
            headers={"X-Feedback-Token": feedback_token("t1")},
        )
        assert response.status_code == 201
        assert len(await feedback_kit.store.find_by_trace("t1")) == 1

The fixtures are plain (synchronous) fixtures, so they work with pytest-asyncio in strict
or auto mode, with anyio, and with Starlette's synchronous ``TestClient``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from feedback_asgi.capture.exchange import session_subject, user_subject
from feedback_asgi.kit import FeedbackKit

__all__ = ["feedback_kit", "feedback_token", "issue_token"]


def issue_token(
    kit: FeedbackKit,
    trace_id: str,
    subject: str = "",
    *,
    session_id: str | None = None,
    user_id: str | None = None,
) -> str:
    """A valid feedback token for ``trace_id``, signed by ``kit``, issued to the session
    ``session_id`` or the user ``user_id`` as the middleware would, or to a raw
    ``subject``; anonymous by default."""
    if session_id is not None:
        subject = session_subject(session_id)
    elif user_id is not None:
        subject = user_subject(user_id)
    return kit.signer.sign(trace_id, subject)


@pytest.fixture
def feedback_kit() -> FeedbackKit:
    """A fresh test kit: in-memory stores, fixed secret, no background threads."""
    return FeedbackKit.for_testing()


@pytest.fixture
def feedback_token(feedback_kit: FeedbackKit) -> Callable[..., str]:
    """``feedback_token(trace_id, *, session_id=None, user_id=None)``: a valid token signed
    by ``feedback_kit`` (anonymous unless issued to a session or user)."""

    def make(trace_id: str, subject: str = "", *, session_id: str | None = None,
             user_id: str | None = None) -> str:
        return issue_token(feedback_kit, trace_id, subject, session_id=session_id,
                           user_id=user_id)

    return make
