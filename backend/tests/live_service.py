"""Black-box helpers: an embedded PostgreSQL of our own and the real service in a subprocess.

For the tests that stop the database or the service under load: they only see what a client
(and an operator with pg_ctl) sees, not the app's internals.
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT_DIR = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
EMBEDDED_POSTGRES = ROOT_DIR / "scripts" / "embedded_postgres.py"
API = "/api/v1"
STARTUP_TIMEOUT = 60.0  # a bound on a hang on a busy machine, not a speed requirement
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedded_postgres(action: str, datadir: Path) -> str:
    """Start (prints the URL) or stop (pg_ctl stop -m fast) the embedded server in datadir."""
    done = subprocess.run(
        [sys.executable, str(EMBEDDED_POSTGRES), action, str(datadir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"embedded_postgres.py {action}: {done.stderr}"
    return done.stdout.strip()


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    # Nothing of the suite's own database: this service has its own server.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("DB_") and key != "MIGRATIONS_DATABASE_URL"
    }
    env.update(
        DATABASE_URL=database_url,
        ENVIRONMENT="local",
        SECRET_KEY=secrets.token_urlsafe(32),
        PYTHONPATH=str(ROOT_DIR / "backend"),
        **extra,
    )
    return env


@contextmanager
def embedded_datadir() -> Iterator[Path]:
    """A data directory for an embedded server, outside pytest's basetemp: a concurrent
    pytest run resets /tmp/pytest-of-<user> to 0700, which locks out the server's own
    system user (as root, pgserver runs PostgreSQL as `pgserver`)."""
    with tempfile.TemporaryDirectory(prefix="app-embedded-pg-") as parent:
        yield Path(parent) / "postgres"


@contextmanager
def migrated_embedded_database(datadir: Path) -> Iterator[str]:
    """A fresh embedded PostgreSQL in datadir, migrated to head; stopped at the end."""
    url = embedded_postgres("start", datadir)
    try:
        subprocess.run(
            [str(BIN_DIR / "alembic"), "upgrade", "head"],
            cwd=ROOT_DIR,
            env=service_env(url),
            capture_output=True,
            timeout=120,
            check=True,
        )
        yield url
    finally:
        embedded_postgres("stop", datadir)


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running_service(database_url: str, log: Path, **extra_env: str) -> Iterator[Service]:
    """uvicorn serving the app on a free loopback port, ready; stopped (bounded) at the end."""
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(BIN_DIR / "uvicorn"),
                "app.main:app",
                "--app-dir",
                "backend",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--timeout-graceful-shutdown",
                "10",
            ],
            cwd=ROOT_DIR,
            env=service_env(database_url, **extra_env),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    service = Service(process=process, base_url=f"http://127.0.0.1:{port}", log=log)
    try:
        wait_until_healthy(service)
        yield service
    finally:
        stop(process)


def wait_until_healthy(service: Service) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise AssertionError(f"the service exited:\n{service.output()}")
        try:
            if httpx.get(f"{service.base_url}{API}/utils/health-check/").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the service did not start:\n{service.output()}")


def stop(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def sign_up(base_url: str) -> tuple[str, dict[str, str]]:
    """A new tenant's owner: (tenant id, bearer headers)."""
    email = f"owner-{secrets.token_hex(4)}@example.com"
    with httpx.Client(base_url=base_url, timeout=30) as http:
        signup = http.post(
            f"{API}/users/signup",
            json={"email": email, "password": PASSWORD, "tenant_name": "Live"},
        )
        assert signup.status_code == 201, signup.text
        login = http.post(
            f"{API}/login/access-token", data={"username": email, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    return signup.json()["tenant_id"], {"Authorization": f"Bearer {token}"}
