"""scripts/run.sh as a user runs it: refuses a taken port or bad settings before touching the
database, says "Serving" once it serves, and two of them share one embedded PostgreSQL.

Each run gets its own data directory (EMBEDDED_POSTGRES_DIR) and ports; bounded throughout.
"""

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dotenv import dotenv_values

from tests.live_service import API, ROOT_DIR, embedded_datadir, embedded_postgres, free_port

RUN_SH = ROOT_DIR / "scripts" / "run.sh"
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


def run_env(datadir: Path, port: int, **extra: str) -> dict[str, str]:
    """The environment of a user without DATABASE_URL (the embedded database) on `port`."""
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(HOST="127.0.0.1", PORT=str(port), EMBEDDED_POSTGRES_DIR=str(datadir), **extra)
    return env


def run_sh(datadir: Path, port: int, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(RUN_SH)],
        env=run_env(datadir, port, **extra),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )


@pytest.fixture
def embedded_only() -> None:
    if dotenv_values(ROOT_DIR / ".env").get("DATABASE_URL"):
        pytest.skip("the root .env sets DATABASE_URL: run.sh would not use an embedded database")


def test_a_taken_port_stops_run_sh_before_the_database(tmp_path: Path) -> None:
    datadir = tmp_path / "postgres"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = run_sh(datadir, taken.getsockname()[1])
    assert done.returncode != 0
    assert "cannot listen on 127.0.0.1" in done.stderr
    assert "Serving" not in done.stdout
    assert not datadir.parent.joinpath("postgres.users").exists()
    assert not datadir.exists()


def test_invalid_settings_stop_run_sh_before_the_database(tmp_path: Path) -> None:
    datadir = tmp_path / "postgres"
    done = run_sh(datadir, free_port(), DB_POOL_SIZE="0")
    assert done.returncode != 0
    assert "DB_POOL_SIZE" in done.stderr
    assert not datadir.exists()


class RunSh:
    """One `bash scripts/run.sh` in the background; its output collected line by line."""

    def __init__(self, datadir: Path, port: int) -> None:
        self.port = port
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            ["bash", str(RUN_SH)],
            env=run_env(datadir, port),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while text not in self.output():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.1)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.reader.join(5)

    def ready(self) -> int:
        return httpx.get(f"http://127.0.0.1:{self.port}{API}/utils/ready/").status_code


@pytest.fixture
def datadir() -> Iterator[Path]:
    with embedded_datadir() as path:
        yield path


def test_two_run_sh_share_the_embedded_database(embedded_only: None, datadir: Path) -> None:
    """The first to stop leaves the database to the other; the last one stops it."""
    first = RunSh(datadir, free_port())
    second: RunSh | None = None
    try:
        first.wait_for("==> Serving on")
        served = first.output()
        # "Serving" comes after the service answered its health check, not before.
        assert served.index("/utils/health-check/") < served.index("==> Serving on")
        second = RunSh(datadir, free_port())
        second.wait_for("==> Serving on")
        assert (first.ready(), second.ready()) == (200, 200)

        assert first.stop() == 0, first.output()
        assert "still used by process" in first.output()
        assert second.ready() == 200
        assert (datadir / "postmaster.pid").exists()

        assert second.stop() == 0, second.output()
        assert "==> Stopped" in second.output()
        assert not (datadir / "postmaster.pid").exists()
    finally:
        for run in (first, second):
            if run is not None:
                run.stop()
        if (datadir / "postmaster.pid").exists():  # never leave a server behind
            embedded_postgres("stop", datadir)
