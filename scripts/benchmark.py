"""Load a running service and report throughput, latency and the server's memory.

    bash scripts/run.sh &                      # or any running instance on this machine
    .venv/bin/python scripts/benchmark.py --url http://127.0.0.1:8000 --seconds 10

It signs up its own tenant, seeds projects and tasks, then runs a fixed mix of requests
from `--concurrency` workers for `--seconds` (bounded; loopback addresses only), and
prints requests/s with p50/p95/p99 latency per endpoint. With `--pid`, it also prints the
server process's peak RSS. Compare two builds by running both on the same machine.
"""

import argparse
import asyncio
import secrets
import statistics
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlparse

import httpx

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


async def seed(client: httpx.AsyncClient, api: str) -> tuple[dict[str, str], str, str]:
    email = f"bench-{secrets.token_hex(4)}@example.com"
    password = "benchmark password"
    response = await client.post(
        f"{api}/users/signup",
        json={"email": email, "password": password, "tenant_name": "Benchmark"},
    )
    response.raise_for_status()
    token = await client.post(
        f"{api}/login/access-token", data={"username": email, "password": password}
    )
    token.raise_for_status()
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    project = await client.post(f"{api}/projects/", json={"name": "Bench"}, headers=headers)
    project.raise_for_status()
    project_id = project.json()["id"]
    for i in range(200):
        created = await client.post(
            f"{api}/tasks/",
            json={"project_id": project_id, "title": f"Task {i}", "status": "todo"},
            headers=headers,
        )
        created.raise_for_status()
    return headers, project_id, email


async def worker(
    client: httpx.AsyncClient,
    api: str,
    headers: dict[str, str],
    project_id: str,
    deadline: float,
    samples: dict[str, list[float]],
    errors: dict[str, int],
) -> None:
    task_id: str | None = None
    step = 0
    while time.perf_counter() < deadline:
        step += 1
        if step % 10 == 0:
            name, request = (
                "POST /tasks/",
                client.build_request(
                    "POST",
                    f"{api}/tasks/",
                    json={"project_id": project_id, "title": "x"},
                    headers=headers,
                ),
            )
        elif step % 10 == 5 and task_id:
            name, request = (
                "PATCH /tasks/{id}",
                client.build_request(
                    "PATCH", f"{api}/tasks/{task_id}", json={"status": "done"}, headers=headers
                ),
            )
        elif step % 3 == 0:
            name, request = (
                "GET /tasks/?limit=50",
                client.build_request(
                    "GET",
                    f"{api}/tasks/",
                    params={"project_id": project_id, "limit": 50},
                    headers=headers,
                ),
            )
        elif step % 3 == 1:
            name, request = (
                "GET /users/me",
                client.build_request("GET", f"{api}/users/me", headers=headers),
            )
        else:
            name, request = (
                "GET /projects/",
                client.build_request("GET", f"{api}/projects/", headers=headers),
            )
        started = time.perf_counter()
        response = await client.send(request)
        samples[name].append(time.perf_counter() - started)
        if response.status_code >= 400:
            errors[name] += 1
        elif name == "POST /tasks/":
            task_id = response.json()["id"]


def peak_rss_mib(pid: int) -> float | None:
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pid", type=int, help="server process id, for its peak RSS")
    args = parser.parse_args()
    if urlparse(args.url).hostname not in LOOPBACK:
        raise SystemExit("benchmark only a service on this machine (loopback address)")
    if not 0 < args.seconds <= 300:
        raise SystemExit("--seconds must be between 0 and 300")

    api = f"{args.url.rstrip('/')}/api/v1"
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        headers, project_id, email = await seed(client, api)
        samples: dict[str, list[float]] = defaultdict(list)
        errors: dict[str, int] = defaultdict(int)
        deadline = time.perf_counter() + args.seconds
        started = time.perf_counter()
        await asyncio.gather(
            *(
                worker(client, api, headers, project_id, deadline, samples, errors)
                for _ in range(args.concurrency)
            )
        )
        elapsed = time.perf_counter() - started
        await client.delete(f"{api}/tenants/me", headers=headers)

    total = sum(len(v) for v in samples.values())
    print(f"{total} requests in {elapsed:.1f} s: {total / elapsed:.0f} req/s ({email})")  # noqa: T201
    for name, values in sorted(samples.items()):
        p50, p95, p99 = (percentile(values, q) * 1000 for q in (50, 95, 99))
        print(  # noqa: T201
            f"  {name:<22} n={len(values):<6} p50={p50:6.1f} ms  p95={p95:6.1f} ms"
            f"  p99={p99:6.1f} ms  errors={errors[name]}"
        )
    if args.pid and (rss := peak_rss_mib(args.pid)) is not None:
        print(f"  server peak RSS: {rss:.0f} MiB")  # noqa: T201


if __name__ == "__main__":
    asyncio.run(main())
