"""Load a running service, one operation at a time, and print a table per operation.

    bash scripts/run.sh &                                  # or any instance on this machine
    .venv/bin/python scripts/benchmark.py --url http://127.0.0.1:8000

It signs up its own tenant, seeds projects and tasks through the API, then for each
operation runs a warm-up (discarded) and a measured run at a fixed concurrency, and prints
requests/s, p50 and p99 latency and errors (non-2xx answers and socket errors), with the
CPU count and the machine's load average. The load comes from `wrk` (Debian: `apt-get
install wrk`) driven by a generated Lua script, in its own process; without wrk, from
Python workers in this process (slower: they compete with a server on the same cores).
With `--pid`, it also shows how many cores the server process used. Loopback addresses
only; every run is bounded by `--seconds`. The tenant is deleted at the end.
"""

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PASSWORD = "benchmark password"


@dataclass
class Op:
    name: str
    method: str
    # One request per entry, in turn: (path, body); the body may contain `{seq}`.
    entries: list[tuple[str, str | None]]
    content_type: str | None = None
    auth: bool = True
    concurrency: int = 32


@dataclass
class Result:
    op: Op
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    load: tuple[float, float]
    server_cores: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def ok_per_second(self) -> float:
        return (self.requests - self.non_2xx) / self.seconds


# --- Seeding through the API ---------------------------------------------------------------


async def seed(
    client: httpx.AsyncClient, api: str, tasks: int, projects: int
) -> tuple[str, str, list[str], list[str]]:
    """A new tenant and its owner, projects and tasks: (email, token, project ids, task ids)."""
    email = f"bench-{secrets.token_hex(4)}@example.com"
    signup = await client.post(
        f"{api}/users/signup",
        json={"email": email, "password": PASSWORD, "tenant_name": f"Benchmark {email}"},
    )
    signup.raise_for_status()
    token = await login(client, api, email)
    headers = {"Authorization": f"Bearer {token}"}
    project_ids = []
    for i in range(projects):
        created = await client.post(
            f"{api}/projects/", json={"name": f"Bench {i}"}, headers=headers
        )
        created.raise_for_status()
        project_ids.append(created.json()["id"])
    task_ids: list[str] = []
    queue = iter(range(tasks))

    async def create() -> None:
        for i in queue:
            created = await client.post(
                f"{api}/tasks/",
                json={
                    "project_id": project_ids[i % projects],
                    "title": f"Task {i}",
                    "description": f"Seeded task {i} of the benchmark",
                },
                headers=headers,
            )
            created.raise_for_status()
            task_ids.append(created.json()["id"])

    await asyncio.gather(*(create() for _ in range(8)))
    return email, token, project_ids, task_ids


async def login(client: httpx.AsyncClient, api: str, email: str) -> str:
    response = await client.post(
        f"{api}/login/access-token", data={"username": email, "password": PASSWORD}
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def operations(
    prefix: str, email: str, project_ids: list[str], task_ids: list[str], args: argparse.Namespace
) -> list[Op]:
    c, cl = args.concurrency, args.login_concurrency
    form = f"username={email.replace('@', '%40')}&password={PASSWORD.replace(' ', '+')}"
    tasks = task_ids[: args.rotate]
    return [
        Op("users_me", "GET", [(f"{prefix}/users/me", None)], concurrency=c),
        Op(
            "tasks_list",
            "GET",
            [(f"{prefix}/tasks/?project_id={p}&limit=20", None) for p in project_ids],
            concurrency=c,
        ),
        Op("task_get", "GET", [(f"{prefix}/tasks/{t}", None) for t in tasks], concurrency=c),
        Op(
            "task_create",
            "POST",
            [
                (f"{prefix}/tasks/", json.dumps({"project_id": p, "title": "bench-post {seq}"}))
                for p in project_ids
            ],
            content_type="application/json",
            concurrency=c,
        ),
        Op(
            "task_update",
            "PATCH",
            [(f"{prefix}/tasks/{t}", json.dumps({"title": "bench-patch {seq}"})) for t in tasks],
            content_type="application/json",
            concurrency=c,
        ),
        Op(
            "project_get",
            "GET",
            [(f"{prefix}/projects/{p}", None) for p in project_ids],
            concurrency=c,
        ),
        Op("projects_list", "GET", [(f"{prefix}/projects/?limit=20", None)], concurrency=c),
        Op(
            "project_update",
            "PATCH",
            [
                (f"{prefix}/projects/{p}", json.dumps({"name": "bench-patch {seq}"}))
                for p in project_ids
            ],
            content_type="application/json",
            concurrency=c,
        ),
        Op(
            "login",
            "POST",
            [(f"{prefix}/login/access-token", form)],
            content_type="application/x-www-form-urlencoded",
            auth=False,
            concurrency=cl,
        ),
    ]


# --- wrk ------------------------------------------------------------------------------------

LUA = r"""
local entries = __ENTRIES__
local method = __METHOD__
local headers = __HEADERS__
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  seq, non2xx, statuses = 0, 0, {}
  index = (id or 0) * 7919
end

function request()
  seq = seq + 1
  index = index + 1
  local entry = entries[(index % #entries) + 1]
  local body = entry[2]
  if body ~= nil then
    body = string.gsub(body, "{seq}", (id or 0) .. "-" .. seq)
  end
  return wrk.format(method, entry[1], headers, body)
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
  local non2xx, merged, parts = 0, {}, {}
  for _, thread in ipairs(threads) do
    non2xx = non2xx + (thread:get("non2xx") or 0)
    for k, v in pairs(thread:get("statuses") or {}) do merged[k] = (merged[k] or 0) + v end
  end
  for k, v in pairs(merged) do table.insert(parts, '"' .. k .. '":' .. v) end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"non2xx":%d,' ..
    '"socket_errors":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    non2xx, e.connect + e.read + e.write + e.timeout, table.concat(parts, ",")))
end
"""


def lua_string(value: str | None) -> str:
    if value is None:
        return "nil"
    return json.dumps(value)  # a JSON string of ASCII is a valid Lua string literal


def lua_script(op: Op, headers: dict[str, str]) -> str:
    entries = ", ".join(f"{{{lua_string(p)}, {lua_string(b)}}}" for p, b in op.entries)
    header_table = ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items())
    return (
        LUA.replace("__ENTRIES__", f"{{{entries}}}")
        .replace("__METHOD__", lua_string(op.method))
        .replace("__HEADERS__", f"{{{header_table}}}")
    )


def run_wrk(url: str, op: Op, headers: dict[str, str], seconds: float) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="benchmark-") as script:
        script.write(lua_script(op, headers))
        script.flush()
        threads = max(1, min(2, op.concurrency))
        command = ["wrk", f"-t{threads}", f"-c{op.concurrency}", f"-d{seconds:g}s"]
        command += ["--timeout", "10s", "-s", script.name, url]
        done = subprocess.run(  # noqa: S603 (our own arguments; the URL is loopback)
            command, capture_output=True, text=True, timeout=seconds + 30, check=True
        )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
            return result
    raise RuntimeError(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")


# --- Python fallback ------------------------------------------------------------------------


async def run_python(url: str, op: Op, headers: dict[str, str], seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    socket_errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=op.concurrency)

    async def worker(client: httpx.AsyncClient, number: int) -> None:
        nonlocal socket_errors
        seq = 0
        while time.perf_counter() < deadline:
            seq += 1
            path, body = op.entries[(number * 7919 + seq) % len(op.entries)]
            content = body.replace("{seq}", f"{number}-{seq}") if body is not None else None
            started = time.perf_counter()
            try:
                response = await client.request(
                    op.method, url + path, content=content, headers=headers
                )
            except httpx.HTTPError:
                socket_errors += 1
                continue
            latencies.append(time.perf_counter() - started)
            key = str(response.status_code)
            statuses[key] = statuses.get(key, 0) + 1

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        await asyncio.gather(*(worker(client, n) for n in range(op.concurrency)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {
        "requests": len(latencies),
        "duration_us": elapsed * 1e6,
        "p50_us": cuts[49] * 1e6 if cuts else 0,
        "p99_us": cuts[98] * 1e6 if cuts else 0,
        "non2xx": sum(n for k, n in statuses.items() if not k.startswith("2")),
        "socket_errors": socket_errors,
        "statuses": statuses,
    }


# --- Measuring ------------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of a process and its children (uvicorn workers), from /proc."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for each in pids:
        stat = Path(f"/proc/{each}/stat")
        if not stat.exists():
            return None if each == pid else total
        fields = stat.read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


async def measure(url: str, op: Op, token: str, args: argparse.Namespace, use_wrk: bool) -> Result:
    headers = {"Authorization": f"Bearer {token}"} if op.auth else {}
    if op.content_type:
        headers["Content-Type"] = op.content_type

    async def run(seconds: float) -> dict[str, Any]:
        if use_wrk:
            return await asyncio.to_thread(run_wrk, url, op, headers, seconds)
        return await run_python(url, op, headers, seconds)

    if args.warmup > 0:
        await run(args.warmup)
    load_before = os.getloadavg()[0]
    cpu_before = process_cpu_seconds(args.pid) if args.pid else None
    wall = time.perf_counter()
    figures = await run(args.seconds)
    wall = time.perf_counter() - wall
    cpu_after = process_cpu_seconds(args.pid) if args.pid else None
    cores = (
        (cpu_after - cpu_before) / wall
        if cpu_before is not None and cpu_after is not None
        else None
    )
    return Result(
        op=op,
        requests=int(figures["requests"]),
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        non_2xx=int(figures["non2xx"]),
        socket_errors=int(figures["socket_errors"]),
        load=(load_before, os.getloadavg()[0]),
        server_cores=cores,
        statuses=figures["statuses"],
    )


def print_table(results: list[Result], engine: str, args: argparse.Namespace) -> None:
    print(  # noqa: T201
        f"\n{args.url}  load generator: {engine}  CPUs: {os.cpu_count()}  "
        f"{args.seconds:g} s per operation after {args.warmup:g} s of warm-up"
    )
    header = f"{'operation':<12} {'conc':>4} {'2xx/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
    header += f" {'non-2xx':>8} {'sock err':>8} {'load 1m':>11}"
    header += f" {'server cores':>12}" if args.pid else ""
    print(header)  # noqa: T201
    print("-" * len(header))  # noqa: T201
    for r in results:
        line = f"{r.op.name:<12} {r.op.concurrency:>4} {r.ok_per_second:>8.1f}"
        line += f" {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.non_2xx:>8} {r.socket_errors:>8}"
        line += f" {r.load[0]:>5.2f}-{r.load[1]:<5.2f}"
        if args.pid:
            line += f" {r.server_cores:>12.2f}" if r.server_cores is not None else f" {'?':>12}"
        print(line)  # noqa: T201
        if r.non_2xx:
            print(f"{'':<12} statuses: {r.statuses}")  # noqa: T201


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="a loopback address")
    parser.add_argument("--api-prefix", default="/api/v1")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured run per operation")
    parser.add_argument("--warmup", type=float, default=3.0, help="discarded run before it")
    parser.add_argument("--concurrency", type=int, default=32, help="connections per operation")
    parser.add_argument("--login-concurrency", type=int, default=8)
    parser.add_argument("--ops", help="comma-separated names (default: all, in table order)")
    parser.add_argument("--tasks", type=int, default=2000, help="tasks to seed")
    parser.add_argument("--projects", type=int, default=10, help="projects to seed")
    parser.add_argument("--rotate", type=int, default=1000, help="task ids the load cycles")
    parser.add_argument("--engine", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--pid", type=int, help="server process id: show the cores it used")
    parser.add_argument("--keep", action="store_true", help="keep the seeded tenant")
    args = parser.parse_args()

    if urlparse(args.url).hostname not in LOOPBACK:
        raise SystemExit("benchmark only a service on this machine (loopback address)")
    if not (0 < args.seconds <= 120 and 0 <= args.warmup <= 30):
        raise SystemExit("--seconds must be in (0, 120] and --warmup in [0, 30]")
    if not (1 <= args.concurrency <= 256 and 1 <= args.login_concurrency <= 64):
        raise SystemExit("--concurrency must be in [1, 256], --login-concurrency in [1, 64]")
    if not (1 <= args.projects <= 100 and args.projects <= args.tasks <= 50_000):
        raise SystemExit("--projects must be in [1, 100] and --tasks in [projects, 50000]")
    use_wrk = args.engine == "wrk" or (args.engine == "auto" and shutil.which("wrk") is not None)
    if args.engine == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    url = args.url.rstrip("/")
    api = url + args.api_prefix
    async with httpx.AsyncClient(timeout=30) as client:
        started = time.perf_counter()
        email, token, project_ids, task_ids = await seed(client, api, args.tasks, args.projects)
        print(  # noqa: T201
            f"seeded {email}: {len(project_ids)} projects, {len(task_ids)} tasks "
            f"in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        ops = operations(args.api_prefix, email, project_ids, task_ids, args)
        if args.ops:
            wanted = args.ops.split(",")
            unknown = set(wanted) - {op.name for op in ops}
            if unknown:
                raise SystemExit(f"unknown operations: {', '.join(sorted(unknown))}")
            ops = [op for op in ops if op.name in wanted]
        results = []
        try:
            for op in ops:
                print(f"running {op.name} (c={op.concurrency})", file=sys.stderr)  # noqa: T201
                results.append(await measure(url, op, token, args, use_wrk))
        finally:
            if not args.keep:
                headers = {"Authorization": f"Bearer {await login(client, api, email)}"}
                await client.delete(f"{api}/tenants/me", headers=headers)
    print_table(results, "wrk" if use_wrk else "python (httpx)", args)


if __name__ == "__main__":
    asyncio.run(main())
