"""The deployment files under deploy/, checked without docker or a cluster.

The compose file and the Kubernetes manifests are read as YAML and their voxlive
containers as the command lines they start (the image's ENTRYPOINT, then their flags,
under their environment), parsed by voxlive's own CLI, so that a renamed flag or
variable, a probe on the wrong port, an autoscaler aimed at a Deployment that does not
exist or at the wrong consumer group fails here rather than in someone's cluster.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from voxlive.cli.parser import build_parser
from voxlive.protocol.types import PRIORITIES
from voxlive.server.config import Config, env_name
from voxlive.server.streams import GROUP, work_key

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "docker-compose.yml"

# Added with the scale-out roles (`voxlive serve --role gateway|worker|all`, `--workers N`):
# accepted here before the settings exist, checked like the others once they do.
SCALE_OUT_ENV = {"VOXLIVE_ROLE", "VOXLIVE_WORKERS"}
SCALE_OUT_FLAGS = {"--role", "--workers"}
HEALTH_PATHS = {"/healthz", "/readyz"}
ROLES = {"gateway", "worker", "all"}


# --- reading ---------------------------------------------------------------------------


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml"))


def load(path: Path) -> list[Any]:
    """The documents of a YAML file (empty ones dropped)."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def is_kustomization(path: Path) -> bool:
    return path.name in ("kustomization.yaml", "kustomization.yml")


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes object under deploy/k8s, with its file."""
    return [
        (path, doc)
        for path in yaml_files()
        if K8S in path.parents and not is_kustomization(path)
        for doc in load(path)
    ]


def objects(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in manifests() if doc["kind"] == kind]


def the(kind: str, name: str) -> dict[str, Any]:
    (found,) = [doc for doc in objects(kind) if doc["metadata"]["name"] == name]
    return found


def entrypoint() -> list[str]:
    """The image's exec-form ENTRYPOINT (tests/test_dockerfile.py checks the rest)."""
    lines = [
        line
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("ENTRYPOINT")
    ]
    argv = json.loads(lines[-1].removeprefix("ENTRYPOINT"))
    assert argv[:2] == ["voxlive", "serve"], argv
    return list(argv)


def image_port() -> str:
    """The image's ``ENV VOXLIVE_PORT``: what its HEALTHCHECK asks when nothing overrides it."""
    text = (ROOT / "Dockerfile").read_text()
    (port,) = re.findall(r"^ENV VOXLIVE_PORT=(\d+)$", text, re.MULTILINE)
    return port


def serve_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices["serve"]  # type: ignore[no-any-return]


SERVE_FLAGS = set(serve_parser()._option_string_actions)


def flags_of(args: list[str]) -> list[str]:
    return [a.split("=")[0] for a in args if a.startswith("--")]


def split_scale_out(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """``args`` without the scale-out flags the parser does not know yet, and those flags."""
    rest: list[str] = []
    taken: dict[str, str] = {}
    words = iter(args)
    for word in words:
        flag, eq, value = word.partition("=")
        if flag in SCALE_OUT_FLAGS and flag not in SERVE_FLAGS:
            taken[flag] = value if eq else next(words)
        else:
            rest.append(word)
    return rest, taken


class Server:
    """What a voxlive container starts: its settings and its role."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        unknown = [f for f in flags_of(args) if f not in SERVE_FLAGS | SCALE_OUT_FLAGS]
        assert not unknown, f"not flags of voxlive serve: {unknown}"
        argv, scale_out = split_scale_out(entrypoint()[1:] + args)
        parsed = build_parser().parse_args(argv)  # a renamed flag exits here (SystemExit 2)
        voxlive_env = {k: v for k, v in env.items() if k.startswith("VOXLIVE_")}
        self.env = voxlive_env
        # Always an env mapping: given None, Config would read this process's os.environ.
        self.config = Config.from_args(parsed, env=voxlive_env)
        self.role = (
            getattr(self.config, "role", None)
            or scale_out.get("--role")
            or voxlive_env.get(env_name("role"))
            or "all"
        )
        assert self.role in ROLES, self.role


def redis_address(url: str | None) -> tuple[str, int]:
    assert url, "no Redis URL (VOXLIVE_REDIS_URL or --redis-url)"
    parts = urlsplit(url)
    assert parts.scheme in ("redis", "rediss") and parts.hostname, url
    return parts.hostname, parts.port or 6379


def seconds(duration: str | int | float) -> float:
    """A compose duration (``45s``, ``1m30s``) or a number of seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def test_the_readers() -> None:
    assert seconds("1m30s") == 90 and seconds("45s") == 45 and seconds(10) == 10
    with pytest.raises(AssertionError):
        seconds("soon")
    rest, taken = split_scale_out(["--role", "worker", "--port", "1", "--workers=2"])
    assert "--port" in rest and "1" in rest
    if "--role" not in SERVE_FLAGS:
        assert taken["--role"] == "worker" and "worker" not in rest
    with pytest.raises(AssertionError, match="not flags"):
        Server(["--no-such-flag"], {})
    assert Server(["--port", "9000"], {}).config.port == 9000
    redis = {"VOXLIVE_REDIS_URL": "redis://redis:6379/0"}
    assert Server([], redis | {"VOXLIVE_ROLE": "worker"}).role == "worker"
    assert Server(["--role", "gateway"], redis).role == "gateway"
    assert Server([], {}).role == "all"
    assert redis_address("redis://redis:6379/0") == ("redis", 6379)


# --- every file ------------------------------------------------------------------------


def test_there_are_deploy_files() -> None:
    names = {p.relative_to(DEPLOY).as_posix() for p in yaml_files()}
    assert {"docker-compose.yml", "k8s/kustomization.yaml"} <= names


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_every_yaml_file_parses(path: Path) -> None:
    assert load(path), f"{path.name} is empty"


def _text_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file())


def test_every_voxlive_variable_is_a_setting() -> None:
    settings = {env_name(f.name) for f in Config.settings()} | SCALE_OUT_ENV
    used: dict[str, set[str]] = {}
    for path in _text_files():
        for name in re.findall(r"\bVOXLIVE_[A-Z0-9_]*[A-Z0-9]", path.read_text()):
            used.setdefault(name, set()).add(path.relative_to(DEPLOY).as_posix())
    assert {"VOXLIVE_REDIS_URL", "VOXLIVE_ROLE", "VOXLIVE_PORT"} <= used.keys()
    unknown = {name: sorted(files) for name, files in used.items() if name not in settings}
    assert not unknown, f"not settings of voxlive serve: {unknown}"


def test_no_file_names_a_namespace_of_its_own() -> None:
    for path, doc in manifests():
        assert "namespace" not in doc["metadata"], f"{path.name}: {doc['metadata']['name']}"


# --- docker-compose.yml ----------------------------------------------------------------

(COMPOSE_DOC,) = load(COMPOSE)
SERVICES: dict[str, dict[str, Any]] = COMPOSE_DOC["services"]


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: str(v) for k, v in env.items()}


def compose_args(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def compose_servers() -> dict[str, Server]:
    return {
        name: Server(compose_args(service), compose_env(service))
        for name, service in SERVICES.items()
        if "build" in service or str(service.get("image", "")).startswith("voxlive")
    }


def replicas(service: dict[str, Any]) -> int:
    return int(service.get("deploy", {}).get("replicas", 1))


def redis_service() -> str:
    (name,) = [n for n, s in SERVICES.items() if str(s.get("image", "")).startswith("redis:")]
    return name


def test_compose_redis_persists_and_reports_health() -> None:
    redis = SERVICES[redis_service()]
    assert redis["image"].startswith("redis:7")
    command = compose_args(redis)
    assert command[command.index("--appendonly") + 1] == "yes", "AOF: voices survive restarts"
    volumes = [v.split(":") for v in redis.get("volumes", [])]
    assert any(dst == "/data" and src in COMPOSE_DOC.get("volumes", {}) for src, dst in volumes)
    test = " ".join(redis["healthcheck"]["test"])
    assert "redis-cli" in test and "ping" in test


def test_compose_runs_a_gateway_and_at_least_two_workers() -> None:
    servers = compose_servers()
    roles = {name: server.role for name, server in servers.items()}
    assert sorted(roles.values()).count("gateway") == 1, roles
    workers = sum(replicas(SERVICES[n]) for n, role in roles.items() if role == "worker")
    assert workers >= 2, "`docker compose up` must start two workers"
    assert "all" not in roles.values(), roles


@pytest.mark.parametrize("name", sorted(compose_servers()))
def test_compose_voxlive_services(name: str) -> None:
    service, server = SERVICES[name], compose_servers()[name]
    assert redis_address(server.config.redis_url) == (redis_service(), 6379)
    assert service["depends_on"][redis_service()]["condition"] == "service_healthy"
    build = service["build"]
    assert (COMPOSE.parent / build["context"]).resolve() == ROOT
    assert (ROOT / build.get("dockerfile", "Dockerfile")).is_file()
    assert env_name("host") not in server.env, "the ENTRYPOINT's --host wins over it"
    # The image's HEALTHCHECK asks /healthz on VOXLIVE_PORT: a port moved by flag alone
    # would leave it asking the wrong one.
    if "healthcheck" not in service:
        assert server.env.get(env_name("port"), image_port()) == str(server.config.port)
    drain = server.config.graceful_shutdown_s
    assert seconds(service.get("stop_grace_period", "10s")) > drain, "SIGKILL before the drain"
    published = [str(p).rsplit(":", 1) for p in service.get("ports", [])]
    exposed = [str(p) for p in service.get("expose", [])]
    if server.role == "gateway":
        assert [str(server.config.port)] == [container for _, container in published]
    else:
        assert exposed == [str(server.config.port)], "/metrics and /readyz inside the network"
        if replicas(service) > 1:
            assert not published, "replicas cannot all bind one host port"


# --- Kubernetes ------------------------------------------------------------------------


def kustomizations() -> list[Path]:
    return [p for p in yaml_files() if is_kustomization(p)]


@pytest.mark.parametrize("path", kustomizations(), ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_kustomization_lists_exactly_its_manifests(path: Path) -> None:
    (doc,) = load(path)
    listed = doc.get("resources", [])
    for entry in listed + doc.get("components", []):
        assert (path.parent / entry).exists(), f"{path.name}: {entry} does not exist"
    files = {p.name for p in path.parent.iterdir() if p.suffix in (".yml", ".yaml")}
    files.discard(path.name)
    assert sorted(e for e in listed if (path.parent / e).is_file()) == sorted(files)


def test_every_k8s_folder_is_a_kustomization() -> None:
    for folder in {p.parent for p in yaml_files() if K8S in p.parents}:
        assert (folder / "kustomization.yaml").is_file(), f"{folder}: apply it how?"


def test_every_manifest_is_an_object() -> None:
    for path, doc in manifests():
        assert {"apiVersion", "kind", "metadata"} <= doc.keys(), path.name
        assert doc["metadata"].get("name"), path.name


def config_map_env(name: str) -> dict[str, str]:
    return {k: str(v) for k, v in the("ConfigMap", name)["data"].items()}


def container_env(container: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env |= config_map_env(source["configMapRef"]["name"])
    for var in container.get("env", []):
        assert "value" in var, f"{var['name']}: only literal values are read here"
        env[var["name"]] = str(var["value"])
    return env


def voxlive_containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return [c for c in containers if c["image"].split(":")[0].endswith("voxlive")]


def k8s_server(deployment: dict[str, Any]) -> tuple[dict[str, Any], Server]:
    (container,) = voxlive_containers(deployment)
    assert "command" not in container, "keep the image's ENTRYPOINT; flags go in args"
    return container, Server([str(a) for a in container.get("args", [])], container_env(container))


def deployments(role: str) -> list[dict[str, Any]]:
    return [
        d for d in objects("Deployment") if voxlive_containers(d) and k8s_server(d)[1].role == role
    ]


def test_k8s_runs_gateways_and_workers() -> None:
    assert len(deployments("gateway")) == 1 and len(deployments("worker")) == 1
    assert deployments("gateway")[0]["spec"]["replicas"] == 2
    assert not deployments("all")


def port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    return int(number)


def pre_stop_sleep(container: dict[str, Any]) -> float:
    hook = container.get("lifecycle", {}).get("preStop")
    if not hook:
        return 0.0
    if "sleep" in hook:
        return float(hook["sleep"]["seconds"])
    command = hook["exec"]["command"]
    assert command[0] == "sleep", command
    return float(command[1])


@pytest.mark.parametrize("role", ["gateway", "worker"])
def test_k8s_probes_ask_the_health_endpoints_on_the_server_port(role: str) -> None:
    (deployment,) = deployments(role)
    container, server = k8s_server(deployment)
    assert [p["containerPort"] for p in container["ports"]] == [server.config.port]
    probes = {k: container[k] for k in ("startupProbe", "livenessProbe", "readinessProbe")}
    for kind, probe in probes.items():
        assert probe["httpGet"]["path"] in HEALTH_PATHS, kind
        assert port_number(container, probe["httpGet"]["port"]) == server.config.port, kind
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    startup = probes["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, "room for model load"
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > server.config.graceful_shutdown_s + pre_stop_sleep(container)
    assert env_name("host") not in server.env, "the ENTRYPOINT's --host wins over it"
    redis_host, redis_port = redis_address(server.config.redis_url)
    service = the("Service", redis_host)
    assert [p["port"] for p in service["spec"]["ports"]] == [redis_port]
    assert container["image"] == "voxlive:latest"


def test_the_gateway_service_reaches_the_gateways() -> None:
    (deployment,) = deployments("gateway")
    container, server = k8s_server(deployment)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    services = [
        s
        for s in objects("Service")
        if s["spec"]["selector"].items() <= labels.items() and s["spec"]["selector"]
    ]
    (service,) = services
    (port,) = service["spec"]["ports"]
    assert port["port"] == 8765
    assert port_number(container, port.get("targetPort", port["port"])) == server.config.port
    worker_labels = deployments("worker")[0]["spec"]["template"]["metadata"]["labels"]
    assert not service["spec"]["selector"].items() <= worker_labels.items()


def test_workers_run_on_a_gpu() -> None:
    (deployment,) = deployments("worker")
    container, server = k8s_server(deployment)
    resources = container["resources"]
    assert int(resources["limits"]["nvidia.com/gpu"]) >= 1
    assert (
        resources.get("requests", {}).get("nvidia.com/gpu", 1)
        == resources["limits"]["nvidia.com/gpu"]
    ), "extended resources: requests equal limits"
    assert server.config.device.startswith("cuda")
    gateway, _ = k8s_server(deployments("gateway")[0])
    assert "nvidia.com/gpu" not in str(gateway.get("resources"))


def test_redis_persists_its_data() -> None:
    (worker,) = deployments("worker")
    _, server = k8s_server(worker)
    host, port = redis_address(server.config.redis_url)
    service = the("Service", host)
    (statefulset,) = [
        s
        for s in objects("StatefulSet")
        if service["spec"]["selector"].items()
        <= s["spec"]["template"]["metadata"]["labels"].items()
    ]
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("redis:7")
    args = [str(a) for a in container.get("command", []) + container.get("args", [])]
    assert args[args.index("--appendonly") + 1] == "yes"
    claims = {c["metadata"]["name"] for c in statefulset["spec"]["volumeClaimTemplates"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert any(mounts.get(claim) == "/data" for claim in claims), "AOF under /data, on a PVC"
    assert port_number(container, service["spec"]["ports"][0]["targetPort"]) == port


def test_keda_scales_the_workers_on_the_work_streams() -> None:
    (deployment,) = deployments("worker")
    (scaled,) = objects("ScaledObject")
    target = scaled["spec"]["scaleTargetRef"]
    assert target["name"] == deployment["metadata"]["name"]
    assert target.get("kind", "Deployment") == "Deployment"
    triggers = scaled["spec"]["triggers"]
    assert {t["type"] for t in triggers} == {"redis-streams"}
    assert {t["metadata"]["consumerGroup"] for t in triggers} == {GROUP}
    assert {t["metadata"]["stream"] for t in triggers} == {work_key(p) for p in PRIORITIES}
    _, server = k8s_server(deployment)
    redis_host, redis_port = redis_address(server.config.redis_url)
    for trigger in triggers:
        host, _, port = trigger["metadata"]["address"].rpartition(":")
        assert host.split(".")[0] == redis_host and int(port) == redis_port, trigger
        assert host.endswith((".svc", ".svc.cluster.local")), "KEDA resolves from its namespace"
    modifiers = scaled["spec"].get("advanced", {}).get("scalingModifiers")
    if modifiers:
        names = {t["name"] for t in triggers}
        used = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", modifiers["formula"]))
        assert used == names, "the formula adds every trigger and names no other"
    assert scaled["spec"].get("minReplicaCount", 0) >= 1, "a cold worker takes seconds"


def test_the_hpa_alternative_scales_the_workers_on_queue_metrics() -> None:
    (deployment,) = deployments("worker")
    (hpa,) = objects("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    metrics = [m[m["type"].lower()]["metric"]["name"] for m in hpa["spec"]["metrics"]]
    assert "voxlive_work_queue_waiting" in metrics
    assert all(m.startswith("voxlive_work_queue_") for m in metrics), metrics
    # Both autoscalers must never be applied together: the HPA comes in a Component
    # that deletes the ScaledObject, and the default kustomization does not list it.
    (component,) = [p for p in kustomizations() if load(p)[0]["kind"] == "Component"]
    deleted = [yaml.safe_load(p["patch"]) for p in load(component)[0]["patches"]]
    assert {(d["kind"], d["metadata"]["name"], d["$patch"]) for d in deleted} == {
        ("ScaledObject", objects("ScaledObject")[0]["metadata"]["name"], "delete")
    }
    (top,) = load(K8S / "kustomization.yaml")
    assert component.parent.name not in top.get("components", [])
