"""deploy/compose.yaml: valid for docker-compose, and the topology it promises.

Validated by Debian's ``docker-compose config`` (no Docker engine needed); CI
installs it (.ci/run). The structural checks read the file compose resolved.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from closeloop.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
CLOSELOOP_ROLES = {"api", "worker", "relay", "project"}


def _docker_compose() -> str:
    exe = shutil.which("docker-compose")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing: apt-get install -y docker-compose")
        pytest.skip("docker-compose not installed here (apt-get install -y docker-compose)")
    return exe


def _compose(*args: str, file: Path = COMPOSE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_docker_compose(), "-f", str(file), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=file.parent,
        check=False,
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    result = _compose("config")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = yaml.safe_load(result.stdout)
    return data


def _closeloop_services(resolved: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in resolved["services"].items()
        if str(svc.get("image", "")).startswith("closeloop:")
    }


def test_docker_compose_accepts_the_file() -> None:
    result = _compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_docker_compose_rejects_a_broken_copy(tmp_path: Path) -> None:
    # Proves the validation above can fail: a misspelt start condition is refused.
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    broken = tmp_path / "deploy" / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("service_healthy", "service_helthy", 1))
    result = _compose("config", "-q", file=broken)
    assert result.returncode != 0
    assert "service_helthy" in result.stderr


def test_every_role_runs_from_the_one_image(resolved: dict[str, Any]) -> None:
    services = _closeloop_services(resolved)
    roles = [svc["command"][0] for svc in services.values()]
    assert set(roles) == CLOSELOOP_ROLES
    assert roles.count("api") == 2
    assert roles.count("worker") == 2
    assert roles.count("project") == 2  # a leader and a standby
    assert {svc["image"] for svc in services.values()} == {"closeloop:dev"}
    for svc in services.values():
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
        assert Path(svc["build"]["context"]).resolve() == ROOT


def test_relays_are_identical_leased_replicas(resolved: dict[str, Any]) -> None:
    commands = [
        svc["command"]
        for svc in _closeloop_services(resolved).values()
        if svc["command"][0] == "relay"
    ]
    assert len(commands) == 2
    # Same command for every replica: the leases, not the file, assign partitions.
    assert all(command == commands[0] for command in commands)
    assert commands[0][1] == "--partitions" and int(commands[0][2]) >= len(commands)
    assert "--partition" not in commands[0]


def test_every_process_is_scraped_by_prometheus(resolved: dict[str, Any]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    services = _closeloop_services(resolved)
    expected = {
        f"{name}:{8000 if svc['command'][0] == 'api' else 9100}" for name, svc in services.items()
    }
    assert targets == expected
    for svc in services.values():
        assert svc["environment"]["CLOSELOOP_METRICS_PORT"] == "9100"
    mounts = {
        v["target"] if isinstance(v, dict) else v.split(":")[1]
        for v in resolved["services"]["prometheus"]["volumes"]
    }
    assert "/etc/prometheus/alerts.yml" in mounts
    assert any(rule.endswith("alerts.yml") for rule in config["rule_files"])
    # The proxy keeps /metrics off the internet.
    assert "location = /metrics" in (DEPLOY / "nginx" / "nginx.conf").read_text()


def test_grafana_dashboard_reads_only_metrics_closeloop_exports() -> None:
    import json

    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "closeloop.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    names = set(re.findall(r"\b((?:closeloop|temporal)_[a-z_]+)", " ".join(exprs)))
    exported = {
        "closeloop_grievances_open",
        "closeloop_deadlines_overdue",
        "closeloop_http_requests_total",
        "closeloop_http_request_duration_seconds_bucket",
        "closeloop_commands_total",
        "closeloop_relay_lag_seconds",
        "closeloop_relay_lag_events",
        "closeloop_relay_partition_held",
        "closeloop_relay_signals_total",
        "closeloop_relay_failed_batches_total",
        "closeloop_projection_lag_seconds",
        "closeloop_projection_lag_events",
    }
    ours = {n for n in names if n.startswith("closeloop_")}
    assert ours <= exported, ours - exported
    assert {"closeloop_relay_lag_seconds", "closeloop_deadlines_overdue"} <= ours
    provisioning = DEPLOY / "grafana" / "provisioning" / "dashboards" / "closeloop.yaml"
    assert yaml.safe_load(provisioning.read_text())["providers"][0]["options"]["path"] == (
        "/etc/grafana/dashboards"
    )


def test_start_order_waits_on_health_and_setup_jobs(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    for name, svc in services.items():
        for dependency, rule in svc.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], (name, dependency)
            else:
                assert condition == "service_completed_successfully", (name, dependency)
    for svc in _closeloop_services(resolved).values():
        assert set(svc["depends_on"]) >= {"postgres", "temporal", "temporal-namespace"}
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == (
        "service_completed_successfully"
    )


def test_proxy_balances_over_both_apis(resolved: dict[str, Any]) -> None:
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text()
    upstreams = re.findall(r"^\s*server\s+([\w-]+):(\d+)", conf, flags=re.MULTILINE)
    apis = {n for n, s in _closeloop_services(resolved).items() if s["command"][0] == "api"}
    assert {host for host, _ in upstreams} == apis
    assert {int(port) for _, port in upstreams} == {Settings().api_port}
    assert set(resolved["services"]["proxy"]["depends_on"]) == apis


def test_no_secret_is_written_in_the_compose_file(resolved: dict[str, Any]) -> None:
    for name, svc in resolved["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            assert "DATABASE_URL" not in key, (name, key)
            if "PASSWORD" in key or key.endswith("_PWD"):
                assert key.endswith("_FILE"), (name, key, value)


def test_mounted_files_exist_in_deploy(resolved: dict[str, Any]) -> None:
    mounted: list[Path] = []
    for svc in resolved["services"].values():
        for volume in svc.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith("/"):
                mounted.append(Path(source))
    assert len(mounted) >= 5
    for path in mounted:
        assert path.is_file(), path
        assert DEPLOY in path.parents, path


def test_make_secrets_writes_every_compose_secret(
    resolved: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets"
    run = subprocess.run(
        ["sh", str(DEPLOY / "make-secrets.sh"), str(secrets)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "secrets in" in run.stdout
    wanted = {Path(spec["file"]).name for spec in resolved["secrets"].values()}
    assert wanted <= {p.name for p in secrets.iterdir()}
    first = {p.name: p.read_text() for p in secrets.iterdir()}
    subprocess.run(["sh", str(DEPLOY / "make-secrets.sh"), str(secrets)], check=True, timeout=30)
    assert {p.name: p.read_text() for p in secrets.iterdir()} == first, "re-run must keep them"

    # closeloop reads its URL from the secret file named like the setting.
    monkeypatch.delenv("CLOSELOOP_DATABASE_URL", raising=False)
    monkeypatch.setenv("CLOSELOOP_SECRETS_DIR", str(secrets))
    get_settings.cache_clear()
    try:
        settings = get_settings()
    finally:
        get_settings.cache_clear()
    params = settings.postgres_params()
    assert params["host"] == "postgres"
    assert params["dbname"] == "closeloop"
    assert params["user"] == "closeloop"
    assert params["password"] == first["closeloop_db_password"]

    # An environment variable of the same name wins over the file.
    monkeypatch.setenv("CLOSELOOP_DATABASE_URL", "postgresql://other@db.example:5433/x")
    get_settings.cache_clear()
    try:
        assert get_settings().postgres_params()["host"] == "db.example"
    finally:
        get_settings.cache_clear()


def test_shell_scripts_parse() -> None:
    scripts = sorted(DEPLOY.rglob("*.sh"))
    assert len(scripts) >= 4
    for script in scripts:
        result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, (script, result.stderr)


def test_database_names_agree_across_init_schema_and_server(resolved: dict[str, Any]) -> None:
    init = (DEPLOY / "postgres" / "init-databases.sh").read_text()
    created = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+);", init))
    roles = set(re.findall(r"CREATE ROLE (\w+) LOGIN", init))
    temporal = resolved["services"]["temporal"]["environment"]
    schema_job = resolved["services"]["temporal-schema"]["environment"]
    setup = (DEPLOY / "temporal" / "setup-schema.sh").read_text()
    for db in (temporal["DBNAME"], temporal["VISIBILITY_DBNAME"]):
        assert created[db] == temporal["POSTGRES_USER"] == schema_job["SQL_USER"]
        assert f"--db {db} setup-schema" in setup and f"--db {db} update-schema" in setup
    # The URL make-secrets.sh writes names the role and database the init script creates.
    url = re.search(
        r"postgresql://(\w+):[^@]*@(\w+):5432/(\w+)", (DEPLOY / "make-secrets.sh").read_text()
    )
    assert url is not None
    user, host, dbname = url.groups()
    assert user in roles and created[dbname] == user and host in resolved["services"]
