"""deploy/k8s rendered by kustomize (`kubectl apply -k` renders the same way): the objects it
applies, the generated ConfigMap that rolls the pods when config.yaml changes, and the image."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.kustomize_tool import kustomize

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KINDS = {
    "ConfigMap",
    "Deployment",
    "PodDisruptionBudget",
    "ScaledObject",
    "Service",
    "TriggerAuthentication",
}
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}


def render(directory: Path) -> list[dict[str, Any]]:
    """`kustomize build directory` as objects."""
    result = subprocess.run(
        [str(kustomize()), "build", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [dict(doc) for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    """deploy/k8s as kustomize renders it."""
    return render(K8S)


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(one(objects, "Deployment")["spec"]["template"]["spec"])


def config_volume(objects: list[dict[str, Any]]) -> str:
    volume = next(v for v in pod_spec(objects)["volumes"] if v["name"] == "config")
    return str(volume["configMap"]["name"])


def test_render_has_each_object_once(rendered: list[dict[str, Any]]) -> None:
    """The render holds the worker's objects, each once, and no Secret (those are made apart)."""
    assert sorted(o["kind"] for o in rendered) == sorted(KINDS)


@pytest.mark.parametrize("version", ["1.29", "1.33"])
def test_rendered_objects_validate_strictly(rendered: list[dict[str, Any]], version: str) -> None:
    """What kustomize emits (labels and the generated ConfigMap added) is still schema-valid."""
    for item in rendered:
        if item["kind"] not in KEDA_KINDS:
            kubernetes_validate.validate(item, version, strict=True)


def test_deployment_mounts_the_generated_config(rendered: list[dict[str, Any]]) -> None:
    """The ConfigMap's name carries a hash suffix, the Deployment mounts it by that name, and
    it holds config.yaml as written."""
    configmap = one(rendered, "ConfigMap")
    name = configmap["metadata"]["name"]
    assert name.startswith("marketo-audience-worker-config-")
    assert config_volume(rendered) == name
    assert configmap["data"] == {"config.yaml": (K8S / "config.yaml").read_text()}


def test_editing_the_config_rolls_the_pods(tmp_path: Path, rendered: list[dict[str, Any]]) -> None:
    """A changed config.yaml renders a ConfigMap of another name and so another pod template,
    which makes the Deployment roll its pods."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    config = copy / "config.yaml"
    config.write_text(config.read_text().replace("log_level: info", "log_level: debug"))
    edited = render(copy)
    assert config_volume(edited) != config_volume(rendered)
    assert pod_spec(edited) != pod_spec(rendered)


def test_rendered_image_is_the_package_version(rendered: list[dict[str, Any]]) -> None:
    """The image after kustomize's `images:` is marketo-audience-worker:<pyproject version>."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    (worker,) = pod_spec(rendered)["containers"]
    assert worker["image"] == f"marketo-audience-worker:{version}"


def test_every_object_is_labelled_part_of_the_worker(rendered: list[dict[str, Any]]) -> None:
    """kustomize's common label reaches every object, generated or not."""
    labels = [o["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") for o in rendered]
    assert labels == ["marketo-audience-worker"] * len(rendered)
