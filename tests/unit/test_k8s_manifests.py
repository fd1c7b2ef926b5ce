"""deploy/ manifests: Kubernetes objects validate against the Kubernetes JSON schemas (offline,
from kubernetes-validate), agree with the worker's configuration and the image, hold the sizing
the benchmark measured, and the KEDA objects, the image and the compose stack have the shape the
deployment relies on. tests/integration/test_kustomize_render.py renders them with kustomize."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from worker.config_file import load_settings
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKER = DEPLOY / "docker"
BUILTIN = ("deployment.yaml", "service.yaml", "pdb.yaml", "secret.example.yaml")
# the oldest Kubernetes still commonly run, and a recent one
VERSIONS = ("1.29", "1.33")
IMAGE = "marketo-audience-worker"
UID = 10001
SECRET_FILE = "/run/secrets/marketo/client_secret"
# Measured by `make bench` (docs/benchmark.md, docs/operations.md): the Deployment's resources
# are sized from these; test_sizing_figures_are_the_documented_ones keeps them in step.
IDLE_MIB = 70
MIB_PER_1M_PROFILES = 339  # RSS, 13 attributes, state.attributes: all
EVENTS_PER_S = 17_600  # one replica, one core
LIBRDKAFKA_PREFETCH_MIB = 64  # queued.max.messages.kbytes' default, which the worker keeps
UNMEASURED_HEADROOM = 1.25  # pending changes and allocator slack
SIZED_FOR_PROFILES = 3_000_000  # the design point deployment.yaml's comment states
# librdkafka's sasl.mechanism as KEDA's kafka scaler names it
KEDA_SASL = {"PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}
# The parts of KEDA's CRDs (keda.sh/v1alpha1) this deployment uses; no package ships their
# schemas, so these are written from them by hand.
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
                        "additionalProperties": False,
                        "properties": {
                            "type": {"type": "string"},
                            "name": {"type": "string"},
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "useCachedMetrics": {"type": "boolean"},
                            "metadata": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                            "authenticationRef": {
                                "type": "object",
                                "required": ["name"],
                                "additionalProperties": False,
                                "properties": {
                                    "name": {"type": "string"},
                                    "kind": {
                                        "enum": [
                                            "TriggerAuthentication",
                                            "ClusterTriggerAuthentication",
                                        ]
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
TRIGGER_AUTHENTICATION = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "TriggerAuthentication"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["secretTargetRef"],
            "properties": {
                "secretTargetRef": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["parameter", "name", "key"],
                        "additionalProperties": False,
                        "properties": {
                            "parameter": {"type": "string"},
                            "name": {"type": "string"},
                            "key": {"type": "string"},
                        },
                    },
                },
            },
        },
    },
}
# the API server's check of an environment variable's name (the JSON schema has none)
ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
KAFKA_TRIGGER_KEYS = {"bootstrapServers", "consumerGroup", "topic", "lagThreshold"}


def documents(name: str) -> list[dict[str, Any]]:
    return [dict(doc) for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def manifest(name: str) -> dict[str, Any]:
    (only,) = documents(name)
    return only


def example_secret(name: str) -> dict[str, str]:
    """The stringData of the example Secret called `name`."""
    (secret,) = [s for s in documents("secret.example.yaml") if s["metadata"]["name"] == name]
    return dict(secret["stringData"])


def load_from_text(text: str, directory: Path) -> Settings:
    """Validate a config text like `marketo-worker validate` (credentials not required)."""
    path = directory / "config.yaml"
    path.write_text(text)
    return load_settings(path, env={}, require_credentials=False)


@pytest.fixture(scope="module")
def k8s_config() -> Settings:
    """The worker configuration kustomization.yaml's configMapGenerator carries."""
    return load_settings(K8S / "config.yaml", env={}, require_credentials=False)


def pod() -> dict[str, Any]:
    return dict(manifest("deployment.yaml")["spec"]["template"]["spec"])


def container() -> dict[str, Any]:
    return dict(pod()["containers"][0])


def security(key: str) -> Any:
    """The container's effective security setting: its own, else the pod's."""
    own = container().get("securityContext", {})
    return own[key] if key in own else pod().get("securityContext", {}).get(key)


def env_value(name: str) -> dict[str, Any]:
    (entry,) = [e for e in container()["env"] if e["name"] == name]
    return dict(entry)


def package_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def mebibytes(quantity: str) -> float:
    """A Kubernetes memory quantity (Mi, Gi or bytes) in MiB."""
    for suffix, scale in (("Gi", 1024.0), ("Mi", 1.0), ("Ki", 1 / 1024)):
        if quantity.endswith(suffix):
            return float(quantity.removesuffix(suffix)) * scale
    return float(quantity) / 2**20


def cores(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", BUILTIN)
def test_manifest_validates_against_the_kubernetes_schema(name: str, version: str) -> None:
    """Each built-in object is valid for its apiVersion/kind, strictly (no unknown fields)."""
    for document in documents(name):
        kubernetes_validate.validate(document, version, strict=True)


def test_strict_validation_rejects_an_unknown_field() -> None:
    """The schema check is real: a misspelt field in the Deployment is refused."""
    broken = manifest("deployment.yaml")
    broken["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_config_file_is_a_valid_worker_config(k8s_config: Settings) -> None:
    """config.yaml passes the worker's own validation and listens off-loopback."""
    assert k8s_config.telemetry.metrics_host == "0.0.0.0"
    assert k8s_config.marketo.base_url.startswith("https://")


def test_config_comes_from_a_generator_the_deployment_mounts() -> None:
    """config.yaml is the configMapGenerator's only file, no fixed-name ConfigMap is applied,
    and the Deployment mounts the generated one (kustomize renames it with the hash)."""
    kustomization = manifest("kustomization.yaml")
    (generator,) = kustomization["configMapGenerator"]
    volume = next(v for v in pod()["volumes"] if v["name"] == "config")
    assert generator["files"] == ["config.yaml"]
    assert volume["configMap"]["name"] == generator["name"]
    assert volume["configMap"]["items"] == [{"key": "config.yaml", "path": "config.yaml"}]
    assert not kustomization.get("generatorOptions", {}).get("disableNameSuffixHash", False)


def test_image_tag_is_the_package_version() -> None:
    """kustomization.yaml's newTag and the Deployment's tag are pyproject.toml's version, the
    tag `make image` builds."""
    (image,) = manifest("kustomization.yaml")["images"]
    assert image["name"] == IMAGE
    assert image["newTag"] == package_version()
    assert container()["image"] == f"{IMAGE}:{package_version()}"


def test_pod_runs_as_the_image_user() -> None:
    """uid and gid 10001 (the Dockerfile's USER), non-root, and fsGroup 10001 for the secret."""
    users = re.findall(r"^USER\s+(\S+)", (DOCKER / "Dockerfile").read_text(), re.MULTILINE)
    assert users[-1].split(":")[0] == str(UID)
    assert security("runAsNonRoot") is True
    assert security("runAsUser") == UID
    assert security("runAsGroup") == UID
    assert pod()["securityContext"]["fsGroup"] == UID


def test_container_is_locked_down() -> None:
    """No privilege escalation, no capability, the runtime's seccomp profile, read-only root."""
    assert security("allowPrivilegeEscalation") is False
    assert security("capabilities") == {"drop": ["ALL"]}
    assert security("seccompProfile") == {"type": "RuntimeDefault"}
    assert security("readOnlyRootFilesystem") is True


def test_nothing_is_mounted_writable() -> None:
    """`run` writes no file (its state is in Kafka): every mount is read-only and no emptyDir
    exists; only the sandbox and the demo, which the pod does not run, use temporary files."""
    writers = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "worker").rglob("*.py")
        if "tempfile" in path.read_text()
    )
    assert writers == ["worker/commands/demo.py", "worker/sandbox/process.py"]
    assert all(mount.get("readOnly") is True for mount in container()["volumeMounts"])
    assert [v for v in pod()["volumes"] if "emptyDir" in v] == []


def test_marketo_secret_is_a_mounted_file() -> None:
    """MARKETO_CLIENT_SECRET_FILE names the secret's file, mounted from the Marketo Secret; the
    secret itself is in no environment variable."""
    worker = container()
    mount = next(
        m for m in worker["volumeMounts"] if m["mountPath"] == str(Path(SECRET_FILE).parent)
    )
    volume = next(v for v in pod()["volumes"] if v["name"] == mount["name"])
    assert env_value("MARKETO_CLIENT_SECRET_FILE") == {
        "name": "MARKETO_CLIENT_SECRET_FILE",
        "value": SECRET_FILE,
    }
    assert volume["secret"]["items"] == [{"key": "client_secret", "path": Path(SECRET_FILE).name}]
    assert "client_secret" in example_secret(volume["secret"]["secretName"])
    assert volume["secret"]["defaultMode"] & 0o007 == 0
    assert "envFrom" not in worker
    assert "MARKETO_CLIENT_SECRET" not in {e["name"] for e in worker["env"]}


def test_environment_names_pass_the_api_servers_check() -> None:
    """Every variable name matches the API server's rule (dots allowed since Kubernetes 1.8),
    which the schemas do not check."""
    names = [entry["name"] for entry in container()["env"]]
    assert [name for name in names if not ENV_NAME.fullmatch(name)] == []


def resolve_env(secret_dir: Path) -> dict[str, str]:
    """The container's environment with each secretKeyRef read from the example Secrets, and
    the secret file's path moved under `secret_dir`, where its content is written."""
    environ: dict[str, str] = {}
    for entry in container()["env"]:
        if "value" in entry:
            environ[entry["name"]] = entry["value"]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            environ[entry["name"]] = example_secret(ref["name"])[ref["key"]]
    volume = next(v for v in pod()["volumes"] if "secret" in v)
    values = example_secret(volume["secret"]["secretName"])
    for item in volume["secret"]["items"]:
        (secret_dir / item["path"]).write_text(values[item["key"]])
    environ["MARKETO_CLIENT_SECRET_FILE"] = str(secret_dir / Path(SECRET_FILE).name)
    return environ


def test_pod_environment_gives_the_worker_its_credentials(tmp_path: Path) -> None:
    """Loaded with the pod's environment (the example Secrets' values), config.yaml yields the
    Marketo credentials and a complete SASL login in every Kafka client's settings."""
    settings = load_settings(K8S / "config.yaml", env=resolve_env(tmp_path))
    marketo = example_secret("marketo-audience-worker-marketo")
    kafka = example_secret("marketo-audience-worker-kafka")
    client = settings.kafka.client_config()
    assert settings.marketo.client_id.get_secret_value() == marketo["client_id"]
    assert settings.marketo.client_secret.get_secret_value() == marketo["client_secret"]
    assert client["security.protocol"] == "SASL_SSL"
    assert client["sasl.username"] == kafka["username"]
    assert client["sasl.password"] == kafka["password"]


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
    """SIGKILL must not cut the SIGTERM flush: the grace period exceeds the shutdown deadline
    by at least 10 s for the commit and the group leave after it."""
    assert pod()["terminationGracePeriodSeconds"] >= k8s_config.flush.shutdown_deadline_s + 10


def test_deployment_runs_the_config_it_mounts() -> None:
    """The config volume is mounted where the container's args read config.yaml."""
    worker = container()
    mount = next(m for m in worker["volumeMounts"] if m["name"] == "config")
    assert f"{mount['mountPath']}/config.yaml" == worker["args"][-1]


def test_sizing_figures_are_the_documented_ones() -> None:
    """The measured figures the resources are sized from are the ones the docs report."""
    benchmark = " ".join((ROOT / "docs" / "benchmark.md").read_text().split())
    operations = " ".join((ROOT / "docs" / "operations.md").read_text().split())
    assert f"(`state.attributes: all`) {MIB_PER_1M_PROFILES}," in benchmark
    assert f"plus about {IDLE_MIB} MiB at idle" in operations
    assert f"about {EVENTS_PER_S:,} events/s" in operations


def test_memory_holds_every_profile_on_one_replica() -> None:
    """At minReplicaCount 2 a rollout leaves one replica owning every partition: the memory
    limit holds the design point's whole state by the measured figures, and equals the request."""
    resources = container()["resources"]
    replicas = manifest("keda-scaledobject.yaml")["spec"]["minReplicaCount"]
    profiles = SIZED_FOR_PROFILES / 1_000_000 / (replicas - 1)
    needed = (
        IDLE_MIB + MIB_PER_1M_PROFILES * profiles + LIBRDKAFKA_PREFETCH_MIB
    ) * UNMEASURED_HEADROOM
    assert mebibytes(resources["limits"]["memory"]) >= needed
    assert resources["requests"]["memory"] == resources["limits"]["memory"]
    assert f"sized for {SIZED_FOR_PROFILES // 1_000_000} million profiles" in " ".join(
        (K8S / "deployment.yaml").read_text().replace("#", " ").split()
    )


def test_cpu_requests_the_core_one_process_uses() -> None:
    """One core requested (the Python thread's), a limit above it for librdkafka's threads."""
    resources = container()["resources"]
    assert cores(resources["requests"]["cpu"]) == 1
    assert cores(resources["limits"]["cpu"]) > 1


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


def test_trigger_authentication_has_keda_shape() -> None:
    """The TriggerAuthentication matches KEDA's CRD structure."""
    jsonschema.validate(manifest("keda-triggerauthentication.yaml"), TRIGGER_AUTHENTICATION)


def test_keda_schema_check_rejects_an_unknown_trigger_field() -> None:
    """The hand-written schema is real: a misspelt authenticationRef is refused."""
    broken = manifest("keda-scaledobject.yaml")
    trigger = broken["spec"]["triggers"][0]
    trigger["authenticationRefs"] = trigger.pop("authenticationRef")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCALED_OBJECT)


def test_scaled_object_targets_the_workers_group(k8s_config: Settings) -> None:
    """KEDA scales the Deployment on the lag of the group and topic the worker consumes."""
    spec = manifest("keda-scaledobject.yaml")["spec"]
    trigger = spec["triggers"][0]["metadata"]
    assert spec["scaleTargetRef"]["name"] == manifest("deployment.yaml")["metadata"]["name"]
    assert trigger["consumerGroup"] == k8s_config.kafka.group_id
    assert trigger["topic"] == k8s_config.kafka.topic
    assert trigger["bootstrapServers"] == k8s_config.kafka.bootstrap_servers


def test_keda_logs_in_to_kafka_like_the_worker(k8s_config: Settings) -> None:
    """The trigger's authenticationRef is the TriggerAuthentication, which reads username and
    password from the Secret the worker reads them from, with the worker's mechanism and TLS."""
    trigger = manifest("keda-scaledobject.yaml")["spec"]["triggers"][0]
    auth = manifest("keda-triggerauthentication.yaml")
    refs = {ref["parameter"]: (ref["name"], ref["key"]) for ref in auth["spec"]["secretTargetRef"]}
    worker_refs = {
        option: (ref["name"], ref["key"])
        for option in ("username", "password")
        for ref in [env_value(f"WORKER_KAFKA__OPTIONS__sasl.{option}")["valueFrom"]["secretKeyRef"]]
    }
    options = k8s_config.kafka.options
    assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
    assert refs == worker_refs
    assert all(key in example_secret(name) for name, key in refs.values())
    assert trigger["metadata"]["sasl"] == KEDA_SASL[options["sasl.mechanism"]]
    tls = options["security.protocol"] in {"SASL_SSL", "SSL"}
    assert trigger["metadata"]["tls"] == ("enable" if tls else "disable")


def test_scaling_stays_within_the_budget(k8s_config: Settings) -> None:
    """At most budget.concurrency replicas (each keeps one call in flight at least), and at
    least 2 so that the PodDisruptionBudget still lets a node drain."""
    spec = manifest("keda-scaledobject.yaml")["spec"]
    assert 2 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert spec["maxReplicaCount"] <= k8s_config.marketo.budget.concurrency
    assert spec["triggers"][0]["metadata"]["allowIdleConsumers"] == "false"


def test_lag_threshold_is_worth_a_rebalance() -> None:
    """A replica's target lag is more than 5 s of its measured ingest (a smaller backlog is not
    worth a rebalance and a restore) and less than one polling interval's worth."""
    spec = manifest("keda-scaledobject.yaml")["spec"]
    threshold = int(spec["triggers"][0]["metadata"]["lagThreshold"])
    assert 5 * EVENTS_PER_S <= threshold <= spec["pollingInterval"] * EVENTS_PER_S


def test_the_deployment_leaves_the_replica_count_to_keda() -> None:
    """A count in the Deployment would reset KEDA's at every apply (a rebalance each way)."""
    deployment = manifest("deployment.yaml")
    assert deployment["kind"] == "Deployment"
    assert "replicas" not in deployment["spec"]


def test_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    """`kubectl apply -k` applies each manifest once and never the placeholder credentials."""
    kustomization = manifest("kustomization.yaml")
    others = {"kustomization.yaml", "secret.example.yaml", "config.yaml"}
    expected = {p.name for p in K8S.glob("*.yaml")} - others
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
