"""A real PgBouncer in transaction pooling mode, in front of the suite's PostgreSQL server.

    with running_pgbouncer(SERVER_URL, users={"app_service": "secret"}) as bouncer:
        url = bouncer.url(service_url, "app_test_1234")   # the same role, through the pooler

It listens on a free loopback port, sends every database name on to the same name on the
server (TCP, or the embedded server's unix socket directory), and is stopped at the end.

Where PgBouncer is not installed the tests using it skip, saying how to get it; with
REQUIRE_PGBOUNCER set (CI, see .ci/run) they fail instead.

PgBouncer refuses to run as root: as root it runs as the owner of the server's socket
directory (the embedded server's `pgserver`, whose data directory is 0700), else as
`postgres`, and its directory is handed to that user.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

INSTALL_HINT = "apt-get install pgbouncer"
REQUIRE_VARIABLE = "REQUIRE_PGBOUNCER"
# Debian installs it in /usr/sbin, which a developer's PATH may not include.
SEARCH_PATH = f"{os.environ.get('PATH', '')}{os.pathsep}/usr/sbin{os.pathsep}/usr/local/sbin"
STARTUP_TIMEOUT = 15.0


def find_pgbouncer() -> str | None:
    return shutil.which("pgbouncer", path=SEARCH_PATH)


def require_pgbouncer() -> str:
    """The pgbouncer executable; skips the test without it (fails with REQUIRE_PGBOUNCER)."""
    binary = find_pgbouncer()
    if binary is None:
        message = f"PgBouncer is not installed (`{INSTALL_HINT}` to run the pooler tests)"
        if os.environ.get(REQUIRE_VARIABLE, "") not in ("", "0"):
            pytest.fail(f"{message}; {REQUIRE_VARIABLE} is set, so this is a failure")
        pytest.skip(message)
    return binary


def server_address(server_url: str) -> tuple[str, int]:
    """(host or unix socket directory, port) of the server in `server_url`."""
    url = make_url(server_url)
    socket_dir = url.query.get("host")
    if isinstance(socket_dir, tuple):
        socket_dir = socket_dir[0]
    return (socket_dir or url.host or "127.0.0.1"), url.port or 5432


def system_user_for(host: str) -> pwd.struct_passwd | None:
    """Whom PgBouncer runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    if host.startswith("/"):
        owner = pwd.getpwuid(os.stat(host).st_uid)
        if owner.pw_uid != 0:
            return owner  # may enter the socket directory: it owns it
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return pwd.getpwnam("nobody")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def quoted(value: str) -> str:
    return '"{}"'.format(value.replace('"', '""'))


@dataclass
class PgBouncer:
    port: int
    pool_size: int
    directory: Path
    process: "subprocess.Popen[bytes]"
    host: str = "127.0.0.1"

    def url(self, server_url: str, database: str) -> str:
        """`server_url`'s role and password, to `database` through PgBouncer (asyncpg)."""
        return (
            make_url(server_url)
            .set(
                drivername="postgresql+asyncpg",
                host=self.host,
                port=self.port,
                database=database,
                query={},
            )
            .render_as_string(hide_password=False)
        )

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""


def write_config(
    directory: Path, *, port: int, server: tuple[str, int], users: Mapping[str, str], pool_size: int
) -> Path:
    host, server_port = server
    (directory / "userlist.txt").write_text(
        "".join(f"{quoted(user)} {quoted(password)}\n" for user, password in users.items())
    )
    ini = directory / "pgbouncer.ini"
    ini.write_text(
        f"""\
[databases]
; every database name: the same database on the suite's server
* = host={host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir = {directory}
auth_type = trust
auth_file = {directory / "userlist.txt"}
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 200
logfile = {directory / "pgbouncer.log"}
pidfile = {directory / "pgbouncer.pid"}
log_connections = 0
log_disconnections = 0
"""
    )
    return ini


@contextmanager
def running_pgbouncer(
    server_url: str, users: Mapping[str, str], pool_size: int = 3
) -> Iterator[PgBouncer]:
    """PgBouncer (pool_mode = transaction, `pool_size` server connections per database and
    role) in front of the server of `server_url`, for the roles in `users` (name: password;
    trusted, but the password is what PgBouncer logs in to the server with)."""
    binary = require_pgbouncer()
    host, server_port = server_address(server_url)
    user = system_user_for(host)
    directory = Path(tempfile.mkdtemp(prefix="app-pgbouncer-"))
    try:
        port = free_port()
        ini = write_config(
            directory, port=port, server=(host, server_port), users=users, pool_size=pool_size
        )
        if user is not None:
            for path in (directory, *directory.iterdir()):
                os.chown(path, user.pw_uid, user.pw_gid)
        with (directory / "stderr.log").open("wb") as stderr:
            process = subprocess.Popen(
                [binary, str(ini)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=subprocess.STDOUT,
                cwd=directory,
                start_new_session=True,  # not signalled with the test run: its teardown stops it
                user=user.pw_uid if user else None,
                group=user.pw_gid if user else None,
                extra_groups=[] if user else None,
            )
        bouncer = PgBouncer(port=port, pool_size=pool_size, directory=directory, process=process)
        try:
            wait_until_listening(bouncer)
            yield bouncer
        finally:
            stop(process)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def wait_until_listening(bouncer: PgBouncer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if bouncer.process.poll() is not None:
            output = (bouncer.directory / "stderr.log").read_text(errors="replace")
            raise AssertionError(f"pgbouncer exited ({bouncer.process.returncode}):\n{output}")
        try:
            with socket.create_connection((bouncer.host, bouncer.port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"pgbouncer did not listen on port {bouncer.port}:\n{bouncer.log()}")


def stop(process: "subprocess.Popen[bytes]", timeout: float = 10) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # immediate shutdown: closes every connection
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
