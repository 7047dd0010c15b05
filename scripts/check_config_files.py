"""Structural checks of the Docker, compose and GitHub files, for machines without an engine.

`docker compose config` validates the compose schema where Docker is installed; this checks
what it does not (the services and start-up order we rely on), plus the workflows, the
Dependabot file and the paths the Dockerfile copies. Run by scripts/lint.sh; exits 1 with
one line per problem.
"""

import fnmatch
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def load(path: Path, errors: list[str]) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        errors.append(f"{path.relative_to(ROOT)}: missing")
    except yaml.YAMLError as exc:
        errors.append(f"{path.relative_to(ROOT)}: invalid YAML: {exc}")
    return None


def depends_condition(service: dict[str, Any], on: str) -> str | None:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return "service_started" if on in depends else None
    entry = depends.get(on)
    if entry is None:
        return None
    return str((entry or {}).get("condition", "service_started"))


def check_compose(errors: list[str]) -> None:
    base = load(ROOT / "docker-compose.yml", errors)
    override = load(ROOT / "docker-compose.override.yml", errors)
    if base is None or override is None:
        return
    name = "docker-compose.yml"
    services: dict[str, Any] = base.get("services") or {}
    required_services = ("db", "prestart", "backend", "worker")
    missing = [required for required in required_services if required not in services]
    errors += [f"{name}: no service {required!r}" for required in missing]
    if missing:
        return
    db, prestart, backend = services["db"], services["prestart"], services["backend"]

    expected = {
        ("prestart", "db"): "service_healthy",
        ("backend", "db"): "service_healthy",
        ("backend", "prestart"): "service_completed_successfully",
        ("worker", "db"): "service_healthy",
        ("worker", "prestart"): "service_completed_successfully",
    }
    for (service, on), condition in expected.items():
        found = depends_condition(services[service], on)
        if found != condition:
            errors.append(f"{name}: {service} depends on {on} with {found!r}, want {condition!r}")

    if "pg_isready" not in str((db.get("healthcheck") or {}).get("test", "")):
        errors.append(f"{name}: db has no pg_isready healthcheck")
    if "/api/v1/utils/ready/" not in str((backend.get("healthcheck") or {}).get("test", "")):
        errors.append(f"{name}: backend healthcheck does not call /api/v1/utils/ready/")
    worker = services["worker"]
    if "app.worker" not in str(worker.get("command", "")):
        errors.append(f"{name}: worker does not run python -m app.worker")
    if worker.get("image") != backend.get("image"):
        errors.append(f"{name}: worker and backend should use the same image")
    for service in ("db", "backend", "worker"):
        if services[service].get("restart") != "always":
            errors.append(f"{name}: {service} should have restart: always")
    if prestart.get("restart", "no") != "no":
        errors.append(f"{name}: prestart runs once, it should not restart")
    if prestart.get("image") != backend.get("image"):
        errors.append(f"{name}: prestart and backend should use the same image")
    if "prestart.sh" not in str(prestart.get("command", "")):
        errors.append(f"{name}: prestart does not run scripts/prestart.sh")
    for service in ("backend", "worker"):
        environment = services[service].get("environment") or {}
        if "@db:" not in str(environment.get("DATABASE_URL", "")):
            errors.append(f"{name}: {service} DATABASE_URL does not point at the db service")

    volumes = base.get("volumes") or {}
    for mount in db.get("volumes") or []:
        source = str(mount).split(":", 1)[0]
        if not source.startswith((".", "/")) and source not in volumes:
            errors.append(f"{name}: db mounts volume {source!r}, not declared under volumes")

    build = backend.get("build") or {}
    dockerfile = ROOT / str(build.get("context", ".")) / str(build.get("dockerfile", "Dockerfile"))
    if not dockerfile.is_file():
        errors.append(f"{name}: backend builds from {dockerfile}, which does not exist")

    name = "docker-compose.override.yml"
    local: dict[str, Any] = override.get("services") or {}
    for required in ("mailpit", "adminer", "backend", "db"):
        if required not in local:
            errors.append(f"{name}: no service {required!r}")
    if "backend" in local:
        environment = local["backend"].get("environment") or {}
        if environment.get("SMTP_HOST") != "mailpit":
            errors.append(f"{name}: backend SMTP_HOST should be mailpit")
        if "--reload" not in (local["backend"].get("command") or []):
            errors.append(f"{name}: backend should run uvicorn with --reload")
        if "--no-server-header" not in (local["backend"].get("command") or []):
            errors.append(f"{name}: backend should run uvicorn with --no-server-header")
    for service in local:
        if service not in services and service not in ("mailpit", "adminer"):
            errors.append(f"{name}: service {service!r} is not in docker-compose.yml")


def check_workflows(errors: list[str]) -> None:
    paths = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
    if not paths:
        errors.append(".github/workflows: no workflow files")
    for path in paths:
        name = str(path.relative_to(ROOT))
        workflow = load(path, errors)
        if workflow is None:
            continue
        if not isinstance(workflow, dict):
            errors.append(f"{name}: not a mapping")
            continue
        # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean True.
        if "on" not in workflow and True not in workflow:
            errors.append(f"{name}: no 'on' (trigger)")
        jobs = workflow.get("jobs")
        if not isinstance(jobs, dict) or not jobs:
            errors.append(f"{name}: no jobs")
            continue
        for job_id, job in jobs.items():
            if not isinstance(job, dict):
                errors.append(f"{name}: job {job_id!r} is not a mapping")
                continue
            if "uses" in job:  # a reusable workflow: no runs-on or steps of its own
                continue
            if "runs-on" not in job:
                errors.append(f"{name}: job {job_id!r} has no runs-on")
            steps = job.get("steps")
            if not isinstance(steps, list) or not steps:
                errors.append(f"{name}: job {job_id!r} has no steps")
                continue
            for number, step in enumerate(steps, 1):
                if not isinstance(step, dict) or ("uses" in step) == ("run" in step):
                    errors.append(f"{name}: job {job_id!r} step {number} needs uses or run")
            needs = job.get("needs") or []
            for need in [needs] if isinstance(needs, str) else needs:
                if need not in jobs:
                    errors.append(f"{name}: job {job_id!r} needs unknown job {need!r}")


def check_dependabot(errors: list[str]) -> None:
    name = ".github/dependabot.yml"
    config = load(ROOT / name, errors)
    if config is None:
        return
    if config.get("version") != 2:
        errors.append(f"{name}: version must be 2")
    updates = config.get("updates")
    if not isinstance(updates, list) or not updates:
        errors.append(f"{name}: no updates")
        return
    for number, update in enumerate(updates, 1):
        for key in ("package-ecosystem", "directory"):
            if not update.get(key):
                errors.append(f"{name}: update {number} has no {key}")
        if not (update.get("schedule") or {}).get("interval"):
            errors.append(f"{name}: update {number} has no schedule.interval")


def dockerignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        glob = pattern.removeprefix("**/")
        if any(
            fnmatch.fnmatch(c, pattern) or fnmatch.fnmatch(c.rsplit("/", 1)[-1], glob)
            for c in candidates
        ):
            ignored = not negate
    return ignored


def check_dockerfile(errors: list[str]) -> None:
    name = "backend/Dockerfile"
    try:
        text = (ROOT / name).read_text()
    except FileNotFoundError:
        errors.append(f"{name}: missing")
        return
    ignore_file = ROOT / ".dockerignore"
    patterns = [
        line.strip()
        for line in (ignore_file.read_text() if ignore_file.is_file() else "").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Continuation lines joined, so one instruction is one line.
    instructions = re.sub(r"\\\n", " ", text).splitlines()
    sources: list[str] = []
    for line in instructions:
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD", "RUN"):
            continue
        if words[0].upper() == "RUN":
            sources += re.findall(r"--mount=type=bind,source=([^,\s]+)", line)
        elif not any(word.startswith("--from=") for word in words):
            sources += [word for word in words[1:-1] if not word.startswith("--")]
    for source in sources:
        if not (ROOT / source).exists():
            errors.append(f"{name}: copies {source}, which is not in the repository")
        elif dockerignored(source, patterns):
            errors.append(f"{name}: copies {source}, which .dockerignore leaves out")

    final_stage = text.rsplit("\nFROM ", 1)[-1]
    users = re.findall(r"^USER\s+(\S+)", final_stage, flags=re.MULTILINE)
    if not users or users[-1] in ("root", "0"):
        errors.append(f"{name}: the final stage should run as a non-root USER")
    if '"--no-server-header"' not in final_stage:
        errors.append(f"{name}: uvicorn should run with --no-server-header (no server banner)")
    if "--no-dev" not in text or "--locked" not in text:
        errors.append(f"{name}: uv sync should use --locked --no-dev")


def main() -> None:
    errors: list[str] = []
    for check in (check_compose, check_workflows, check_dependabot, check_dockerfile):
        check(errors)
    if errors:
        sys.exit("\n".join(errors))


if __name__ == "__main__":
    main()
