"""POST /feedback metadata reaches the store redacted, through the collector like every path."""

from __future__ import annotations

from feedback_asgi.capture.redaction import REDACTED
from feedback_asgi.kit import FeedbackKit
from tests.endpoint.apps import build, client


async def test_secret_keys_in_posted_metadata_are_redacted() -> None:
    kit = FeedbackKit.for_testing()
    surface = build("endpoint", kit)
    async with client(surface.app) as http:
        response = await http.post(
            surface.submit,
            json={"trace_id": "t-1", "type": "rating", "value": 3,
                  "metadata": {"Token": "abc", "note": "x", "max_tokens": 256}},
            headers={"X-Feedback-Token": kit.signer.sign("t-1")},
        )
    assert response.status_code == 201, response.text
    item = await kit.store.get(response.json()["feedback_id"])
    assert item is not None
    assert {key: item.metadata[key] for key in ("Token", "note", "max_tokens", "source")} == {
        "Token": REDACTED, "note": "x", "max_tokens": 256, "source": "http"}
