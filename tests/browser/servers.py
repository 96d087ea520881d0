"""The example apps served by a real uvicorn in a subprocess, on 127.0.0.1 and a free port.

Each gets a fresh SQLite file; the test reads what the app stored from that file.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SECRET = "browser-tests-feedback-secret-0123456789"
ADMIN_TOKEN = "browser-tests-admin-token-0123456789"
"""FEEDBACK_ASGI_ADMIN_TOKEN of every served app: signs in on the dashboard."""
DJANGO_USER, DJANGO_PASSWORD = "alice", "browser-test-password-42"
START_TIMEOUT = 30.0

APPS = {
    "fastapi": "example_apps.fastapi_chat.app:app",
    "starlette": "example_apps.starlette_app.app:app",
    "django": "example_apps.django_site.asgi:application",
}


@dataclass
class ServedApp:
    """One example app running under uvicorn."""

    name: str
    url: str
    database_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL if it lingers)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _environment(name: str, database: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FEEDBACK_ASGI_SECRET_KEY": SECRET,
           "FEEDBACK_ASGI_ADMIN_TOKEN": ADMIN_TOKEN}
    env.pop("FEEDBACK_ASGI_REDIS_URL", None)
    if name == "django":
        env.update(DJANGO_SETTINGS_MODULE="example_apps.django_site.settings",
                   DJANGO_DB=str(database), DJANGO_DEBUG="1")
    else:
        env["FEEDBACK_ASGI_DATABASE_URL"] = f"sqlite+aiosqlite:///{database}"
    return env


def _prepare_django(env: dict[str, str], workdir: Path) -> None:
    manage = [sys.executable, str(ROOT / "example_apps" / "django_site" / "manage.py")]
    for args, extra in (
        (["migrate", "-v0"], {}),
        (["createsuperuser", "--noinput", "--username", DJANGO_USER,
          "--email", "alice@example.invalid"], {"DJANGO_SUPERUSER_PASSWORD": DJANGO_PASSWORD}),
    ):
        done = subprocess.run([*manage, *args], env={**env, **extra}, cwd=workdir,
                              capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed: {done.stderr[-2000:]}")


def start(name: str, workdir: Path) -> ServedApp:
    """Start example app ``name`` on a fresh SQLite file in ``workdir``; wait until it answers."""
    database = workdir / f"{name}.sqlite3"
    env = _environment(name, database)
    if name == "django":
        _prepare_django(env, workdir)
    port = free_port()
    log = workdir / f"{name}-server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", APPS[name], "--host", "127.0.0.1",
             "--port", str(port), "--no-access-log", "--log-level", "warning"],
            env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
        )
    served = ServedApp(name, f"http://127.0.0.1:{port}", f"sqlite+aiosqlite:///{database}",
                       process, log)
    probe = "/accounts/login/" if name == "django" else "/"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(served.url + probe, timeout=1.0).status_code == 200:
                return served
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    served.stop()
    raise RuntimeError(f"{name} did not answer within {START_TIMEOUT} s: {log.read_text()[-2000:]}")
