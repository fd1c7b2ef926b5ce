"""deploy/ manifests: Kubernetes objects validate against the Kubernetes JSON schemas (offline,
from kubernetes-validate), agree with the worker's configuration, and the KEDA object, the image
and the compose stack have the shape the deployment relies on."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from worker.config_file import load_settings
from worker.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
DOCKER = DEPLOY / "docker"
BUILTIN = ("configmap.yaml", "deployment.yaml", "service.yaml", "pdb.yaml", "secret.example.yaml")
# the oldest Kubernetes still commonly run, and a recent one
VERSIONS = ("1.29", "1.33")
# The parts of KEDA's ScaledObject CRD (keda.sh/v1alpha1) this deployment uses; no package ships
# the CRD's schema, so these are written from it by hand.
SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "kind": {"type": "string"}},
                },
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer"},
                "cooldownPeriod": {"type": "integer"},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "properties": {
                            "type": {"type": "string"},
                            "metadata": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
}
KAFKA_TRIGGER_KEYS = {"bootstrapServers", "consumerGroup", "topic", "lagThreshold"}


def manifest(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((K8S / name).read_text()))


def load_from_text(text: str, directory: Path) -> Settings:
    """Validate a config text like `marketo-worker validate` (credentials not required)."""
    path = directory / "config.yaml"
    path.write_text(text)
    return load_settings(path, env={}, require_credentials=False)


@pytest.fixture(scope="module")
def k8s_config(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The worker configuration the ConfigMap carries."""
    text = manifest("configmap.yaml")["data"]["config.yaml"]
    return load_from_text(text, tmp_path_factory.mktemp("configmap"))


def container() -> dict[str, Any]:
    return dict(manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"][0])


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", BUILTIN)
def test_manifest_validates_against_the_kubernetes_schema(name: str, version: str) -> None:
    """Each built-in object is valid for its apiVersion/kind, strictly (no unknown fields)."""
    kubernetes_validate.validate(manifest(name), version, strict=True)


def test_strict_validation_rejects_an_unknown_field() -> None:
    """The schema check is real: a misspelt field in the Deployment is refused."""
    broken = manifest("deployment.yaml")
    broken["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_configmap_holds_a_valid_worker_config(k8s_config: Settings) -> None:
    """The ConfigMap's config.yaml passes the worker's own validation and listens off-loopback."""
    assert k8s_config.telemetry.metrics_host == "0.0.0.0"
    assert k8s_config.marketo.base_url.startswith("https://")


def test_deployment_probes_and_port_match_the_config(k8s_config: Settings) -> None:
    """Liveness is /healthz and readiness /readyz, on the port the config serves metrics on."""
    worker = container()
    port = k8s_config.telemetry.metrics_port
    assert [p["containerPort"] for p in worker["ports"] if p["name"] == "metrics"] == [port]
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert worker["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert manifest("service.yaml")["spec"]["ports"][0]["port"] == port


def test_grace_period_outlasts_the_shutdown_deadline(k8s_config: Settings) -> None:
    """SIGKILL must not cut the SIGTERM flush: the grace period exceeds the shutdown deadline."""
    spec = manifest("deployment.yaml")["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] > k8s_config.flush.shutdown_deadline_s


def test_deployment_mounts_the_config_and_credentials() -> None:
    """The ConfigMap is mounted where the image's CMD reads it and the Secret's keys are the
    credential variables the worker reads."""
    worker = container()
    pod = manifest("deployment.yaml")["spec"]["template"]["spec"]
    mount = next(m for m in worker["volumeMounts"] if m["name"] == "config")
    volume = next(v for v in pod["volumes"] if v["name"] == "config")
    assert f"{mount['mountPath']}/config.yaml" == worker["args"][-1]
    assert volume["configMap"]["name"] == manifest("configmap.yaml")["metadata"]["name"]
    secret = manifest("secret.example.yaml")
    assert worker["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    assert set(secret["stringData"]) == {"MARKETO_CLIENT_ID", "MARKETO_CLIENT_SECRET"}


def test_resources_are_requested_and_limited() -> None:
    """Requests and limits for CPU and memory are set (sized from the benchmark)."""
    resources = container()["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) == {"cpu", "memory"}


def test_selectors_match_the_pods() -> None:
    """The Service and the PodDisruptionBudget select the Deployment's pods."""
    pods = manifest("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    service = manifest("service.yaml")["spec"]["selector"]
    pdb = manifest("pdb.yaml")["spec"]
    assert service.items() <= pods.items()
    assert pdb["selector"]["matchLabels"].items() <= pods.items()
    assert pdb["minAvailable"] == 1


def test_scaled_object_has_keda_shape() -> None:
    """The ScaledObject matches KEDA's CRD structure, with a kafka trigger's required keys."""
    scaled = manifest("keda-scaledobject.yaml")
    jsonschema.validate(scaled, SCALED_OBJECT)
    kafka = [t for t in scaled["spec"]["triggers"] if t["type"] == "kafka"]
    assert len(kafka) == 1
    assert set(kafka[0]["metadata"]) >= KAFKA_TRIGGER_KEYS


def test_scaled_object_targets_the_workers_group(k8s_config: Settings) -> None:
    """KEDA scales the Deployment on the lag of the group and topic the worker consumes."""
    spec = manifest("keda-scaledobject.yaml")["spec"]
    trigger = spec["triggers"][0]["metadata"]
    assert spec["scaleTargetRef"]["name"] == manifest("deployment.yaml")["metadata"]["name"]
    assert trigger["consumerGroup"] == k8s_config.kafka.group_id
    assert trigger["topic"] == k8s_config.kafka.topic
    assert trigger["bootstrapServers"] == k8s_config.kafka.bootstrap_servers


def test_scaling_stays_within_the_budget(k8s_config: Settings) -> None:
    """At most budget.concurrency replicas (each keeps one call in flight at least), and at
    least 2 so that the PodDisruptionBudget still lets a node drain."""
    spec = manifest("keda-scaledobject.yaml")["spec"]
    assert 2 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert spec["maxReplicaCount"] <= k8s_config.marketo.budget.concurrency
    assert spec["triggers"][0]["metadata"]["allowIdleConsumers"] == "false"


def test_the_deployment_leaves_the_replica_count_to_keda() -> None:
    """A count in the Deployment would reset KEDA's at every apply (a rebalance each way)."""
    deployment = manifest("deployment.yaml")
    assert deployment["kind"] == "Deployment"
    assert "replicas" not in deployment["spec"]


def test_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    """`kubectl apply -k` applies each manifest once and never the placeholder credentials."""
    kustomization = manifest("kustomization.yaml")
    expected = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert sorted(kustomization["resources"]) == sorted(expected)


def dockerfile() -> str:
    return (DOCKER / "Dockerfile").read_text()


def test_image_is_multi_stage_and_runs_as_non_root() -> None:
    """The Dockerfile builds in one stage and runs in another, as a numeric non-root user."""
    text = dockerfile()
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) >= 2
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users
    assert users[-1].split(":")[0].isdigit()
    assert int(users[-1].split(":")[0]) != 0


def test_image_runs_the_config_the_deployment_mounts() -> None:
    """ENTRYPOINT is marketo-worker, CMD runs /etc/marketo-worker/config.yaml, 9464 exposed."""
    text = dockerfile()
    assert 'ENTRYPOINT ["marketo-worker"]' in text
    assert 'CMD ["run", "/etc/marketo-worker/config.yaml"]' in text
    assert re.search(r"^EXPOSE 9464$", text, re.MULTILINE)
    assert container()["args"] == ["run", "/etc/marketo-worker/config.yaml"]


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DOCKER / "compose.yaml").read_text()))


def test_compose_has_the_whole_stack() -> None:
    """Kafka, the sandbox, two workers, Prometheus and Grafana."""
    services = compose()["services"]
    assert {"kafka", "sandbox", "worker-1", "worker-2", "prometheus", "grafana"} <= set(services)
    assert services["sandbox"]["command"][:1] == ["sandbox"]


def test_compose_mounts_files_that_exist() -> None:
    """Every bind mount's source is in the repository (paths relative to compose.yaml)."""
    sources = [
        volume.split(":")[0]
        for service in compose()["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith(".")
    ]
    assert sources
    assert [s for s in sources if not (DOCKER / s).exists()] == []


def test_compose_workers_have_distinct_scraped_ports(tmp_path: Path) -> None:
    """Both workers load the compose config; their metrics ports differ and Prometheus scrapes
    each one."""
    services = compose()["services"]
    workers = [services["worker-1"], services["worker-2"]]
    ports = [int(w["environment"]["WORKER_TELEMETRY__METRICS_PORT"]) for w in workers]
    config = load_from_text((DOCKER / "config.yaml").read_text(), tmp_path)
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus-compose.yml").read_text())
    targets = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    assert len(set(ports)) == 2
    assert config.telemetry.metrics_host == "0.0.0.0"
    assert sorted(int(t.rsplit(":", 1)[1]) for t in targets) == sorted(ports)


def compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    version = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, timeout=60, check=False
    )
    return version.returncode == 0


def test_docker_compose_accepts_the_stack() -> None:
    """`docker compose config` (no engine needed) accepts compose.yaml."""
    if not compose_plugin():
        pytest.skip("no docker CLI with the compose plugin here")
    result = subprocess.run(
        ["docker", "compose", "-f", str(DOCKER / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
