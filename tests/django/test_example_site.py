"""The example Django site: migrate, chat, vote, read the stats (in a subprocess of its own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MANAGE = ROOT / "example_apps" / "django_site" / "manage.py"

SCRIPT = """
import json
from django.test import Client
client = Client()
answer = client.post("/chat/", {"message": "hello big world"}, content_type="application/json")
body = answer.json()
assert answer["X-Trace-Id"] == body["trace_id"], answer.headers
vote = client.post("/feedback/", {"trace_id": body["trace_id"], "type": "thumbs", "value": "up"},
                   content_type="application/json",
                   headers={"X-Feedback-Token": body["feedback_token"]})
print(json.dumps({"reply": body["reply"], "vote": vote.status_code}))
"""


def run(tmp_path: Path, *args: str) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "example_apps.django_site.settings",
           "DJANGO_DB": str(tmp_path / "site.sqlite3"), "DJANGO_DEBUG": "0"}
    done = subprocess.run([sys.executable, str(MANAGE), *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_example_site_end_to_end(tmp_path: Path) -> None:
    from example_apps.responder import local_model

    run(tmp_path, "check", "--fail-level", "WARNING")
    run(tmp_path, "migrate", "-v0")
    outcome = json.loads(run(tmp_path, "shell", "-c", SCRIPT).strip().splitlines()[-1])
    assert outcome == {"reply": local_model("hello big world"), "vote": 201}
    figures = json.loads(run(tmp_path, "feedback_stats", "--json"))
    assert figures["totals"]["thumbs_up"] == 1
