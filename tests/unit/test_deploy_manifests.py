"""Invariants of the Dockerfile, docker-compose file and Kubernetes manifests."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pulseline.cli import build_parser
from tests.kafka_fixture import REPO

DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s"
PINNED = re.compile(r"^[\w./-]+:[\w.-]*\d[\w.-]*$")
# The commands the tests and `pulseline run` use, as CLI arguments.
SERVICE_COMMANDS = {
    ("gateway",),
    ("processors",),
    ("storage",),
    ("alerting",),
    ("topics", "create"),
    ("migrate",),
}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = load(COMPOSE)
    return doc


def pulseline_services() -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in compose()["services"].items()
        if str(svc.get("image", "")).startswith("pulseline:")
    }


def commands(svc: dict[str, Any]) -> list[tuple[str, ...]]:
    """The ``pulseline`` invocations a service runs (``sh -c "a && b"`` split into both)."""
    if svc.get("entrypoint") == ["sh", "-c"]:
        parts = [shlex.split(p) for p in svc["command"][0].split("&&")]
        assert all(p[0] == "pulseline" for p in parts), parts
        return [tuple(p[1:]) for p in parts]
    return [tuple(svc["command"])]


def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, doc)
        for path in sorted(K8S.rglob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def workloads() -> list[dict[str, Any]]:
    return [doc for _, doc in k8s_documents() if doc["kind"] in ("Deployment", "Job")]


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]["template"]["spec"]
    found: list[dict[str, Any]] = spec.get("initContainers", []) + spec["containers"]
    return found


# ---- docker compose ---------------------------------------------------------------------


def test_every_compose_image_is_pinned_to_a_version() -> None:
    for name, svc in compose()["services"].items():
        assert PINNED.match(svc["image"]), f"{name}: {svc['image']}"
        assert not svc["image"].endswith(":latest"), name


def test_three_kraft_brokers_with_rf_3_min_isr_2_and_no_unclean_election() -> None:
    services = compose()["services"]
    brokers = {n: s["environment"] for n, s in services.items() if n.startswith("kafka-")}
    assert len(brokers) == 3
    assert {env["KAFKA_NODE_ID"] for env in brokers.values()} == {"1", "2", "3"}
    for env in brokers.values():
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].count("@kafka-") == 3
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_compose_services_run_the_cli_commands_the_tests_use() -> None:
    parser = build_parser()
    seen = set()
    for name, svc in pulseline_services().items():
        for argv in commands(svc):
            parser.parse_args(list(argv))  # exits if the CLI has no such command
            seen.add(argv)
            assert argv in SERVICE_COMMANDS, f"{name} runs {argv}"
    assert seen == SERVICE_COMMANDS


def test_pulseline_services_use_the_brokers_and_the_clickhouse_server() -> None:
    for name, svc in pulseline_services().items():
        env = svc["environment"]
        assert env["PULSELINE_KAFKA_BOOTSTRAP"].count("kafka-") == 3, name
        assert env["PULSELINE_REPLICATION_FACTOR"] == "3", name
        assert env["PULSELINE_CLICKHOUSE_URL"].startswith("http://"), name
        assert env["PULSELINE_CLICKHOUSE_URL"].endswith("@clickhouse:8123"), name


def test_long_running_services_check_their_own_health_endpoint() -> None:
    ports = {"gateway": 8000, "storage": 8001, "processors": 6066, "alerting": 6067}
    for name, port in ports.items():
        svc = pulseline_services()[name]
        url = svc["environment"]["PULSELINE_HEALTHCHECK_URL"]
        assert url == f"http://127.0.0.1:{port}/healthz", name
    assert pulseline_services()["gateway"]["deploy"]["replicas"] >= 2


def test_prometheus_scrapes_every_service_on_its_metrics_port() -> None:
    config = load(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name, port in {
        "gateway": 8000,
        "processors": 6066,
        "storage": 8001,
        "alerting": 6067,
    }.items():
        sd = jobs[name]["dns_sd_configs"][0]
        assert sd["names"] == [name] and sd["port"] == port
    assert load(DEPLOY / "prometheus" / "alerts.yml")["groups"][0]["rules"]


def test_grafana_gets_the_clickhouse_plugin_and_both_data_sources() -> None:
    grafana = compose()["services"]["grafana"]
    assert grafana["environment"]["GF_PLUGINS_PREINSTALL_SYNC"].startswith(
        "grafana-clickhouse-datasource@"
    )
    sources = load(DEPLOY / "grafana" / "provisioning" / "datasources" / "pulseline.yml")
    kinds = {s["uid"]: s["type"] for s in sources["datasources"]}
    assert kinds == {
        "pulseline-prometheus": "prometheus",
        "pulseline-clickhouse": "grafana-clickhouse-datasource",
    }
    clickhouse = next(s for s in sources["datasources"] if s["uid"] == "pulseline-clickhouse")
    assert clickhouse["jsonData"]["username"] == "analyst"


def _compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, check=False
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _compose_available(), reason="the docker compose plugin is not here")
def test_docker_compose_accepts_the_file() -> None:
    done = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


# ---- Dockerfile -------------------------------------------------------------------------


def test_the_image_is_multi_stage_non_root_and_has_a_healthcheck() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    assert re.search(r"^COPY --from=build ", text, re.M)
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK ", text, re.M)
    for image in re.findall(r"^ARG PYTHON_IMAGE=(\S+)", text, re.M):
        assert PINNED.match(image) and not image.endswith(":latest")


# ---- Kubernetes -------------------------------------------------------------------------


def test_every_kubernetes_file_parses_and_names_its_kind() -> None:
    docs = k8s_documents()
    assert len(docs) >= 10
    assert all("kind" in doc and "apiVersion" in doc for _, doc in docs)


def test_the_kustomization_lists_every_base_manifest() -> None:
    listed = set(load(K8S / "kustomization.yaml")["resources"])
    base = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == base


def test_every_deployment_has_probes_on_healthz_and_readyz_and_resources() -> None:
    deployments = [d for d in workloads() if d["kind"] == "Deployment"]
    names = {d["metadata"]["name"] for d in deployments}
    assert names == {"gateway", "processors", "storage", "alerting"}
    for d in deployments:
        for c in containers(d):
            name = d["metadata"]["name"]
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", name
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", name
            assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
            assert c["resources"]["limits"]["memory"], name
            assert {"configMapRef": {"name": "pulseline-config"}} in c["envFrom"], name
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert d["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_kubernetes_runs_the_same_cli_commands_and_pins_every_image() -> None:
    parser = build_parser()
    seen = set()
    for doc in workloads():
        for c in containers(doc):
            parser.parse_args(c["args"])
            seen.add(tuple(c["args"]))
            assert c["image"] == "pulseline"  # the tag comes from the kustomization
    assert seen == SERVICE_COMMANDS
    assert load(K8S / "kustomization.yaml")["images"][0]["newTag"] != "latest"
    for _, doc in k8s_documents():
        for image in re.findall(r"image: (\S+)", yaml.safe_dump(doc)):
            assert image == "pulseline" or PINNED.match(image), image


def test_the_gateway_autoscales_and_every_deployment_has_a_disruption_budget() -> None:
    docs = [doc for _, doc in k8s_documents()]
    hpa = next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "gateway",
    }
    assert hpa["spec"]["minReplicas"] >= 2
    budgets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PodDisruptionBudget"}
    for d in workloads():
        if d["kind"] != "Deployment":
            continue
        labels = d["spec"]["template"]["metadata"]["labels"]
        selector = budgets[d["metadata"]["name"]]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items()


def test_the_operators_clusters_match_the_settings() -> None:
    config = next(d for _, d in k8s_documents() if d["kind"] == "ConfigMap")["data"]
    kafka = next(d for _, d in k8s_documents() if d["kind"] == "Kafka")
    assert config["PULSELINE_KAFKA_BOOTSTRAP"].startswith(f"{kafka['metadata']['name']}-kafka")
    settings = kafka["spec"]["kafka"]["config"]
    assert settings["min.insync.replicas"] == 2
    assert settings["unclean.leader.election.enable"] is False
    chi = next(d for _, d in k8s_documents() if d["kind"] == "ClickHouseInstallation")
    names = [c["name"] for c in chi["spec"]["configuration"]["clusters"]]
    assert config["PULSELINE_CLICKHOUSE_CLUSTER"] in names


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_builds_the_base() -> None:
    done = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(done.stdout) if d]
    assert kinds.count("Deployment") == 4 and "HorizontalPodAutoscaler" in kinds
