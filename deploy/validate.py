#!/usr/bin/env python3
"""Static checks of the deploy/ folder of FlexCharge Outbox.

Run from anywhere (paths are relative to this file):

    python3 deploy/validate.py            # the checks below; needs Python 3, PyYAML and promtool
    python3 deploy/validate.py --tools    # also hadolint, `kubectl kustomize` and
                                          # `systemd-analyze verify`, where installed

It builds and runs nothing: it parses the Kubernetes manifests, the Dockerfile and the systemd
units, and cross-checks them against each other and against the repository (the Swift sources
for option names, defaults, environment variables, HTTP routes, metric names and labels, the
worker's connection count; migrations/; Package.swift). The alert rules and the dashboard's queries
go through promtool (check, unit tests, parsing).

Prints one line per check ("PASS ..." or "FAIL ..."), then `deploy: N passed, M failed`, and
exits 1 when any check failed.
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - reported as a failed check
    yaml = None

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent
K8S = DEPLOY / "kubernetes"
SYSTEMD = DEPLOY / "systemd"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"
README = DEPLOY / "README.md"

WORKER_COMMAND = REPO / "Sources/OutboxCLI/Commands/WorkerCommand.swift"
SERVE_COMMAND = REPO / "Sources/OutboxCLI/Commands/ServeCommand.swift"
MIGRATE_COMMAND = REPO / "Sources/OutboxCLI/Commands/MigrateCommand.swift"
DATABASE_OPTIONS = REPO / "Sources/OutboxCLI/Support/DatabaseOptions.swift"


def source_file(name: str) -> Path:
    """A Swift file found by name anywhere under Sources/ (targets get split and files move)."""
    found = sorted((REPO / "Sources").rglob(name))
    return found[0] if found else REPO / "Sources" / name


HEALTH_SERVER = source_file("HealthServer.swift")
INTEGRATION_ROUTE = source_file("IntegrationRoute.swift")

def integration_routes(method: str | None = None) -> set[str]:
    """The paths `serve` answers (IntegrationRoute.swift, their one home), of `method` ("get", "post") or all."""
    text = read(INTEGRATION_ROUTE)
    paths = dict(re.findall(r'case \.(\w+): "([^"]+)"', text))
    methods: dict[str, str] = {}
    for names, verb in re.findall(r'case ((?:\.\w+(?:, )?)+): \.(get|post)\b', text):
        for name in re.findall(r'\.(\w+)', names):
            methods[name] = verb
    return {path for name, path in paths.items() if method is None or methods.get(name) == method}


WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
CLUSTER_SCOPED_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass"}


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        status = "PASS" if ok else "FAIL"
        print(f"{status}  {name}" + (f": {detail}" if detail else ""))
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.is_file() else ""


# ----------------------------------------------------------------------------------------------
# What the Swift sources say (so that the deploy files cannot drift from the program)
# ----------------------------------------------------------------------------------------------

def kebab(name: str) -> str:
    """ArgumentParser's default long name: graceSeconds -> grace-seconds."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"-\1", name).lower()


def swift_options(*files: Path) -> set[str]:
    """Long option names (--x) declared with @Option/@Flag in the given Swift files."""
    names: set[str] = set()
    for path in files:
        text = read(path)
        # customLong("database-url") wins over the property name.
        for match in re.finditer(r'@(?:Option|Flag)\b', text):
            end = match.end()
            if end < len(text) and text[end] == "(":
                end = closing_paren(text, end)
            declaration = text[match.start():end]
            name = re.match(r'\s*var\s+(\w+)', text[end:])
            if not name:
                continue
            custom = re.search(r'customLong\("([^"]+)"\)', declaration)
            names.add(custom.group(1) if custom else kebab(name.group(1)))
    return names


def closing_paren(text: str, start: int) -> int:
    """The index after the parenthesis that closes the one at `start`, skipping string literals
    (help texts hold parentheses of their own)."""
    depth, index, quoted = 0, start, False
    while index < len(text):
        char = text[index]
        if quoted:
            if char == "\\":
                index += 1
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return len(text)


def swift_type_file(type_name: str) -> Path | None:
    """The Swift file under Sources/OutboxCLI that declares `struct <type_name>`."""
    for path in sorted((REPO / "Sources/OutboxCLI").rglob("*.swift")):
        if re.search(rf"\bstruct\s+{re.escape(type_name)}\b", read(path)):
            return path
    return None


def command_options(path: Path, seen: set[str] | None = None) -> set[str]:
    """The long options of a command: its own @Option/@Flag, and those of every @OptionGroup type
    it includes (recursively), wherever that type is declared."""
    seen = set() if seen is None else seen
    names = swift_options(path)
    for type_name in re.findall(r"@OptionGroup(?:\([^)]*\))?\s+var\s+\w+\s*:\s*(\w+)", read(path)):
        if type_name in seen:
            continue
        seen.add(type_name)
        declared = swift_type_file(type_name)
        if declared is not None:
            names |= command_options(declared, seen)
    return names


def swift_default(path: Path, property_name: str) -> float | None:
    """The numeric default of `var <property_name> = <number>` in a Swift file."""
    match = re.search(rf"\bvar\s+{property_name}\s*=\s*([0-9][0-9_.]*)\b", read(path))
    return float(match.group(1).replace("_", "")) if match else None


# Defaults read from the commands (so that a changed default is noticed here).
DEFAULT_GRACE_SECONDS = swift_default(WORKER_COMMAND, "graceSeconds") or 20.0
DEFAULT_HTTP_PORT = int(swift_default(WORKER_COMMAND, "httpPort") or 9090)
DEFAULT_SERVE_PORT = int(swift_default(SERVE_COMMAND, "port") or 8081)
DEFAULT_SERVE_DATABASE_CONNECTIONS = int(swift_default(SERVE_COMMAND, "databaseConnections") or 4)


def option_value(args: list[str], option: str) -> str | None:
    """The last value of --option in an argument list ("--x=1" or "--x 1"), as ArgumentParser."""
    value = None
    for index, arg in enumerate(args):
        if arg == option and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith(option + "="):
            value = arg.split("=", 1)[1]
    return value


def long_options(args: list[str]) -> list[str]:
    return [arg.split("=", 1)[0] for arg in args if arg.startswith("--")]


# ----------------------------------------------------------------------------------------------
# Kubernetes
# ----------------------------------------------------------------------------------------------

def load_manifests(report: Report) -> dict[str, list[dict]]:
    manifests: dict[str, list[dict]] = {}
    if not report.check("PyYAML available", yaml is not None, "import yaml"):
        return manifests
    files = sorted(list(K8S.glob("*.yaml")) + list(K8S.glob("*.yml")))
    report.check("kubernetes manifests present", bool(files), f"{len(files)} file(s) in {rel(K8S)}")
    for path in files:
        try:
            docs = [doc for doc in yaml.safe_load_all(read(path)) if doc is not None]
        except yaml.YAMLError as error:
            report.check(f"parses {rel(path)}", False, str(error).replace("\n", " "))
            continue
        problems = []
        for doc in docs:
            if not isinstance(doc, dict):
                problems.append("a document is not a mapping")
                continue
            if path.name.startswith("kustomization"):
                continue
            for field in ("apiVersion", "kind"):
                if not doc.get(field):
                    problems.append(f"a document has no {field}")
            if not (doc.get("metadata") or {}).get("name"):
                problems.append(f"{doc.get('kind', '?')} without metadata.name")
        kinds = ", ".join(f"{d.get('kind', 'Kustomization')}/{(d.get('metadata') or {}).get('name', '-')}"
                          for d in docs if isinstance(d, dict))
        report.check(f"parses {rel(path)}", bool(docs) and not problems,
                     "; ".join(problems) if problems else f"{len(docs)} document(s): {kinds}")
        manifests[path.name] = [d for d in docs if isinstance(d, dict)]
    return manifests


def pod_spec(doc: dict) -> dict:
    spec = doc.get("spec") or {}
    if doc.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    return ((spec.get("template") or {}).get("spec") or {})


def pod_labels(doc: dict) -> dict:
    spec = doc.get("spec") or {}
    return (((spec.get("template") or {}).get("metadata") or {}).get("labels") or {})


def pod_annotations(doc: dict) -> dict:
    spec = doc.get("spec") or {}
    return (((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {})


def containers(doc: dict) -> list[dict]:
    spec = pod_spec(doc)
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def check_kustomization(report: Report, manifests: dict[str, list[dict]], workloads: list[tuple[str, dict]]) -> None:
    name = next((n for n in ("kustomization.yaml", "kustomization.yml", "Kustomization") if n in manifests), None)
    if not report.check("kustomization present", name is not None, rel(K8S / "kustomization.yaml")):
        return
    kustomization = manifests[name][0] if manifests[name] else {}
    resources = list(kustomization.get("resources") or [])
    report.check("kustomization lists resources", bool(resources), ", ".join(resources))
    for resource in resources:
        report.check(f"kustomization resource exists: {resource}", (K8S / resource).exists(), rel(K8S / resource))
    manifests_here = {n for n in manifests if not n.startswith("kustomization")}
    unlisted = sorted(manifests_here - set(resources) - {"secret-example.yaml"})
    report.check("every manifest is listed in kustomization", not unlisted,
                 f"not listed: {', '.join(unlisted)}" if unlisted else f"{len(resources)} listed")
    report.check("secret-example.yaml is not applied by kustomization",
                 "secret-example.yaml" not in resources,
                 "placeholders must never overwrite the real Secrets")

    # Images: every workload image is rewritten by kustomization's images: (registry + tag).
    image_names = {entry.get("name") for entry in kustomization.get("images") or []}
    used = sorted({c.get("image", "").split(":")[0].split("@")[0] for _, doc in workloads for c in containers(doc)})
    missing = [image for image in used if image not in image_names]
    report.check("kustomization images cover every container image", not missing and bool(used),
                 f"missing: {missing}" if missing else f"{', '.join(used)}")
    tags = {(e.get("newName"), e.get("newTag"), e.get("digest")) for e in kustomization.get("images") or []}
    report.check("kustomization pins an image tag or digest",
                 all(tag or digest for _, tag, digest in tags) and bool(tags), str(sorted(map(str, tags))))

    namespace = kustomization.get("namespace")
    if namespace:
        wrong = [f"{d.get('kind')}/{d['metadata'].get('name')}={d['metadata'].get('namespace')}"
                 for file, docs in manifests.items() if file in resources or file == "secret-example.yaml"
                 for d in docs if d.get("kind") not in CLUSTER_SCOPED_KINDS | {None}
                 and (d.get("metadata") or {}).get("namespace") not in (None, namespace)]
        report.check(f"namespaced objects use namespace {namespace}", not wrong, ", ".join(wrong) or "all match")


def declared_secrets(manifests: dict[str, list[dict]]) -> dict[str, set[str]]:
    secrets: dict[str, set[str]] = {}
    for doc in manifests.get("secret-example.yaml", []):
        if doc.get("kind") == "Secret":
            keys = set((doc.get("stringData") or {}).keys()) | set((doc.get("data") or {}).keys())
            secrets[doc["metadata"]["name"]] = keys
    return secrets


def check_secret_example(report: Report, manifests: dict[str, list[dict]]) -> dict[str, set[str]]:
    secrets = declared_secrets(manifests)
    report.check("secret-example.yaml declares Secrets", bool(secrets),
                 ", ".join(f"{n} [{', '.join(sorted(k))}]" for n, k in sorted(secrets.items())))
    not_placeholders = []
    for doc in manifests.get("secret-example.yaml", []):
        if doc.get("kind") != "Secret":
            continue
        for key, value in (doc.get("stringData") or {}).items():
            if "REPLACE_ME" not in str(value):
                not_placeholders.append(f"{doc['metadata']['name']}/{key}")
        for key in (doc.get("data") or {}):
            not_placeholders.append(f"{doc['metadata']['name']}/{key} (data: use stringData placeholders)")
    report.check("secret-example.yaml holds placeholders only", not not_placeholders,
                 f"not a REPLACE_ME placeholder: {', '.join(not_placeholders)}" if not_placeholders
                 else "every value contains REPLACE_ME")
    return secrets


def check_workload_secrets(report: Report, label: str, doc: dict, secrets: dict[str, set[str]]) -> None:
    spec = pod_spec(doc)
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    for container in containers(doc):
        cname = container.get("name")
        for env in container.get("env") or []:
            ref = ((env.get("valueFrom") or {}).get("secretKeyRef"))
            if ref:
                ok = ref.get("name") in secrets and ref.get("key") in secrets.get(ref.get("name"), set())
                report.check(f"{label}/{cname} env {env.get('name')} -> Secret {ref.get('name')}/{ref.get('key')}",
                             ok, "declared in secret-example.yaml" if ok else "no such Secret/key in secret-example.yaml")
        for source in container.get("envFrom") or []:
            ref = source.get("secretRef")
            if ref:
                report.check(f"{label}/{cname} envFrom Secret {ref.get('name')}", ref.get("name") in secrets,
                             "declared in secret-example.yaml")
        for mount in container.get("volumeMounts") or []:
            report.check(f"{label}/{cname} volumeMount {mount.get('name')} -> volume", mount.get("name") in volumes,
                         f"at {mount.get('mountPath')}")
    for vname, volume in volumes.items():
        sources = []
        if "secret" in volume:
            sources.append(volume["secret"])
        for projected in (volume.get("projected") or {}).get("sources") or []:
            if "secret" in projected:
                sources.append(dict(projected["secret"], secretName=projected["secret"].get("name")))
        for source in sources:
            name = source.get("secretName")
            keys = [item.get("key") for item in source.get("items") or []]
            ok = name in secrets and all(key in secrets[name] for key in keys)
            report.check(f"{label} volume {vname} -> Secret {name}", ok,
                         f"keys {keys or 'all'} declared in secret-example.yaml" if ok
                         else "no such Secret/key in secret-example.yaml")


def secret_file_paths(doc: dict) -> set[str]:
    """Paths of files that secret volumes put into the containers."""
    spec = pod_spec(doc)
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    paths = set()
    for container in containers(doc):
        for mount in container.get("volumeMounts") or []:
            volume = volumes.get(mount.get("name")) or {}
            secret = volume.get("secret")
            if not secret:
                continue
            items = secret.get("items") or []
            root = mount.get("mountPath", "").rstrip("/")
            if mount.get("subPath"):
                paths.add(root)
            elif items:
                paths.update(f"{root}/{item.get('path') or item.get('key')}" for item in items)
    return paths


def check_workloads(report: Report, manifests: dict[str, list[dict]], workloads: list[tuple[str, dict]],
                    secrets: dict[str, set[str]], options: dict[str, set[str]], dockerfile: dict) -> None:
    worker_options = options["worker"]
    report.check("a worker Deployment and a migrate Job exist",
                 any(d.get("kind") == "Deployment" for _, d in workloads) and any(d.get("kind") == "Job" for _, d in workloads),
                 ", ".join(f"{d.get('kind')}/{d['metadata']['name']}" for _, d in workloads))
    exposed = dockerfile.get("expose", set())
    image_uid = dockerfile.get("uid")
    routes = set(re.findall(r'router\.get\("([^"]+)"\)', read(HEALTH_SERVER)))
    serve_routes = integration_routes("get")

    for file, doc in workloads:
        kind, name = doc.get("kind"), doc["metadata"]["name"]
        label = f"{kind}/{name}"
        spec = pod_spec(doc)
        check_workload_secrets(report, label, doc, secrets)

        # Pod security: non-root (and the image's UID), read-only root, no privilege escalation.
        security = spec.get("securityContext") or {}
        report.check(f"{label} runs as non-root", security.get("runAsNonRoot") is True and security.get("runAsUser", 1) != 0,
                     f"runAsNonRoot={security.get('runAsNonRoot')} runAsUser={security.get('runAsUser')}")
        if image_uid is not None and "runAsUser" in security:
            report.check(f"{label} runAsUser matches the image's USER", security.get("runAsUser") == image_uid,
                         f"{security.get('runAsUser')} vs Dockerfile USER {image_uid}")

        for container in containers(doc):
            cname = container.get("name")
            clabel = f"{label}/{cname}"
            csec = container.get("securityContext") or {}
            report.check(f"{clabel} read-only root fs, no privilege escalation, no capabilities",
                         csec.get("readOnlyRootFilesystem") is True and csec.get("allowPrivilegeEscalation") is False
                         and "ALL" in ((csec.get("capabilities") or {}).get("drop") or []),
                         f"readOnlyRootFilesystem={csec.get('readOnlyRootFilesystem')} "
                         f"allowPrivilegeEscalation={csec.get('allowPrivilegeEscalation')}")
            resources = container.get("resources") or {}
            have = {f"{kind_}.{res}" for kind_ in ("requests", "limits") for res in ("cpu", "memory")
                    if (resources.get(kind_) or {}).get(res)}
            report.check(f"{clabel} has cpu/memory requests and limits", len(have) == 4, ", ".join(sorted(have)))

            args = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
            subcommand = next((a for a in args if not a.startswith("-")), "worker")
            report.check(f"{clabel} runs a known subcommand", subcommand in {"worker", "migrate", "serve"}, subcommand)

            # Ports: everything a probe or annotation refers to is a declared containerPort.
            ports = container.get("ports") or []
            by_name = {p.get("name"): p.get("containerPort") for p in ports if p.get("name")}
            numbers = {p.get("containerPort") for p in ports}
            for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
                probe = container.get(probe_name)
                if not probe:
                    continue
                handler = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc") or {}
                port = handler.get("port")
                ok = (port in by_name) if isinstance(port, str) else (port in numbers)
                report.check(f"{clabel} {probe_name} port {port!r} is a declared container port", ok,
                             f"declared: {sorted(by_name)} {sorted(numbers)}")

            if subcommand == "worker":
                unknown = [o for o in long_options(args) if o[2:] not in worker_options]
                report.check(f"{clabel} worker options exist in WorkerCommand.swift", not unknown,
                             f"unknown: {unknown}" if unknown else " ".join(long_options(args)) or "defaults")
                http_port = int(option_value(args, "--http-port") or DEFAULT_HTTP_PORT)
                report.check(f"{clabel} --http-port {http_port} is a declared container port", http_port in numbers,
                             f"containerPorts {sorted(numbers)}")
                report.check(f"{clabel} container port {http_port} is EXPOSEd by the Dockerfile", http_port in exposed,
                             f"EXPOSE {sorted(exposed)}")
                readiness = ((container.get("readinessProbe") or {}).get("httpGet") or {}).get("path")
                liveness = ((container.get("livenessProbe") or {}).get("httpGet") or {}).get("path")
                report.check(f"{clabel} readinessProbe is GET /readyz", readiness == "/readyz", str(readiness))
                report.check(f"{clabel} livenessProbe is GET /healthz", liveness == "/healthz", str(liveness))
                report.check(f"{clabel} probe paths are routes of HealthServer.swift",
                             {"readyz", "healthz"} <= routes, f"routes: {sorted(routes)}")

                grace = float(option_value(args, "--grace-seconds") or DEFAULT_GRACE_SECONDS)
                period = spec.get("terminationGracePeriodSeconds", 30)
                report.check(f"{label} terminationGracePeriodSeconds > --grace-seconds",
                             float(period) > grace, f"{period} > {grace:g}")

                annotations = pod_annotations(doc)
                if annotations.get("prometheus.io/scrape") == "true":
                    scrape_port = int(annotations.get("prometheus.io/port", http_port))
                    report.check(f"{label} prometheus.io/port is the metrics port", scrape_port == http_port
                                 and scrape_port in numbers, f"{scrape_port}")
                    report.check(f"{label} prometheus.io/path is /metrics",
                                 annotations.get("prometheus.io/path", "/metrics") == "/metrics" and "metrics" in routes,
                                 annotations.get("prometheus.io/path", "/metrics"))

            if subcommand == "serve":
                check_serve_container(report, label, clabel, doc, container, args, options["serve"], serve_routes,
                                      numbers, exposed)

            # FLEXCHARGE_CREDENTIALS_KEY_FILE names a file that a Secret volume provides.
            env = {e.get("name"): e for e in container.get("env") or []}
            if "FLEXCHARGE_CREDENTIALS_KEY" in env:
                report.check(f"{clabel} does not put the key in FLEXCHARGE_CREDENTIALS_KEY", False,
                             "use FLEXCHARGE_CREDENTIALS_KEY_FILE and a Secret volume")
            key_file = (env.get("FLEXCHARGE_CREDENTIALS_KEY_FILE") or {}).get("value")
            if subcommand in {"worker", "serve"}:
                files = secret_file_paths(doc)
                report.check(f"{clabel} FLEXCHARGE_CREDENTIALS_KEY_FILE is a mounted Secret file",
                             key_file in files, f"{key_file} in {sorted(files)}")
            if subcommand == "serve":
                if "FLEXCHARGE_TOKENIZE_SECRET" in env:
                    report.check(f"{clabel} does not put the tokenize secret in FLEXCHARGE_TOKENIZE_SECRET", False,
                                 "use FLEXCHARGE_TOKENIZE_SECRET_FILE and a Secret volume")
                secret_file = (env.get("FLEXCHARGE_TOKENIZE_SECRET_FILE") or {}).get("value")
                files = secret_file_paths(doc)
                report.check(f"{clabel} FLEXCHARGE_TOKENIZE_SECRET_FILE is a mounted Secret file",
                             secret_file in files, f"{secret_file} in {sorted(files)}")
            if "DATABASE_URL" in env or subcommand in {"worker", "migrate", "serve"}:
                report.check(f"{clabel} gets DATABASE_URL from a Secret",
                             bool(((env.get("DATABASE_URL") or {}).get("valueFrom") or {}).get("secretKeyRef")),
                             "valueFrom.secretKeyRef")

    # Selectors: the Deployment selects its own pods, and the PDB selects the Deployment's pods.
    deployments = [d for _, d in workloads if d.get("kind") == "Deployment"]
    for deployment in deployments:
        selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        labels = pod_labels(deployment)
        report.check(f"Deployment/{deployment['metadata']['name']} selector matches its pod labels",
                     bool(selector) and all(labels.get(k) == v for k, v in selector.items()), str(selector))
    pdbs = [d for docs in manifests.values() for d in docs if d.get("kind") == "PodDisruptionBudget"]
    report.check("a PodDisruptionBudget exists", bool(pdbs), ", ".join(p["metadata"]["name"] for p in pdbs))
    for pdb in pdbs:
        selector = ((pdb.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        matched = [d["metadata"]["name"] for d in deployments
                   if selector and all(pod_labels(d).get(k) == v for k, v in selector.items())]
        report.check(f"PodDisruptionBudget/{pdb['metadata']['name']} selects a Deployment's pods", bool(matched),
                     ", ".join(matched) or f"nothing matches {selector}")


def check_serve_container(report: Report, label: str, clabel: str, doc: dict, container: dict, args: list[str],
                          serve_options: set[str], routes: set[str], numbers: set, exposed: set) -> None:
    """A `flexcharge-outbox serve` container: options, port, probes (serve has only /healthz) and
    the shutdown budget."""
    unknown = [o for o in long_options(args) if o[2:] not in serve_options]
    report.check(f"{clabel} serve options exist in ServeCommand.swift (and its option groups)", not unknown,
                 f"unknown: {unknown}" if unknown else " ".join(long_options(args)) or "defaults")
    port = int(option_value(args, "--port") or DEFAULT_SERVE_PORT)
    report.check(f"{clabel} --port {port} is a declared container port", port in numbers, f"containerPorts {sorted(numbers)}")
    report.check(f"{clabel} container port {port} is EXPOSEd by the Dockerfile", port in exposed, f"EXPOSE {sorted(exposed)}")
    host = option_value(args, "--host") or "127.0.0.1"
    report.check(f"{clabel} --host is not loopback (the Service connects to the pod's address)",
                 host not in {"127.0.0.1", "localhost", "::1"}, host)
    for probe_name in ("readinessProbe", "livenessProbe"):
        path = ((container.get(probe_name) or {}).get("httpGet") or {}).get("path")
        report.check(f"{clabel} {probe_name} is a GET route of IntegrationRoute.swift",
                     path is not None and path.lstrip("/") in routes, f"{path}; routes {sorted(routes)}")
    # /metrics is on --metrics-port (HealthServer.swift), never on the port the Ingress reaches.
    report.check(f"{clabel} /metrics is not a route of the internet-facing port", "metrics" not in routes,
                 f"routes {sorted(routes)}")
    metrics_port = int(option_value(args, "--metrics-port") or swift_default(SERVE_COMMAND, "metricsPort") or 9091)
    annotations = pod_annotations(doc)
    if annotations.get("prometheus.io/scrape") == "true":
        scrape_port = int(annotations.get("prometheus.io/port", metrics_port))
        report.check(f"{label} prometheus.io/port is serve's --metrics-port and a declared container port",
                     metrics_port > 0 and scrape_port == metrics_port and scrape_port in numbers and scrape_port != port,
                     f"{scrape_port} vs --metrics-port {metrics_port}, containerPorts {sorted(numbers)}")
        report.check(f"{clabel} container port {metrics_port} is EXPOSEd by the Dockerfile", metrics_port in exposed,
                     f"EXPOSE {sorted(exposed)}")
        metrics_host = option_value(args, "--metrics-host") or swift_default(SERVE_COMMAND, "metricsHost") or "127.0.0.1"
        report.check(f"{clabel} --metrics-host is not loopback (Prometheus scrapes the pod's address)",
                     metrics_host not in {"127.0.0.1", "localhost", "::1"}, metrics_host)
        report.check(f"{label} prometheus.io/path is /metrics", annotations.get("prometheus.io/path", "/metrics") == "/metrics",
                     annotations.get("prometheus.io/path", "/metrics"))
    connections = int(option_value(args, "--database-connections") or DEFAULT_SERVE_DATABASE_CONNECTIONS)
    report.check(f"{clabel} --database-connections is 1 to 1000 (ServeCommand's bounds)", 1 <= connections <= 1000,
                 str(connections))
    # Shutdown: preStop sleep, then the longest request (a tokenize: database wait, then FlexCharge's
    # connect and request timeouts) must fit in terminationGracePeriodSeconds.
    pre_stop = (((container.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command") or []
    sleep = float(pre_stop[-1]) if pre_stop and pre_stop[0].endswith("sleep") else 0.0
    client = read(source_file("FlexChargeClientConfiguration.swift"))
    connect = re.search(r"connectTimeout: Duration = \.seconds\((\d+)\)", client)
    request = re.search(r"requestTimeout: Duration = \.seconds\((\d+)\)", client)
    wait = float(option_value(args, "--database-wait-seconds") or swift_default(SERVE_COMMAND, "databaseWaitSeconds") or 5)
    longest = wait + (float(connect.group(1)) + float(request.group(1)) if connect and request else float("nan"))
    period = float(pod_spec(doc).get("terminationGracePeriodSeconds", 30))
    report.check(f"{label} terminationGracePeriodSeconds > preStop + the longest tokenize request",
                 period > sleep + longest, f"{period:g} > {sleep:g} + {longest:g} (database wait + FlexCharge connect + request)")


def check_serve_network(report: Report, manifests: dict[str, list[dict]], workloads: list[tuple[str, dict]]) -> None:
    """serve's Service, Ingress (keeping the signed Host) and NetworkPolicy against its Deployment."""
    docs = [d for ds in manifests.values() for d in ds]
    serve = [d for _, d in workloads if d.get("kind") == "Deployment"
             and any(next((a for a in (c.get("args") or []) if not str(a).startswith("-")), "") == "serve"
                     for c in containers(d))]
    if not report.check("a serve Deployment exists", bool(serve), ", ".join(d["metadata"]["name"] for d in serve)):
        return
    deployment = serve[0]
    container = next(c for c in containers(deployment) if "serve" in (c.get("args") or []))
    args = [str(a) for a in container.get("args") or []]
    named_ports = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
    routes = integration_routes()

    services = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "Service"}
    serve_services = [s for s in services.values()
                      if (s.get("spec") or {}).get("selector")
                      and all(pod_labels(deployment).get(k) == v for k, v in s["spec"]["selector"].items())]
    report.check("a Service selects the serve pods", bool(serve_services), ", ".join(s["metadata"]["name"] for s in serve_services))
    for service in serve_services:
        for port in service["spec"].get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            ok = target in named_ports if isinstance(target, str) else target in named_ports.values()
            report.check(f"Service/{service['metadata']['name']} targetPort {target!r} is a serve container port", ok,
                         str(named_ports))
        report.check(f"Service/{service['metadata']['name']} is ClusterIP (the Ingress publishes the webhook path only)",
                     service["spec"].get("type", "ClusterIP") == "ClusterIP", service["spec"].get("type", "ClusterIP"))

    ingresses = [d for d in docs if d.get("kind") == "Ingress"]
    report.check("an Ingress publishes serve's webhooks", bool(ingresses), ", ".join(i["metadata"]["name"] for i in ingresses))
    public_host = option_value(args, "--public-host")
    for ingress in ingresses:
        iname = f"Ingress/{ingress['metadata']['name']}"
        annotations = (ingress.get("metadata") or {}).get("annotations") or {}
        rewrites = [k for k in annotations if k.endswith("upstream-vhost") or "rewrite-target" in k
                    or k.endswith("custom-request-headers") or "hostheader" in k.lower()]
        report.check(f"{iname} does not rewrite Host or the path (the webhook signature covers Host)", not rewrites,
                     f"annotations: {rewrites}" if rewrites else "no rewrite annotation")
        hosts = set()
        for rule in (ingress.get("spec") or {}).get("rules") or []:
            hosts.add(rule.get("host"))
            for path in ((rule.get("http") or {}).get("paths") or []):
                backend = ((path.get("backend") or {}).get("service") or {})
                service = services.get(backend.get("name"))
                report.check(f"{iname} {path.get('path')} -> Service {backend.get('name')} of the serve pods",
                             service in serve_services, "")
                if service is not None:
                    wanted = (backend.get("port") or {})
                    ports = service["spec"].get("ports") or []
                    ok = any(p.get("name") == wanted.get("name") or p.get("port") == wanted.get("number") for p in ports)
                    report.check(f"{iname} backend port {wanted} is a port of Service/{backend.get('name')}", ok, "")
                report.check(f"{iname} routes only the webhook route of IntegrationRoute.swift",
                             str(path.get("path", "")).lstrip("/") == "webhooks/flexcharge" and "webhooks/flexcharge" in routes
                             and path.get("pathType") in {"Exact", "Prefix"},
                             f"{path.get('path')} ({path.get('pathType')}); /v1/tokenize must stay internal")
        tls_hosts = {h for entry in (ingress.get("spec") or {}).get("tls") or [] for h in entry.get("hosts") or []}
        report.check(f"{iname} serves every host over TLS", bool(hosts) and hosts <= tls_hosts, f"{sorted(hosts)} / tls {sorted(tls_hosts)}")
        report.check(f"{iname} host equals serve's --public-host (the host FlexCharge signs)",
                     public_host is None or hosts == {public_host}, f"{sorted(hosts)} vs --public-host {public_host}")

    policies = [d for d in docs if d.get("kind") == "NetworkPolicy"]
    for policy in policies:
        selector = ((policy.get("spec") or {}).get("podSelector") or {}).get("matchLabels") or {}
        if not all(pod_labels(deployment).get(k) == v for k, v in selector.items()):
            continue
        ports = [p.get("port") for rule in policy["spec"].get("ingress") or [] for p in rule.get("ports") or []]
        ok = all((p in named_ports) if isinstance(p, str) else (p in named_ports.values()) for p in ports)
        report.check(f"NetworkPolicy/{policy['metadata']['name']} admits serve's container port", ok and bool(ports),
                     f"{ports} of {named_ports}")


# ----------------------------------------------------------------------------------------------
# Dockerfile
# ----------------------------------------------------------------------------------------------

def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and current == ""):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            word, _, rest = current.strip().partition(" ")
            instructions.append((word.upper(), rest.strip()))
        current = ""
    return instructions


def copy_arguments(arguments: str) -> tuple[dict[str, str], list[str], str]:
    """Flags, sources and destination of a COPY/ADD."""
    flags, rest = {}, arguments.strip()
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        key, _, value = flag[2:].partition("=")
        flags[key] = value
        rest = rest.strip()
    parts = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    return flags, parts[:-1], parts[-1]


def ignore_patterns() -> list[str]:
    patterns = []
    for line in read(DOCKERIGNORE).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append(line)
    return patterns


def is_ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, simplified: a pattern excludes a path or any folder above it; `!` re-includes;
    the last matching pattern wins."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if pattern.startswith("**/"):
            hit = any(fnmatch.fnmatch(prefix.split("/")[-1], pattern[3:]) or fnmatch.fnmatch(prefix, pattern[3:])
                      for prefix in prefixes)
        else:
            hit = any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes)
        if hit:
            ignored = not negate
    return ignored


def check_dockerfile(report: Report) -> dict:
    facts: dict = {"expose": set(), "uid": None}
    if not report.check("Dockerfile present", DOCKERFILE.is_file(), rel(DOCKERFILE)):
        return facts
    instructions = dockerfile_instructions(read(DOCKERFILE))
    stages = [rest.split()[-1] for word, rest in instructions if word == "FROM" and " as " in rest.lower()]
    froms = [rest for word, rest in instructions if word == "FROM"]
    report.check("Dockerfile is multi-stage", len(froms) >= 2, f"stages: {stages}")
    patterns = ignore_patterns()
    report.check("Dockerfile.dockerignore present (BuildKit reads it for -f deploy/Dockerfile)",
                 DOCKERIGNORE.is_file() and any(is_ignored(".build", patterns) for _ in [0]),
                 f"{rel(DOCKERIGNORE)}: .build ignored={is_ignored('.build', patterns)}")

    for word, rest in instructions:
        if word not in ("COPY", "ADD"):
            continue
        flags, sources, destination = copy_arguments(rest)
        if "from" in flags:
            report.check(f"COPY --from={flags['from']} names a build stage", flags["from"] in stages,
                         f"{' '.join(sources)} -> {destination}")
            continue
        matched_any = False
        results = []
        for source in sources:
            if any(ch in source for ch in "*?["):
                matches = glob.glob(str(REPO / source))
                results.append((source, bool(matches), f"glob, {len(matches)} match(es) now; optional"))
                matched_any |= bool(matches)
            else:
                exists = (REPO / source).exists()
                results.append((source, exists, "exists" if exists else "missing"))
                matched_any |= exists
        for source, ok, detail in results:
            glob_source = any(ch in source for ch in "*?[")
            # Docker fails when no source of a COPY matches; a glob may match nothing when another
            # source of the same COPY exists (the usual way to copy an optional file).
            report.check(f"Dockerfile COPY source exists: {source}", ok or (glob_source and matched_any), detail)
        for source in sources:
            for path in [REPO / source] if not any(ch in source for ch in "*?[") else map(Path, glob.glob(str(REPO / source))):
                if not path.exists():
                    continue
                files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
                ignored = [rel(p) for p in files if is_ignored(rel(p), patterns)]
                report.check(f"Dockerfile COPY source not excluded by Dockerfile.dockerignore: {source}", not ignored,
                             f"excluded: {ignored[:5]}" if ignored else f"{len(files)} file(s) sent")

    text = read(DOCKERFILE)
    products = set(re.findall(r'\.executable\(name:\s*"([^"]+)"', read(REPO / "Package.swift")))
    built = re.findall(r"swift build[^&\n]*?--product\s+(\S+)", text)
    report.check("Dockerfile builds both executables of Package.swift",
                 {"flexcharge-outbox", "flexcharge-sandbox"} <= set(built) <= products,
                 f"built {built}, products {sorted(products)}")
    builds = re.findall(r"swift build [^&\n]*--product[^&\n]*", text)
    report.check("Dockerfile builds with -c release --static-swift-stdlib",
                 bool(builds) and all("-c release" in b and "--static-swift-stdlib" in b for b in builds),
                 f"{len(builds)} swift build command(s)")
    report.check("Dockerfile installs libpq-dev in the builder and libpq5 + ca-certificates at run time",
                 "libpq-dev" in text and "libpq5" in text and "ca-certificates" in text, "apt-get install")
    report.check("Dockerfile installs the binaries in /usr/bin (and the SQL, for reading, in /usr/share/flexcharge-outbox/migrations)",
                 "/staging/usr/bin" in text and "/usr/share/flexcharge-outbox/migrations" in text
                 and "migrations/*.sql" in text, "")
    # migrate applies the migrations compiled into the binary: migrations/ must reach the builder
    # before `swift build`, and Package.swift must still embed them.
    copies = [i for i, (word, rest) in enumerate(instructions) if word == "COPY" and rest.split()[:1] == ["migrations"]]
    builds = [i for i, (word, rest) in enumerate(instructions) if word == "RUN" and "swift build" in rest]
    manifest = read(REPO / "Package.swift")
    report.check("Dockerfile copies migrations/ before swift build (the EmbedMigrations plugin compiles it in)",
                 bool(copies) and bool(builds) and copies[0] < builds[0] and '"EmbedMigrations"' in manifest,
                 f"COPY migrations at instruction {copies[:1]}, first swift build at {builds[:1]}")
    report.check("migrations/0001_foundation.sql exists (how the binary recognises the folder)",
                 (REPO / "migrations/0001_foundation.sql").is_file(),
                 f"{len(list((REPO / 'migrations').glob('*.sql')))} .sql file(s) in migrations/")

    entrypoint = [rest for word, rest in instructions if word == "ENTRYPOINT"]
    cmd = [rest for word, rest in instructions if word == "CMD"]
    ep = json.loads(entrypoint[-1]) if entrypoint and entrypoint[-1].startswith("[") else None
    report.check("Dockerfile ENTRYPOINT is [\"/usr/bin/flexcharge-outbox\"] (exec form)",
                 ep == ["/usr/bin/flexcharge-outbox"], entrypoint[-1] if entrypoint else "none")
    report.check("Dockerfile CMD is [\"worker\"]", bool(cmd) and cmd[-1].startswith("[") and json.loads(cmd[-1]) == ["worker"],
                 cmd[-1] if cmd else "none")

    users = [rest for word, rest in instructions if word == "USER"]
    user = users[-1].split(":")[0] if users else "root"
    facts["uid"] = int(user) if user.isdigit() else None
    report.check("Dockerfile runs as a numeric non-root USER", user.isdigit() and int(user) != 0, user)
    for word, rest in instructions:
        if word == "EXPOSE":
            facts["expose"].update(int(p.split("/")[0]) for p in rest.split())
    report.check("Dockerfile EXPOSEs 9090", 9090 in facts["expose"], str(sorted(facts["expose"])))
    return facts


# ----------------------------------------------------------------------------------------------
# systemd
# ----------------------------------------------------------------------------------------------

def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current, pending = None, ""
    for line in read(path).splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped[0] in "#;"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        stripped, pending = pending + stripped, ""
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1]
            sections.setdefault(current, [])
        elif "=" in stripped and current is not None:
            key, _, value = stripped.partition("=")
            sections[current].append((key.strip(), value.strip()))
    return sections


def values(unit: dict, section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def words(unit: dict, section: str, key: str) -> list[str]:
    return [w for v in values(unit, section, key) for w in v.split()]


def seconds(text: str) -> float:
    """systemd time span: "30", "30s", "1min 30s", "500ms"."""
    units = {"": 1, "s": 1, "sec": 1, "second": 1, "seconds": 1, "ms": 0.001, "msec": 0.001,
             "m": 60, "min": 60, "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600}
    total = 0.0
    for number, unit in re.findall(r"([\d.]+)\s*([a-z]*)", text.strip()):
        total += float(number) * units.get(unit, float("nan"))
    return total


def exec_command(value: str) -> list[str]:
    """ExecStart= value without its special prefixes (-, @, :, +, !)."""
    return shlex.split(value.lstrip("-@:+!"))


def check_systemd(report: Report, options: dict[str, set[str]]) -> None:
    worker_options = options["worker"]
    units = sorted(SYSTEMD.glob("*.service"))
    report.check("systemd units present", bool(units), ", ".join(u.name for u in units))
    parsed = {u.name: parse_unit(u) for u in units}
    products = set(re.findall(r'\.executable\(name:\s*"([^"]+)"', read(REPO / "Package.swift")))

    for name, unit in parsed.items():
        report.check(f"{name} has [Unit] and [Service] sections", "Unit" in unit and "Service" in unit,
                     f"sections: {list(unit)}")
        commands = [(key, value) for key, value in unit.get("Service", []) if key.startswith("Exec")]
        report.check(f"{name} has an ExecStart", any(k == "ExecStart" for k, _ in commands), "")
        for key, value in commands:
            binary = exec_command(value)[0] if exec_command(value) else ""
            report.check(f"{name} {key} binary is under /usr/bin and is a product of Package.swift",
                         binary.startswith("/usr/bin/") and Path(binary).name in products, binary)

    worker = parsed.get("flexcharge-outbox-worker.service")
    migrate = parsed.get("flexcharge-outbox-migrate.service")
    if not report.check("worker and migrate units exist", worker is not None and migrate is not None,
                        "flexcharge-outbox-worker.service, flexcharge-outbox-migrate.service"):
        return
    report.check("worker Wants= and After= the migrate unit",
                 "flexcharge-outbox-migrate.service" in words(worker, "Unit", "Wants")
                 and "flexcharge-outbox-migrate.service" in words(worker, "Unit", "After"),
                 f"Wants={words(worker, 'Unit', 'Wants')} After={words(worker, 'Unit', 'After')}")
    report.check("worker has no ExecStartPre running migrate",
                 not any("migrate" in v for v in values(worker, "Service", "ExecStartPre")),
                 "migrations are the separate oneshot unit")
    report.check("migrate unit is Type=oneshot running `flexcharge-outbox migrate`",
                 values(migrate, "Service", "Type")[-1:] == ["oneshot"]
                 and any(exec_command(v)[1:2] == ["migrate"] for v in values(migrate, "Service", "ExecStart")),
                 f"Type={values(migrate, 'Service', 'Type')} ExecStart={values(migrate, 'Service', 'ExecStart')}")
    report.check("worker EnvironmentFile=/etc/flexcharge-outbox/worker.env",
                 any(v.lstrip("-") == "/etc/flexcharge-outbox/worker.env" for v in values(worker, "Service", "EnvironmentFile")),
                 str(values(worker, "Service", "EnvironmentFile")))
    report.check("worker KillSignal=SIGTERM", values(worker, "Service", "KillSignal")[-1:] == ["SIGTERM"],
                 str(values(worker, "Service", "KillSignal")))

    start = exec_command(values(worker, "Service", "ExecStart")[-1])
    args = start[1:]
    report.check("worker ExecStart runs `flexcharge-outbox worker`", args[:1] == ["worker"], " ".join(start))
    unknown = [o for o in long_options(args) if o[2:] not in worker_options]
    report.check("worker ExecStart options exist in WorkerCommand.swift", not unknown,
                 f"unknown: {unknown}" if unknown else " ".join(long_options(args)))
    grace = float(option_value(args, "--grace-seconds") or DEFAULT_GRACE_SECONDS)
    stop = seconds((values(worker, "Service", "TimeoutStopSec") or ["90"])[-1])
    report.check("worker TimeoutStopSec > --grace-seconds", stop > grace, f"{stop:g} s > {grace:g} s")

    credentials = [v.split(":", 1)[0] for v in values(worker, "Service", "LoadCredential")]
    key_file = [v.split("=", 1)[1] for v in values(worker, "Service", "Environment")
                if v.startswith("FLEXCHARGE_CREDENTIALS_KEY_FILE=")]
    report.check("worker FLEXCHARGE_CREDENTIALS_KEY_FILE=%d/<LoadCredential name>",
                 bool(key_file) and any(key_file[-1] == f"%d/{c}" for c in credentials),
                 f"LoadCredential={credentials} FLEXCHARGE_CREDENTIALS_KEY_FILE={key_file}")
    for name, unit in parsed.items():
        hardening = {k: values(unit, "Service", k)[-1:] for k in ("NoNewPrivileges", "ProtectSystem")}
        user = values(unit, "Service", "DynamicUser")[-1:] == ["yes"] or bool(values(unit, "Service", "User"))
        report.check(f"{name} is hardened (DynamicUser/User, NoNewPrivileges, ProtectSystem=strict)",
                     user and hardening["NoNewPrivileges"] == ["yes"] and hardening["ProtectSystem"] == ["strict"],
                     str(hardening))

    example = SYSTEMD / "worker.env.example"
    if example.is_file():
        env = dict(line.split("=", 1) for line in read(example).splitlines()
                   if line.strip() and not line.lstrip().startswith("#") and "=" in line)
        report.check("worker.env.example does not set FLEXCHARGE_CREDENTIALS_KEY",
                     "FLEXCHARGE_CREDENTIALS_KEY" not in env, "the key comes from LoadCredential=")
        report.check("worker.env.example secrets are placeholders",
                     "REPLACE_ME" in env.get("DATABASE_URL", "REPLACE_ME"), "DATABASE_URL")
        extra = shlex.split(env.get("FLEXCHARGE_WORKER_ARGS", ""))
        unknown = [o for o in long_options(extra) if o[2:] not in worker_options]
        report.check("worker.env.example FLEXCHARGE_WORKER_ARGS options exist in WorkerCommand.swift", not unknown,
                     f"unknown: {unknown}" if unknown else " ".join(long_options(extra)) or "none")
    check_serve_unit(report, parsed, options["serve"])


def check_serve_unit(report: Report, parsed: dict[str, dict], serve_options: set[str]) -> None:
    serve = parsed.get("flexcharge-outbox-serve.service")
    if not report.check("serve unit exists", serve is not None, "flexcharge-outbox-serve.service"):
        return
    report.check("serve Wants= and After= the migrate unit",
                 "flexcharge-outbox-migrate.service" in words(serve, "Unit", "Wants")
                 and "flexcharge-outbox-migrate.service" in words(serve, "Unit", "After"), "")
    start = exec_command(values(serve, "Service", "ExecStart")[-1])
    args = start[1:]
    report.check("serve ExecStart runs `flexcharge-outbox serve`", args[:1] == ["serve"], " ".join(start))
    example = SYSTEMD / "serve.env.example"
    env = dict(line.split("=", 1) for line in read(example).splitlines()
               if line.strip() and not line.lstrip().startswith("#") and "=" in line)
    extra = shlex.split(env.get("FLEXCHARGE_SERVE_ARGS", ""))
    for label, given in (("ExecStart", args), ("serve.env.example FLEXCHARGE_SERVE_ARGS", extra)):
        unknown = [o for o in long_options(given) if o[2:] not in serve_options]
        report.check(f"serve {label} options exist in ServeCommand.swift", not unknown,
                     f"unknown: {unknown}" if unknown else " ".join(long_options(given)) or "none")
    report.check("serve.env.example sets neither secret in the environment",
                 "FLEXCHARGE_CREDENTIALS_KEY" not in env and "FLEXCHARGE_TOKENIZE_SECRET" not in env
                 and "REPLACE_ME" in env.get("DATABASE_URL", "REPLACE_ME"), "both come from LoadCredential=")
    credentials = [v.split(":", 1)[0] for v in values(serve, "Service", "LoadCredential")]
    files = {v.split("=", 1)[0]: v.split("=", 1)[1] for v in values(serve, "Service", "Environment") if "=" in v}
    for variable in ("FLEXCHARGE_CREDENTIALS_KEY_FILE", "FLEXCHARGE_TOKENIZE_SECRET_FILE"):
        report.check(f"serve {variable}=%d/<LoadCredential name>",
                     any(files.get(variable) == f"%d/{c}" for c in credentials), f"{files.get(variable)} / {credentials}")
    host = option_value(args + extra, "--host") or "127.0.0.1"
    report.check("serve unit binds loopback (behind a local TLS proxy) or allows remote plain HTTP",
                 host in {"127.0.0.1", "::1", "localhost"} or "--allow-remote-plain-http" in args + extra, host)
    stop = seconds((values(serve, "Service", "TimeoutStopSec") or ["90"])[-1])
    client = read(source_file("FlexChargeClientConfiguration.swift"))
    timeouts = [float(x) for x in re.findall(r"(?:connect|request)Timeout: Duration = \.seconds\((\d+)\)", client)]
    wait = float(option_value(args + extra, "--database-wait-seconds") or swift_default(SERVE_COMMAND, "databaseWaitSeconds") or 5)
    report.check("serve TimeoutStopSec covers the longest tokenize request", len(timeouts) == 2 and stop >= wait + sum(timeouts),
                 f"{stop:g} s >= {wait:g} + {' + '.join(f'{x:g}' for x in timeouts)} s")


# ----------------------------------------------------------------------------------------------
# README and environment variables
# ----------------------------------------------------------------------------------------------

def check_docs(report: Report) -> None:
    sources = "\n".join(read(p) for p in (REPO / "Sources").rglob("*.swift"))
    for variable in ("DATABASE_URL", "FLEXCHARGE_CREDENTIALS_KEY_FILE", "FLEXCHARGE_MIGRATIONS",
                     "FLEXCHARGE_TOKENIZE_SECRET_FILE", "FLEXCHARGE_TOKENIZE_SECRET"):
        used = variable in read(DOCKERFILE) + read(README) + "".join(read(p) for p in K8S.glob("*.yaml")) \
            + "".join(read(p) for p in SYSTEMD.glob("*"))
        report.check(f"environment variable {variable} is read by the program", not used or f'"{variable}"' in sources,
                     "found in Sources/" if f'"{variable}"' in sources else "not found in Sources/")
    exported = exported_metrics()
    defined = {name for name in exported
               if not any(name.endswith(suffix) and name[: -len(suffix)] in exported for suffix in ("_bucket", "_sum", "_count"))}
    documented = set(re.findall(r"flexcharge_outbox_[a-z_]+[a-z]", read(README)))
    # A histogram's series (_bucket/_sum/_count) count as the metric itself.
    documented = {re.sub(r"_(bucket|sum|count)$", "", m) if re.sub(r"_(bucket|sum|count)$", "", m) in defined else m
                  for m in documented}
    report.check("README documents every metric the Swift sources export", defined <= documented,
                 f"missing: {sorted(defined - documented)}" if defined - documented else f"{len(defined)} metrics")
    report.check("README names no metric that the program lacks", documented <= defined,
                 f"unknown: {sorted(documented - defined)}" if documented - defined else "all exist")


# ----------------------------------------------------------------------------------------------
# Alerts (prometheus/) and the dashboard (grafana/)
# ----------------------------------------------------------------------------------------------

RULES = DEPLOY / "prometheus/flexcharge-outbox-rules.yml"
RULES_TEST = DEPLOY / "prometheus/flexcharge-outbox-rules.test.yml"
DASHBOARD = DEPLOY / "grafana/flexcharge-outbox.json"
# Series the alerts and dashboard may use that FlexCharge Outbox does not export, and who does.
EXTERNAL_METRICS = {
    "kube_deployment_spec_replicas": "kube-state-metrics",
    "kube_deployment_status_replicas_available": "kube-state-metrics",
    "kube_job_status_failed": "kube-state-metrics",
    "up": "Prometheus",
}
# Labels Prometheus adds to every scraped series (target labels) or that histograms carry.
TARGET_LABELS = {"instance", "job", "namespace", "pod", "le"}
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                   "offset", "inf", "nan"}
# Grafana's interval variables, replaced by a duration before an expression is parsed.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def exported_metrics() -> dict[str, set[str]]:
    """Metric names the Swift sources export, with the label names (dimensions) each is given:
    string literals "flexcharge_outbox_..." and constants holding them, wherever they are used."""
    metrics: dict[str, set[str]] = {}
    histograms: set[str] = set()
    files = [p for p in (REPO / "Sources").rglob("*.swift") if "FlexChargeSandbox" not in p.parts]
    constants = {}
    for path in files:
        for name, value in re.findall(r'static\s+let\s+(\w+)\s*=\s*"(flexcharge_outbox_[a-z_]+)"', read(path)):
            constants[name] = value
    for path in files:
        text = read(path)
        mentions = [(m.start(), m.end(), m.group(1)) for m in re.finditer(r'(?:label:\s*|counter\(|timer\(|recorder\(|gauge\(|cached\(in:\s*\w+,\s*)"(flexcharge_outbox_[a-z_]+)"', text)]
        mentions += [(m.start(), m.end(), constants[m.group(1)]) for m in re.finditer(r"label:\s*(?:\w+\.)?(\w+)\b", text)
                     if m.group(1) in constants]
        for start, end, name in mentions:
            statement = text[end:end + 240].split("\n\n")[0]
            statement = re.split(r"\)\s*\.(?:increment|record|recordNanoseconds)|\n\s*(?:static|func|let|var)\b", statement)[0]
            metrics.setdefault(name, set()).update(re.findall(r'\(\s*"([a-z_]+)"\s*,', statement))
            if re.match(r"(?:timer\(|recorder\()", text[start:start + 9]) or "Timer(label" in text[max(0, start - 12):start + 6]:
                histograms.add(name)
    for name in histograms:
        for suffix in ("_bucket", "_sum", "_count"):
            metrics[name + suffix] = metrics[name] | ({"le"} if suffix == "_bucket" else set())
    return metrics


def promql_selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names used with it) of every series a PromQL expression reads: the
    metric's own matchers and the by/without/on/ignoring lists of the expression. A small scanner
    (no PromQL library here); promtool parses the expressions for real."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    grouping = set()
    for names in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr):
        grouping.update(n.strip() for n in names.split(",") if n.strip())
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    found = []
    for match in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*(\()?", expr):
        name, matchers, call = match.group(1), match.group(2), match.group(3)
        if call and not matchers or name.lower() in PROMQL_KEYWORDS or re.fullmatch(r"\d.*", name):
            continue
        labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers or ""))
        found.append((name, labels | grouping))
    return found


def check_metric_use(report: Report, source: str, expr: str, exported: dict[str, set[str]]) -> None:
    for name, labels in promql_selectors(expr):
        if name in EXTERNAL_METRICS:
            report.check(f"{source}: {name} comes from {EXTERNAL_METRICS[name]}", True, "")
            continue
        known = name in exported
        report.check(f"{source}: metric {name} is exported by the Swift sources", known,
                     "found in Sources/" if known else "no such metric in Sources/")
        if known:
            unknown = sorted(labels - exported[name] - TARGET_LABELS)
            report.check(f"{source}: labels of {name} exist", not unknown,
                         f"unknown: {unknown}; exported: {sorted(exported[name])}" if unknown
                         else f"{sorted(labels) or 'none'} of {sorted(exported[name])}")


def dashboard_expressions(dashboard: dict) -> list[tuple[str, str]]:
    panels = list(dashboard.get("panels") or [])
    for panel in list(panels):
        panels += panel.get("panels") or []
    return [(f"dashboard panel {panel.get('title')!r} {target.get('refId')}", target.get("expr", ""))
            for panel in panels for target in panel.get("targets") or []]


def check_dashboard_schema(report: Report, dashboard: dict) -> None:
    """What Grafana needs to import the dashboard (its JSON model): uid, title, schemaVersion,
    panels with unique ids inside the 24-column grid, Prometheus targets with unique refIds and a
    datasource that the templating defines."""
    report.check("dashboard has uid, title and an integer schemaVersion",
                 bool(dashboard.get("uid")) and bool(dashboard.get("title")) and isinstance(dashboard.get("schemaVersion"), int),
                 f"{dashboard.get('uid')} / {dashboard.get('title')} / {dashboard.get('schemaVersion')}")
    variables = {v.get("name"): v for v in (dashboard.get("templating") or {}).get("list") or []}
    report.check("dashboard defines the datasource variable",
                 (variables.get("datasource") or {}).get("type") == "datasource"
                 and (variables.get("datasource") or {}).get("query") == "prometheus", str(sorted(variables)))
    panels = list(dashboard.get("panels") or [])
    ids = [p.get("id") for p in panels]
    report.check("dashboard panel ids are unique integers", len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids),
                 str(ids))
    cells: dict[tuple[int, int], str] = {}
    problems = []
    for panel in panels:
        grid = panel.get("gridPos") or {}
        x, y, w, h = (grid.get(k) for k in ("x", "y", "w", "h"))
        if not all(isinstance(v, int) for v in (x, y, w, h)) or x < 0 or w < 1 or h < 1 or x + w > 24:
            problems.append(f"{panel.get('title')!r}: gridPos {grid}")
            continue
        for cx in range(x, x + w):
            for cy in range(y, y + h):
                if (cx, cy) in cells:
                    problems.append(f"{panel.get('title')!r} overlaps {cells[(cx, cy)]!r}")
                    break
                cells[(cx, cy)] = panel.get("title")
        if panel.get("type") == "row":
            continue
        if panel.get("type") not in {"timeseries", "stat", "gauge", "table", "bargauge"}:
            problems.append(f"{panel.get('title')!r}: type {panel.get('type')}")
        datasource = panel.get("datasource") or {}
        if datasource.get("type") != "prometheus" or datasource.get("uid") != "${datasource}":
            problems.append(f"{panel.get('title')!r}: datasource {datasource}")
        targets = panel.get("targets") or []
        refs = [target.get("refId") for target in targets]
        if not targets or len(refs) != len(set(refs)) or not all(target.get("expr") for target in targets):
            problems.append(f"{panel.get('title')!r}: targets need an expr and unique refIds")
    report.check("dashboard panels: grid, types, datasource, targets", not problems,
                 "; ".join(sorted(set(problems))[:5]) if problems else f"{len(panels)} panels")


def check_monitoring(report: Report) -> None:
    exported = exported_metrics()
    report.check("metrics read from the Swift sources", "flexcharge_outbox_completed_total" in exported,
                 ", ".join(f"{n}{sorted(l)}" for n, l in sorted(exported.items()) if not n.endswith(("_bucket", "_sum", "_count"))))
    rules = yaml.safe_load(read(RULES)) if yaml and RULES.is_file() else None
    groups = (rules or {}).get("groups") or []
    alerts = [rule for group in groups for rule in group.get("rules") or [] if "alert" in rule]
    report.check(f"{rel(RULES)} holds alerting rules", bool(alerts), f"{len(alerts)} alerts in {len(groups)} groups")
    for rule in alerts:
        name = rule.get("alert")
        report.check(f"alert {name} has severity and summary",
                     (rule.get("labels") or {}).get("severity") in {"critical", "warning", "info"}
                     and bool((rule.get("annotations") or {}).get("summary")), "")
        check_metric_use(report, f"alert {name}", str(rule.get("expr", "")), exported)
    documented = set(re.findall(r"\bFlexChargeOutbox[A-Za-z]+\b", read(README)))
    names = {rule.get("alert") for rule in alerts}
    report.check("deploy/README.md names every alert of the rules file, and only those", documented == names,
                 f"missing: {sorted(names - documented)}, unknown: {sorted(documented - names)}"
                 if documented != names else f"{len(names)} alerts")

    try:
        dashboard = json.loads(read(DASHBOARD))
    except json.JSONDecodeError as error:
        report.check(f"{rel(DASHBOARD)} is JSON", False, str(error))
        return
    check_dashboard_schema(report, dashboard)
    expressions = dashboard_expressions(dashboard)
    for source, expr in expressions:
        check_metric_use(report, source, expr, exported)

    promtool = shutil.which("promtool")
    if not report.check("promtool installed (Debian package prometheus; scripts/ensure-deps.sh installs it)",
                        promtool is not None, promtool or "apt-get install --no-install-recommends prometheus"):
        return
    run_tool(report, f"promtool check rules {rel(RULES)}", [promtool, "check", "rules", str(RULES)])
    run_tool(report, f"promtool test rules {rel(RULES_TEST)} (alerts fire and stay quiet)",
             [promtool, "test", "rules", str(RULES_TEST)], cwd=RULES_TEST.parent)
    # The dashboard's queries, parsed by Prometheus' own parser: as recording rules in a scratch file.
    with tempfile.TemporaryDirectory(prefix="flexcharge-dashboard-") as scratch:
        records = []
        for index, (_, expr) in enumerate(expressions):
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            records.append({"record": f"dashboard:query_{index}", "expr": expr})
        path = Path(scratch) / "dashboard-queries.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
        run_tool(report, f"promtool parses the {len(records)} dashboard queries", [promtool, "check", "rules", str(path)])


def sessions_opened(*names: str) -> int:
    return sum(read(source_file(name)).count("PGSession(configuration:") for name in names)


def check_connection_counts(report: Report) -> None:
    """Every "N connections per worker" in deploy/ is the number of sessions the worker holds (those
    of OutboxWorker.run() and the breaker board's), and the rolling-update plan uses the peak (plus
    the pruner's short-lived session, RetentionService.swift)."""
    steady = sessions_opened("OutboxWorker.swift", "BreakerBoard.swift")
    peak = steady + sessions_opened("RetentionService.swift")
    patterns = {steady: [r"(\d+) connections per (?:worker|pod)", r"worker(?: pod)? holds (\d+) connections",
                         r"Database connections: (\d+) per worker", r"plus (\d+) to PostgreSQL"],
                peak: [r"\(replicas \+ 2\) × (\d+)", r"at the peak a worker holds (\d+)"]}
    found = []
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix not in {".py", ".json"}):
        text = re.sub(r"\s+", " ", read(path))
        for expected, texts in patterns.items():
            for pattern in texts:
                found += [(rel(path), int(n), expected) for n in re.findall(pattern, text)]
    wrong = [f"{file}: {n} (expected {expected})" for file, n, expected in found if n != expected]
    report.check(f"deploy files give a worker {steady} database connections, {peak} at the peak "
                 "(OutboxWorker.swift, BreakerBoard.swift, RetentionService.swift)",
                 steady > 0 and bool(found) and not wrong, f"wrong: {wrong}" if wrong else f"{len(found)} mention(s)")


# ----------------------------------------------------------------------------------------------
# Optional external tools (--tools)
# ----------------------------------------------------------------------------------------------

def run_tool(report: Report, name: str, command: list[str], cwd: Path = REPO) -> None:
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        report.check(name, False, str(error))
        return
    output = (result.stdout + result.stderr).strip().replace("\n", " | ")
    report.check(name, result.returncode == 0, output[:300] if result.returncode else "ok")


def check_tools(report: Report) -> None:
    hadolint = shutil.which("hadolint")
    if hadolint:
        run_tool(report, "hadolint deploy/Dockerfile", [hadolint, str(DOCKERFILE)])
    else:
        print("SKIP  hadolint: not installed")
    kubectl = shutil.which("kubectl") or shutil.which("kustomize")
    if kubectl:
        verb = ["kustomize"] if kubectl.endswith("kubectl") else ["build"]
        run_tool(report, "kubectl kustomize deploy/kubernetes renders", [kubectl, *verb, str(K8S)])
    else:
        print("SKIP  kubectl kustomize: not installed")
    analyze = shutil.which("systemd-analyze")
    system_units = Path("/usr/lib/systemd/system")
    if analyze and system_units.is_dir():
        # A throwaway root with the units, a stand-in binary and config files, and the host's
        # system units (for multi-user.target etc.).
        with tempfile.TemporaryDirectory(prefix="flexcharge-deploy-") as root:
            rootp = Path(root)
            (rootp / "usr/bin").mkdir(parents=True)
            (rootp / "usr/lib/systemd").mkdir(parents=True)
            (rootp / "etc/systemd/system").mkdir(parents=True)
            (rootp / "etc/flexcharge-outbox").mkdir(parents=True)
            stand_in = rootp / "usr/bin/flexcharge-outbox"
            stand_in.write_text("#!/bin/sh\nexit 0\n")
            stand_in.chmod(0o755)
            shutil.copytree(system_units, rootp / "usr/lib/systemd/system", symlinks=True)
            for unit in SYSTEMD.glob("*.service"):
                shutil.copy(unit, rootp / "etc/systemd/system" / unit.name)
            shutil.copy(SYSTEMD / "worker.env.example", rootp / "etc/flexcharge-outbox/worker.env")
            shutil.copy(SYSTEMD / "serve.env.example", rootp / "etc/flexcharge-outbox/serve.env")
            (rootp / "etc/flexcharge-outbox/credentials-key").write_text("placeholder\n")
            (rootp / "etc/flexcharge-outbox/tokenize-secret").write_text("placeholder-placeholder\n")
            units = [f"/etc/systemd/system/{u.name}" for u in SYSTEMD.glob("*.service")]
            run_tool(report, "systemd-analyze verify deploy/systemd/*.service",
                     [analyze, "verify", f"--root={root}", *units], cwd=rootp)
    else:
        print("SKIP  systemd-analyze verify: not installed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tools", action="store_true", help="also run hadolint, kubectl kustomize, systemd-analyze")
    options = parser.parse_args()

    report = Report()
    options_by_command = {"worker": command_options(WORKER_COMMAND), "serve": command_options(SERVE_COMMAND)}
    report.check("worker options read from WorkerCommand.swift and its option groups",
                 {"grace-seconds", "database-url", "sandbox-url", "http-port"} <= options_by_command["worker"],
                 f"{len(options_by_command['worker'])} options")
    report.check("serve options read from ServeCommand.swift and its option groups",
                 {"public-host", "database-url", "sandbox-url", "port"} <= options_by_command["serve"],
                 f"{len(options_by_command['serve'])} options")

    dockerfile = check_dockerfile(report)
    manifests = load_manifests(report)
    if manifests:
        workloads = [(file, doc) for file, docs in manifests.items() for doc in docs
                     if doc.get("kind") in WORKLOAD_KINDS]
        secrets = check_secret_example(report, manifests)
        check_kustomization(report, manifests, workloads)
        check_workloads(report, manifests, workloads, secrets, options_by_command, dockerfile)
        check_serve_network(report, manifests, workloads)
    check_systemd(report, options_by_command)
    check_docs(report)
    check_connection_counts(report)
    check_monitoring(report)
    if options.tools:
        check_tools(report)

    print(f"deploy: {report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
