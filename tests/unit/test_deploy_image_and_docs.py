"""deploy/Dockerfile, the image's health check, and deploy/README.md's table of
environment variables (which must name every ``Settings`` field)."""

from __future__ import annotations

import fnmatch
import http.server
import importlib.util
import json
import re
import socket
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from closeloop.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SECRETS_DIR_VAR = "CLOSELOOP_SECRETS_DIR"


def _env_name(field: str) -> str:
    return f"CLOSELOOP_{field.upper()}"


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in dockerfile.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    pairs = []
    for entry in logical:
        keyword, _, rest = entry.strip().partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def _final_stage(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (keyword, _) in enumerate(pairs) if keyword == "FROM")
    return pairs[last_from:]


# --- Dockerfile ---------------------------------------------------------------------


def test_image_is_multi_stage_non_root_with_healthcheck() -> None:
    pairs = _instructions(DEPLOY / "Dockerfile")
    assert sum(1 for keyword, _ in pairs if keyword == "FROM") >= 2
    final = _final_stage(pairs)
    users = [args for keyword, args in final if keyword == "USER"]
    assert users, "the runtime stage must switch USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0") and int(user) >= 1000
    healthchecks = [args for keyword, args in final if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "closeloop-healthcheck" in healthchecks[0]
    entrypoints = [args for keyword, args in final if keyword == "ENTRYPOINT"]
    assert [json.loads(args) for args in entrypoints] == [["closeloop"]]


def test_image_entrypoint_is_the_packaged_command() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["closeloop"] == "closeloop.cli:main"


def test_everything_the_image_copies_exists_and_is_in_the_build_context() -> None:
    pairs = _instructions(DEPLOY / "Dockerfile")
    ignore = [
        line
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    sources: list[str] = []
    for keyword, args in pairs:
        if keyword != "COPY" or args.startswith("--from"):
            continue
        sources.extend(args.split()[:-1])
    assert {"pyproject.toml", "domain", "closeloop", "deploy/healthcheck.py"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        # Later lines win in .dockerignore; "!" re-includes.
        included = True
        for pattern in ignore:
            negate = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(source, bare) or bare == "**":
                included = negate
        assert included, f"{source} is excluded from the build context"


def test_packages_the_image_copies_are_all_the_packages() -> None:
    pairs = _instructions(DEPLOY / "Dockerfile")
    copied = {args.split()[0] for keyword, args in pairs if keyword == "COPY"}
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    includes = config["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in includes}
    assert packages <= copied


# --- the image's health check -------------------------------------------------------


@pytest.fixture(scope="module")
def healthcheck() -> ModuleType:
    path = DEPLOY / "healthcheck.py"
    spec = importlib.util.spec_from_file_location("closeloop_healthcheck", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def api_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        _Health.status = 200


def test_role_is_read_from_the_command_line(healthcheck: ModuleType) -> None:
    python = "/opt/closeloop/bin/python3.11"
    assert healthcheck.role_of([python, "/opt/closeloop/bin/closeloop", "api"]) == "api"
    relay = [python, "/opt/closeloop/bin/closeloop", "relay", "--partition", "1/2"]
    assert healthcheck.role_of(relay) == "relay"
    assert healthcheck.role_of(["nginx", "-g", "daemon off;"]) is None


def test_api_is_healthy_only_when_healthz_answers(healthcheck: ModuleType, api_port: int) -> None:
    argv = ["/opt/closeloop/bin/closeloop", "api"]
    env = {"CLOSELOOP_API_PORT": str(api_port)}
    assert healthcheck.main(argv, env) == 0
    _Health.status = 503
    assert healthcheck.main(argv, env) == 1


def test_api_with_nothing_listening_is_unhealthy(healthcheck: ModuleType) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free_port = sock.getsockname()[1]
    argv = ["/opt/closeloop/bin/closeloop", "api"]
    assert healthcheck.main(argv, {"CLOSELOOP_API_PORT": str(free_port)}) == 1


def test_roles_without_a_port_pass(healthcheck: ModuleType) -> None:
    for role in ("worker", "project", "relay"):
        assert healthcheck.main(["/opt/closeloop/bin/closeloop", role], {}) == 0


# --- README: one table of every environment variable -------------------------------


def _readme_table_vars() -> list[str]:
    text = (DEPLOY / "README.md").read_text()
    section = text.split("## Settings: every environment variable", 1)[1]
    return re.findall(r"^\| `(CLOSELOOP_[A-Z0-9_]+)` \|", section, flags=re.MULTILINE)


def test_readme_table_lists_every_setting_once() -> None:
    listed = _readme_table_vars()
    assert len(listed) == len(set(listed)), "a variable is listed twice"
    expected = {_env_name(field) for field in Settings.model_fields} | {SECRETS_DIR_VAR}
    assert set(listed) == expected


def test_readme_defaults_match_settings() -> None:
    text = (DEPLOY / "README.md").read_text()
    defaults = Settings.model_construct()
    for field in ("db_pool_size", "db_max_overflow", "db_max_waiting", "api_port"):
        row = re.search(rf"^\| `{_env_name(field)}` \| `([^`]+)`", text, flags=re.MULTILINE)
        assert row and row.group(1) == str(getattr(defaults, field)), field


def test_deploy_files_use_only_known_variables() -> None:
    known = {_env_name(field) for field in Settings.model_fields} | {SECRETS_DIR_VAR}
    used: set[str] = set()
    for path in [DEPLOY / "Dockerfile", DEPLOY / "compose.yaml", *(DEPLOY / "k8s").glob("*.yaml")]:
        used |= set(re.findall(r"\bCLOSELOOP_[A-Z0-9_]+\b", path.read_text()))
    # CLOSELOOP_TAG only tags the image in compose; it is not a setting.
    assert used - {"CLOSELOOP_TAG"} <= known, (used - {"CLOSELOOP_TAG"}) - known
    compose_env = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["x-closeloop"]
    assert compose_env["environment"][SECRETS_DIR_VAR] == "/run/secrets"
