"""The pytest plugin, as a user enables it: ``pytest_plugins = ["feedback_asgi.testing.plugin"]``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from feedback_asgi.capture.exchange import session_subject, user_subject
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.testing.plugin import issue_token

USER_TEST = '''
    import httpx
    from starlette.applications import Starlette

    from feedback_asgi.kit import TESTING_SECRET_KEY
    from feedback_asgi.middleware import FeedbackMiddleware


    async def test_post_feedback_with_the_helper(feedback_kit, feedback_token):
        app = FeedbackMiddleware(Starlette(), kit=feedback_kit)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            ok = await http.post("/feedback", json={"trace_id": "t1", "type": "thumbs",
                                                    "value": "up"},
                                 headers={"X-Feedback-Token": feedback_token("t1", "u1")})
            wrong = await http.post("/feedback", json={"trace_id": "t2", "type": "thumbs",
                                                       "value": "up"},
                                    headers={"X-Feedback-Token": feedback_token("t1")})
        assert ok.status_code == 201
        assert wrong.status_code == 403
        assert len(await feedback_kit.store.find_by_trace("t1")) == 1
        assert feedback_kit.config.secret_key.get_secret_value() == TESTING_SECRET_KEY


    def test_each_test_gets_a_fresh_kit(feedback_kit):
        assert feedback_kit.store.find_by_trace is not None
        assert not feedback_kit.started
'''


def test_plugin_in_a_users_project(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["feedback_asgi.testing.plugin"]\n')
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TEST))
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
         str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_issue_token_verifies_for_its_trace_only() -> None:
    kit = FeedbackKit.for_testing()
    token = issue_token(kit, "trace-x", session_id="someone")
    claims = kit.signer.verify(token, "trace-x").unwrap()
    assert claims.trace_id == "trace-x"
    assert kit.signer.issued_to(claims, session_subject("someone"))
    assert not kit.signer.issued_to(claims, user_subject("someone"))
    assert kit.signer.issued_to(
        kit.signer.verify(issue_token(kit, "t", user_id="u1"), "t").unwrap(), user_subject("u1"))
    assert kit.signer.verify(issue_token(kit, "t"), "t").unwrap().anonymous
    assert kit.signer.verify(token, "trace-y").is_err()
