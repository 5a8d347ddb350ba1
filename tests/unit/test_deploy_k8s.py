"""deploy/k8s: the kustomize base renders, validates against Kubernetes' own
schemas (kubernetes-validate, offline) and keeps the promises of deploy/README.md;
temporal-values.yaml uses the official chart's v1 layout.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from closeloop.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# The newest release kubernetes-validate ships, and an older one still supported.
VERSIONS = (kubernetes_validate.latest_version(), "1.32.0")
KNOWN_ENV = {f"CLOSELOOP_{name.upper()}" for name in Settings.model_fields} | {
    "CLOSELOOP_SECRETS_DIR"
}


def _load_kustomization_by_hand() -> list[dict[str, Any]]:
    """What `kustomize build` does for this base: resources, namespace, labels, images."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    images = {image["name"]: image for image in kustomization.get("images", [])}
    extra_labels: dict[str, str] = {}
    for entry in kustomization.get("labels", []):
        extra_labels.update(entry["pairs"])
    docs: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / resource).read_text()):
            if not doc:
                continue
            meta = doc["metadata"]
            if doc["kind"] != "Namespace":
                meta["namespace"] = kustomization["namespace"]
            meta.setdefault("labels", {}).update(extra_labels)
            pod = doc.get("spec", {}).get("template", {}).get("spec", {})
            for container in pod.get("containers", []):
                image = images.get(container["image"])
                if image:
                    container["image"] = f"{image['newName']}:{image['newTag']}"
            docs.append(doc)
    return docs


def _render_with_kubectl() -> list[dict[str, Any]] | None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return _render_with_kubectl() or _load_kustomization_by_hand()


def _one(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def _key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def _pods(manifests: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [
        (m, m["spec"]["template"]) for m in manifests if m["kind"] in ("Deployment", "StatefulSet")
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_strictly(manifests: list[dict[str, Any]], version: str) -> None:
    assert len(manifests) >= 10
    for manifest in manifests:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_strict_validation_catches_a_misspelt_field(manifests: list[dict[str, Any]]) -> None:
    api = _one(manifests, "Deployment", "closeloop-api")
    broken = yaml.safe_load(yaml.safe_dump(api))
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[0], strict=True)


def test_hand_loader_agrees_with_kustomize() -> None:
    rendered = _render_with_kubectl()
    if rendered is None:
        pytest.skip("kubectl not installed; the hand loader is the only renderer here")
    by_hand = {_key(doc): doc for doc in _load_kustomization_by_hand()}
    assert {_key(doc) for doc in rendered} == set(by_hand)
    for doc in rendered:
        assert doc["metadata"].get("namespace") == by_hand[_key(doc)]["metadata"].get("namespace")


def test_roles_and_their_workload_kinds(manifests: list[dict[str, Any]]) -> None:
    expected = {
        ("Deployment", "closeloop-api"): "api",
        ("Deployment", "closeloop-worker"): "worker",
        ("Deployment", "closeloop-projector"): "project",
        ("Deployment", "closeloop-relay"): "relay",
    }
    for (kind, name), role in expected.items():
        container = _one(manifests, kind, name)["spec"]["template"]["spec"]["containers"][0]
        assert container["args"][0] == role
        assert container["image"].endswith(":0.1.0")
    projector = _one(manifests, "Deployment", "closeloop-projector")["spec"]
    assert projector["replicas"] == 2  # a leader and a standby (advisory lock)
    container = projector["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["project", "--lease-interval"]


def test_api_probes_readyz_and_healthz(manifests: list[dict[str, Any]]) -> None:
    api = _one(manifests, "Deployment", "closeloop-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == Settings().api_port
    service = _one(manifests, "Service", "closeloop-api")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert api["spec"]["replicas"] >= 2


def test_relays_are_identical_leased_replicas(manifests: list[dict[str, Any]]) -> None:
    relay = _one(manifests, "Deployment", "closeloop-relay")
    container = relay["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[:2] == ["relay", "--partitions"]
    assert int(args[2]) >= relay["spec"]["replicas"] >= 2
    assert "--partition" not in args and "env" not in container
    assert not [m for m in manifests if m["kind"] == "StatefulSet"]


def test_every_pod_is_annotated_for_prometheus(manifests: list[dict[str, Any]]) -> None:
    for workload, template in _pods(manifests):
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        port = int(annotations["prometheus.io/port"])
        container = template["spec"]["containers"][0]
        declared = {p["containerPort"] for p in container.get("ports", [])}
        assert port in declared, workload["metadata"]["name"]
    settings = _one(manifests, "ConfigMap", "closeloop-settings")["data"]
    assert settings["CLOSELOOP_METRICS_PORT"] == "9100"


def test_pod_disruption_budgets_select_api_and_workers(manifests: list[dict[str, Any]]) -> None:
    budgets = [m for m in manifests if m["kind"] == "PodDisruptionBudget"]
    covered = set()
    for budget in budgets:
        selector = budget["spec"]["selector"]["matchLabels"]
        for workload, template in _pods(manifests):
            labels = template["metadata"]["labels"]
            if selector.items() <= labels.items():
                covered.add(workload["metadata"]["name"])
                assert budget["spec"]["minAvailable"] < workload["spec"]["replicas"]
    assert covered == {"closeloop-api", "closeloop-worker"}


def test_selectors_match_their_pods(manifests: list[dict[str, Any]]) -> None:
    for workload, template in _pods(manifests):
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= template["metadata"]["labels"].items()
    for service in (m for m in manifests if m["kind"] == "Service"):
        selector = service["spec"]["selector"]
        assert any(selector.items() <= t["metadata"]["labels"].items() for _, t in _pods(manifests))


def test_every_pod_is_non_root_with_resources(manifests: list[dict[str, Any]]) -> None:
    for workload, template in _pods(manifests):
        spec = template["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"]["drop"] == ["ALL"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), workload


def test_settings_and_secrets_are_wired(manifests: list[dict[str, Any]]) -> None:
    config = _one(manifests, "ConfigMap", "closeloop-settings")["data"]
    assert set(config) <= KNOWN_ENV, set(config) - KNOWN_ENV
    secret = _one(manifests, "Secret", "closeloop-secrets")["stringData"]
    # Secret keys named like a setting become that setting (CLOSELOOP_SECRETS_DIR).
    assert "closeloop_database_url" in secret
    assert Path(config["CLOSELOOP_WEBHOOK_SECRETS_FILE"]).name in secret
    for _, template in _pods(manifests):
        spec = template["spec"]
        container = spec["containers"][0]
        assert container["envFrom"] == [{"configMapRef": {"name": "closeloop-settings"}}]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["secrets"]["secret"]["secretName"] == "closeloop-secrets"
        assert mounts["secrets"] == config["CLOSELOOP_SECRETS_DIR"]
        assert mounts["var"] == config["CLOSELOOP_VAR_DIR"]


def test_temporal_values_use_the_chart_v1_layout_on_postgres() -> None:
    values = yaml.safe_load((K8S / "temporal-values.yaml").read_text())
    # Keys the official chart v1 refuses (its validations template fails on them).
    for retired in ("cassandra", "elasticsearch", "prometheus", "grafana", "mysql", "postgresql"):
        assert retired not in values
    assert not {"createDatabase", "setup", "update"} & set(values.get("schema", {}))
    persistence = values["server"]["config"]["persistence"]
    assert not {"default", "visibility"} & set(persistence)
    stores = persistence["datastores"]
    assert {persistence["defaultStore"], persistence["visibilityStore"]} == set(stores)
    for store in stores.values():
        sql = store["sql"]
        assert sql["pluginName"] == sql["driverName"] == "postgres12"
        assert re.fullmatch(r"[\w.-]+:\d+", sql["connectAddr"])
        assert "password" not in sql and sql["existingSecret"]
    namespaces = [n["name"] for n in values["server"]["config"]["namespaces"]["namespace"]]
    config = yaml.safe_load((K8S / "settings.yaml").read_text())["data"]
    assert config["CLOSELOOP_TEMPORAL_NAMESPACE"] in namespaces
    # Release "temporal" → Service "temporal-frontend" (the chart's naming).
    assert config["CLOSELOOP_TEMPORAL_ADDRESS"].startswith("temporal-frontend.")
