"""Consistency checks of Fulcrum's deployment files: deploy/kubernetes, deploy/systemd and
deploy/containers.

No cluster, container engine or init system runs here, so these tests read the files the way the
real tools would and check that the names and numbers in them agree with each other and with the
executables:

- Kubernetes: every overlay under deploy/kubernetes/overlays is rendered by a small kustomize
  renderer in this file (resources, namespace, images, strategic-merge patches; anything else in a
  kustomization.yaml is refused, not ignored). Where `kustomize` or `kubectl` is installed, the
  overlay is also rendered by it and the two renderings must be identical, so the renderer is
  checked against the real tool. The rendered objects are then checked: selectors, ports, probes,
  RBAC, HPA/PDB targets, network policy reachability, Prometheus annotations, pod security, and
  that every argument and FULCRUM_* variable names an option the executable accepts, and the
  cluster's mutual TLS: each tier gets its own role's certificate, key and the CA from a Secret
  mounted read-only, no service runs with --insecure, and no probe speaks plaintext gRPC to a TLS
  port.
- systemd: unit files parsed (continuation lines, repeated keys), the flags of every ExecStart and
  the FULCRUM_* keys of the example environment files checked against the executables, each unit's
  certificate files (/etc/fulcrum/tls/ROLE.pem, ROLE-key.pem, ca.pem; no --insecure), the worker
  template's shell wrapper run with a stand-in executable, and `systemd-analyze verify` run on the
  units in a scratch root when systemd-analyze is installed.
- netns rehearsal: deploy/netns/rehearse parses (`bash -n`), and its certificate functions, run
  with a stand-in `fulcrum`, give each role its own files and the CLI the admin folder.
- Containerfiles: build the product they run, expose the ports the manifests use, run as the
  user the manifests expect.

The options each executable accepts are read from the `@Option`/`@Flag` declarations of
Sources/fulcrum-*/main.swift (ArgumentParser spells `var modelRepository` `--model-repository`).
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
import stat
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUSTOMIZE_ROOT = DEPLOY / "kubernetes"
OVERLAYS = KUSTOMIZE_ROOT / "overlays"
SYSTEMD = DEPLOY / "systemd"
CONTAINERS = DEPLOY / "containers"

EXECUTABLES = ("fulcrum-balancer", "fulcrum-frontend", "fulcrum-worker")
COMPONENTS = {"balancer": "fulcrum-balancer", "frontend": "fulcrum-frontend", "worker": "fulcrum-worker"}
# The library each executable runs, where its grpc.health.v1 service is registered.
LIBRARIES = {
    "fulcrum-balancer": "FulcrumBalancer",
    "fulcrum-frontend": "FulcrumFrontend",
    "fulcrum-worker": "FulcrumWorker",
}

# Options added in the same change as these deployment files (the layered settings, metrics and
# backend selection). They are accepted here even while Sources/ does not declare them yet; the
# test warns about each one still missing, so the list can shrink to nothing once they land.
PENDING_OPTIONS: dict[str, dict[str, bool]] = {  # executable -> {option: is a flag (no value)}
    "fulcrum-balancer": {"config": False, "metrics-port": False},
    "fulcrum-frontend": {"config": False, "metrics-port": False},
    "fulcrum-worker": {"config": False, "metrics-port": False, "backend": False, "device": False},
}

# What each overlay must make of the worker: its arguments and its extended resources.
OVERLAY_EXPECTATIONS = {
    "cpu": {"args": {"--backend": "cpu"}, "gpu": None},
    "nvidia": {"args": {"--backend": "vulkan", "--device": "0"}, "gpu": "nvidia.com/gpu"},
    "amd": {"args": {"--backend": "vulkan", "--device": "0"}, "gpu": "amd.com/gpu"},
}
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")

# Mutual TLS between the tiers: the certificate role of each executable (`fulcrum certs` writes
# ca.pem, and ROLE.pem with ROLE-key.pem for each of ROLES) and the options that carry the files.
ROLE_OF = {"fulcrum-balancer": "balancer", "fulcrum-frontend": "frontend", "fulcrum-worker": "worker"}
ROLES = ("balancer", "frontend", "worker", "admin")
TLS_OPTIONS = ("tls-cert", "tls-key", "tls-ca")
SYSTEMD_TLS_DIR = "/etc/fulcrum/tls"


def role_files(role: str) -> dict[str, str]:
    """option -> the file of a `fulcrum certs` folder it names for `role`."""
    return {"tls-cert": f"{role}.pem", "tls-key": f"{role}-key.pem", "tls-ca": "ca.pem"}


def flag_set(settings: dict[str, str | None], name: str) -> bool:
    """Whether a flag is on: given as an argument (value None) or true in the environment."""
    if name not in settings:
        return False
    value = settings[name]
    return value is None or value.strip().lower() in {"1", "true", "yes", "on"}


# ============================================================================================
# The executables' options, from the Swift sources


@dataclass
class Options:
    """Long option names (without dashes) an executable accepts, and which of them are flags."""

    executable: str
    values: dict[str, bool] = field(default_factory=dict)  # name -> is a flag
    required: set[str] = field(default_factory=set)  # options without a default
    pending: set[str] = field(default_factory=set)  # from PENDING_OPTIONS, not in Sources yet

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def is_flag(self, name: str) -> bool:
        return self.values[name]

    def by_env(self) -> dict[str, str]:
        """FULCRUM_MODEL_REPOSITORY -> model-repository."""
        return {"FULCRUM_" + name.upper().replace("-", "_"): name for name in self.values}


def kebab(identifier: str) -> str:
    """ArgumentParser's conversion of a property name to a long option name:
    maxMessageBytes -> max-message-bytes, leaseMs -> lease-ms, httpURLPath -> http-url-path."""
    words: list[str] = []
    current = ""
    for index, char in enumerate(identifier):
        following = identifier[index + 1] if index + 1 < len(identifier) else ""
        if char.isupper() and current:
            previous = current[-1]
            if not previous.isupper() or following.islower():
                words.append(current)
                current = ""
        current += char
    if current:
        words.append(current)
    return "-".join(word.lower() for word in words)


def _matching_paren(text: str, start: int) -> int:
    """Index of the ')' closing the '(' at `start`, skipping Swift string literals."""
    depth = 0
    index = start
    while index < len(text):
        char = text[index]
        if char == '"':
            if text.startswith('"""', index):
                end = text.index('"""', index + 3)
                index = end + 3
                continue
            index += 1
            while text[index] != '"':
                index += 2 if text[index] == "\\" else 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise ValueError("unbalanced parentheses")


DECLARATION = re.compile(r"@(Option|Flag|OptionGroup)\b")


def _declarations(text: str):
    """(attribute, arguments, property name, type and default text) for each @Option/@Flag/@OptionGroup."""
    for match in DECLARATION.finditer(text):
        position = match.end()
        arguments = ""
        while position < len(text) and text[position] in " \t":
            position += 1
        if position < len(text) and text[position] == "(":
            end = _matching_paren(text, position)
            arguments = text[position + 1 : end]
            position = end + 1
        rest = re.match(
            r"\s*(?:(?:public|internal|private|fileprivate)\s+)?var\s+(\w+)\s*([^\n]*)", text[position:]
        )
        if rest is None:
            continue
        yield match.group(1), arguments, rest.group(1), rest.group(2)


def _swift_sources() -> list[Path]:
    return sorted((REPO / "Sources").rglob("*.swift"))


def _parse_options(text: str, options: Options, seen_groups: set[str]) -> None:
    for attribute, arguments, name, rest in _declarations(text):
        if attribute == "OptionGroup":
            type_name = re.match(r":\s*(\w+)", rest)
            assert type_name, f"{options.executable}: cannot read the type of @OptionGroup var {name}"
            _parse_group(type_name.group(1), options, seen_groups)
            continue
        custom = re.findall(r'\.customLong\(\s*"([^"]+)"', arguments)
        if custom:
            longs = custom
        elif re.search(r"name:\s*\.(short|customShort)\b", arguments):
            longs = []
        else:
            longs = [kebab(name)]
        is_flag = attribute == "Flag"
        names = list(longs)
        if is_flag and ".prefixedNo" in arguments:
            names += ["no-" + long for long in longs]
        if is_flag and ".prefixedEnableDisable" in arguments:
            names = [f"{prefix}-{long}" for long in longs for prefix in ("enable", "disable")]
        for long in names:
            options.values[long] = is_flag
        has_default = "=" in rest or rest.split("//")[0].strip().rstrip("{").strip().endswith("?")
        type_is_array = re.match(r":\s*\[", rest) is not None
        if attribute == "Option" and not has_default and not type_is_array:
            options.required.update(longs)


def _parse_group(type_name: str, options: Options, seen_groups: set[str]) -> None:
    if type_name in seen_groups:
        return
    seen_groups.add(type_name)
    pattern = re.compile(rf"\bstruct\s+{re.escape(type_name)}\b[^{{]*\{{")
    for path in _swift_sources():
        text = path.read_text()
        match = pattern.search(text)
        if match:
            end = _matching_brace(text, match.end() - 1)
            _parse_options(text[match.end() : end], options, seen_groups)
            return
    raise AssertionError(f"{options.executable}: @OptionGroup type {type_name} not found under Sources/")


def _matching_brace(text: str, start: int) -> int:
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return len(text)


_OPTIONS_CACHE: dict[str, Options] = {}


def options_of(executable: str) -> Options:
    if executable not in _OPTIONS_CACHE:
        main = REPO / "Sources" / executable / "main.swift"
        options = Options(executable)
        _parse_options(main.read_text(), options, set())
        for name, is_flag in PENDING_OPTIONS.get(executable, {}).items():
            if name not in options.values:
                options.values[name] = is_flag
                options.pending.add(name)
        _OPTIONS_CACHE[executable] = options
    return _OPTIONS_CACHE[executable]


def test_option_parser_reads_the_sources():
    """The parser finds the options the executables have had from the start, with the right
    spelling and kind, so an empty or wrong list cannot make the other checks pass vacuously."""
    assert kebab("modelRepository") == "model-repository"
    assert kebab("maxMessageBytes") == "max-message-bytes"
    assert kebab("leaseMs") == "lease-ms"
    assert kebab("httpURLPath") == "http-url-path"
    worker = options_of("fulcrum-worker")
    assert {"model-repository", "host", "port", "advertise", "balancer", "threads", "log-level"} <= set(
        worker.values
    )
    assert worker.is_flag("exit-with-parent") and not worker.is_flag("port")
    assert "model-repository" in worker.required and "port" not in worker.required
    frontend = options_of("fulcrum-frontend")
    assert {"grpc-port", "http-port", "balancer", "max-message-bytes"} <= set(frontend.values)
    assert frontend.is_flag("no-http")
    assert {"host", "port", "lease-ms"} <= set(options_of("fulcrum-balancer").values)
    missing = {e: sorted(options_of(e).pending) for e in EXECUTABLES if options_of(e).pending}
    if missing:
        warnings.warn(f"options accepted from PENDING_OPTIONS, not yet declared in Sources/: {missing}")


def check_arguments(executable: str, arguments: list[str], where: str) -> dict[str, str | None]:
    """Checks `--name value` / `--name=value` / `--flag` arguments; returns name -> value."""
    options = options_of(executable)
    given: dict[str, str | None] = {}
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        assert argument.startswith(
            "--"
        ), f"{where}: unexpected positional argument {argument!r} for {executable}"
        name, equals, inline = argument[2:].partition("=")
        assert (
            name in options
        ), f"{where}: {executable} has no option --{name} (options: {sorted(options.values)})"
        if options.is_flag(name):
            assert not equals, f"{where}: --{name} is a flag and takes no value"
            given[name] = None
            index += 1
        elif equals:
            given[name] = inline
            index += 1
        else:
            assert index + 1 < len(arguments) and not arguments[index + 1].startswith(
                "--"
            ), f"{where}: --{name} needs a value"
            given[name] = arguments[index + 1]
            index += 2
    return given


def check_environment_name(executable: str, name: str, value: str | None, where: str) -> str | None:
    """A FULCRUM_* variable must name an option of `executable`; returns the option (None for
    variables outside the FULCRUM_ namespace)."""
    if not name.startswith("FULCRUM_"):
        return None
    options = options_of(executable)
    option = options.by_env().get(name)
    assert option is not None, (
        f"{where}: {name} matches no option of {executable} " f"(known: {sorted(options.by_env())})"
    )
    if value is not None and options.is_flag(option):
        assert value.lower() in {
            "1",
            "true",
            "yes",
            "on",
            "",
            "0",
            "false",
            "no",
            "off",
        }, f"{where}: {name} is a flag: true or false, not {value!r}"
    return option


def worker_drain_grace_seconds() -> float:
    """The drain grace the worker waits after reporting DRAINING, from WorkerConfiguration."""
    text = (REPO / "Sources" / "FulcrumWorker" / "WorkerConfiguration.swift").read_text()
    match = re.search(r"drainGrace:\s*Duration\s*=\s*\.(milliseconds|seconds)\((\d+)\)", text)
    assert match, "cannot find the default drainGrace in Sources/FulcrumWorker/WorkerConfiguration.swift"
    value = float(match.group(2))
    return value / 1000 if match.group(1) == "milliseconds" else value


# ============================================================================================
# A kustomize renderer for the features deploy/kubernetes uses


class UnsupportedKustomization(Exception):
    pass


CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "StorageClass",
    "CustomResourceDefinition",
    "PriorityClass",
    "IngressClass",
    "RuntimeClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
}
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "namespace", "resources", "patches", "images"}
# Strategic merge keys of the lists a patch may touch (the Kubernetes API's patchMergeKey); any
# other list is replaced by the patch's, as the API server and kustomize do.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "volumeDevices": "devicePath",
}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def load_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def strategic_merge(base, patch, key: str | None = None):
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for name, value in patch.items():
            if isinstance(name, str) and name.startswith("$"):
                raise UnsupportedKustomization(f"strategic merge directive {name}")
            if value is None:
                merged.pop(name, None)
            elif name in merged:
                merged[name] = strategic_merge(merged[name], value, name)
            else:
                merged[name] = copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and key in MERGE_KEYS:
        merge_key = MERGE_KEYS[key]
        if all(isinstance(item, dict) and merge_key in item for item in base + patch):
            # Items named by the patch first, in its order (merged into the base's item of the
            # same key), then the base's other items in their order: kustomize's output order.
            by_key = {item[merge_key]: item for item in base}
            named = [item[merge_key] for item in patch]
            result = [
                (
                    strategic_merge(by_key[item[merge_key]], item, None)
                    if item[merge_key] in by_key
                    else copy.deepcopy(item)
                )
                for item in patch
            ]
            result += [copy.deepcopy(item) for item in base if item[merge_key] not in named]
            return result
    return copy.deepcopy(patch)


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """name, tag, digest (a registry port is part of the name)."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
        return name, tag, digest or None
    return name, None, digest or None


def pod_specs(obj: dict) -> list[dict]:
    if obj.get("kind") in WORKLOAD_KINDS:
        return [obj["spec"]["template"]["spec"]]
    if obj.get("kind") == "CronJob":
        return [obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    if obj.get("kind") == "Pod":
        return [obj["spec"]]
    return []


def render(directory: Path) -> list[dict]:
    """Builds the kustomization in `directory` (only the features deploy/kubernetes uses)."""
    files = [directory / name for name in ("kustomization.yaml", "kustomization.yml", "Kustomization")]
    found = [path for path in files if path.exists()]
    if not found:
        raise UnsupportedKustomization(f"{directory}: no kustomization.yaml")
    kustomization = yaml.safe_load(found[0].read_text()) or {}
    unknown = set(kustomization) - KUSTOMIZATION_KEYS
    if unknown:
        raise UnsupportedKustomization(
            f"{found[0]}: {sorted(unknown)} not supported by this test's renderer "
            "(extend render() in tests/deploy/test_manifests.py)"
        )
    objects: list[dict] = []
    for resource in kustomization.get("resources", []):
        path = (directory / resource).resolve()
        objects += render(path) if path.is_dir() else load_documents(path)
    for entry in kustomization.get("patches", []):
        if set(entry) - {"path", "patch"}:
            raise UnsupportedKustomization(
                f"{found[0]}: patch options {sorted(set(entry) - {'path', 'patch'})}"
            )
        documents = (
            load_documents(directory / entry["path"])
            if "path" in entry
            else [doc for doc in yaml.safe_load_all(entry["patch"]) if doc]
        )
        for patch in documents:
            if not isinstance(patch, dict) or "kind" not in patch:
                raise UnsupportedKustomization(f"{found[0]}: only strategic-merge patches are supported")
            targets = [
                index
                for index, obj in enumerate(objects)
                if obj["kind"] == patch["kind"]
                and obj["metadata"]["name"] == patch["metadata"]["name"]
                and patch["metadata"].get("namespace") in (None, obj["metadata"].get("namespace"))
            ]
            assert (
                len(targets) == 1
            ), f"{found[0]}: patch of {patch['kind']}/{patch['metadata']['name']} matches {len(targets)} objects"
            objects[targets[0]] = strategic_merge(objects[targets[0]], patch)
    namespace = kustomization.get("namespace")
    if namespace:
        for obj in objects:
            if obj["kind"] == "Namespace":
                obj["metadata"]["name"] = namespace
            elif obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = namespace
    for image in kustomization.get("images", []):
        if set(image) - {"name", "newName", "newTag", "digest"}:
            raise UnsupportedKustomization(
                f"{found[0]}: image fields {sorted(set(image) - {'name', 'newName', 'newTag', 'digest'})}"
            )
        for obj in objects:
            for spec in pod_specs(obj):
                for container in spec.get("containers", []) + spec.get("initContainers", []):
                    name, tag, digest = split_image(container["image"])
                    if name != image["name"]:
                        continue
                    name = image.get("newName", name)
                    if "digest" in image:
                        container["image"] = f"{name}@{image['digest']}"
                    elif "newTag" in image:
                        container["image"] = f"{name}:{image['newTag']}"
                    else:
                        container["image"] = (
                            name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
                        )
    return objects


def kustomize_command() -> list[str] | None:
    """The real kustomize, if installed: `kustomize build` or `kubectl kustomize` (kubectl 1.21+;
    older kubectl bundles a kustomize too old for `patches:`)."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        try:
            version = subprocess.run(
                ["kubectl", "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=60
            )
            info = json.loads(version.stdout or "{}")
        except (subprocess.SubprocessError, json.JSONDecodeError, OSError):
            return None
        minor = re.match(r"\d+", str(info.get("clientVersion", {}).get("minor", "0")))
        if info.get("kustomizeVersion") and minor and int(minor.group()) >= 21:
            return ["kubectl", "kustomize"]
    return None


def key_of(obj: dict) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def overlay_names() -> list[str]:
    return sorted(path.name for path in OVERLAYS.iterdir() if (path / "kustomization.yaml").exists())


_RENDERED: dict[str, list[dict]] = {}


def rendered(overlay: str) -> list[dict]:
    if overlay not in _RENDERED:
        _RENDERED[overlay] = render(OVERLAYS / overlay)
    return copy.deepcopy(_RENDERED[overlay])


def test_every_variant_has_an_overlay():
    assert set(OVERLAY_EXPECTATIONS) <= set(overlay_names()), f"overlays: {overlay_names()}"


# ============================================================================================
# Helpers over rendered objects


@dataclass
class Workload:
    obj: dict
    namespace: str
    labels: dict
    spec: dict

    @property
    def name(self) -> str:
        return self.obj["metadata"]["name"]

    @property
    def containers(self) -> list[dict]:
        return self.spec.get("containers", [])


def workloads(objects: list[dict]) -> list[Workload]:
    found = []
    for obj in objects:
        if obj["kind"] in WORKLOAD_KINDS:
            template = obj["spec"]["template"]
            found.append(
                Workload(
                    obj,
                    obj["metadata"].get("namespace", ""),
                    template["metadata"].get("labels", {}),
                    template["spec"],
                )
            )
    return found


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [obj for obj in objects if obj["kind"] == kind]


def matches(selector: dict | None, labels: dict) -> bool:
    """A label selector (matchLabels/matchExpressions, or a Service's plain map) against labels."""
    if selector is None:
        return False
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return all(labels.get(k) == v for k, v in selector.items())
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def executable_of(container: dict) -> str:
    """The executable a container runs, from its image name (the Containerfile it is built from)."""
    repository = split_image(container["image"])[0].rsplit("/", 1)[-1]
    assert (
        repository in EXECUTABLES
    ), f"container {container['name']}: image {container['image']} is not one of {EXECUTABLES}"
    return repository


def component_workload(objects: list[dict], component: str) -> Workload:
    found = [
        w for w in workloads(objects) if any(executable_of(c) == COMPONENTS[component] for c in w.containers)
    ]
    assert (
        len(found) == 1
    ), f"expected one workload running {COMPONENTS[component]}, found {[w.name for w in found]}"
    return found[0]


def container_settings(container: dict, where: str) -> dict[str, str | None]:
    """option -> value from the container's FULCRUM_* env and arguments (arguments win)."""
    executable = executable_of(container)
    settings: dict[str, str | None] = {}
    for variable in container.get("env", []):
        option = check_environment_name(executable, variable["name"], variable.get("value"), where)
        if option is not None:
            settings[option] = variable.get("value")
    if container.get("command"):
        raise AssertionError(f"{where}: `command` replaces the image's ENTRYPOINT; use args")
    settings.update(check_arguments(executable, [str(a) for a in container.get("args", [])], where))
    return settings


def port_number(container: dict, port) -> int | None:
    for declared in container.get("ports", []):
        if port == declared.get("name") or port == declared["containerPort"]:
            return declared["containerPort"]
    return None


def port_named(container: dict, name: str) -> int:
    number = port_number(container, name)
    assert number is not None, f"container {container['name']} declares no port named {name}"
    return number


# ============================================================================================
# Kubernetes checks, once per overlay

overlays = pytest.mark.parametrize("overlay", overlay_names())


@overlays
def test_renderer_agrees_with_kustomize(overlay):
    command = kustomize_command()
    if command is None:
        pytest.skip(
            "neither kustomize nor kubectl 1.21+ is installed: checked with this file's renderer only"
        )
    result = subprocess.run(command + [str(OVERLAYS / overlay)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(command)} {overlay} failed:\n{result.stderr}"
    theirs = {key_of(obj): obj for obj in yaml.safe_load_all(result.stdout) if obj}
    ours = {key_of(obj): obj for obj in rendered(overlay)}
    assert sorted(theirs) == sorted(ours), "the renderers produce different objects"
    for key in ours:
        assert ours[key] == theirs[key], f"{key}: this file's renderer and {command[0]} disagree"


@overlays
def test_namespace(overlay):
    objects = rendered(overlay)
    namespaces = {obj["metadata"]["name"] for obj in by_kind(objects, "Namespace")}
    assert len(namespaces) == 1, f"expected one Namespace, found {namespaces}"
    for obj in objects:
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"].get("namespace") in namespaces, f"{key_of(obj)} is outside the namespace"
        assert obj["kind"] not in {"ClusterRole", "ClusterRoleBinding"}, "no cluster-wide RBAC is needed"


@overlays
def test_workload_selectors_match_their_pods(overlay):
    for workload in workloads(rendered(overlay)):
        selector = workload.obj["spec"]["selector"]
        assert matches(
            selector, workload.labels
        ), f"{workload.name}: selector {selector} misses its pod labels {workload.labels}"
    for component in COMPONENTS:
        component_workload(rendered(overlay), component)


@overlays
def test_services_select_pods_and_ports_exist(overlay):
    objects = rendered(overlay)
    for service in by_kind(objects, "Service"):
        name = service["metadata"]["name"]
        selector = service["spec"].get("selector")
        assert selector, f"Service {name} has no selector"
        selected = [
            w
            for w in workloads(objects)
            if w.namespace == service["metadata"]["namespace"] and matches(selector, w.labels)
        ]
        assert selected, f"Service {name}: selector {selector} matches no pods"
        for workload in selected:
            for port in service["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                assert any(
                    port_number(c, target) for c in workload.containers
                ), f"Service {name} port {port.get('name', port['port'])}: targetPort {target!r} is not a port of {workload.name}"


def tls_ports(container: dict, where: str) -> set[int]:
    """The container ports that serve TLS: the balancer's and a worker's gRPC port with the
    cluster's certificates, a frontend's client ports with an edge certificate."""
    executable = executable_of(container)
    settings = container_settings(container, where)
    if executable == "fulcrum-frontend":
        if settings.get("edge-tls-cert"):
            return {port_named(container, "grpc"), port_named(container, "http")}
        return set()
    return {port_named(container, "grpc")} if settings.get("tls-cert") else set()


@overlays
def test_probes_use_declared_ports_and_real_health_services(overlay):
    for workload in workloads(rendered(overlay)):
        for container in workload.containers:
            executable = executable_of(container)
            encrypted = tls_ports(container, f"{workload.name}/{container['name']}")
            library = REPO / "Sources" / LIBRARIES[executable]
            serves_health = any("HealthService(" in p.read_text() for p in library.rglob("*.swift"))
            for kind in ("readinessProbe", "livenessProbe"):
                assert kind in container, f"{workload.name}/{container['name']}: no {kind}"
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = container.get(kind)
                if probe is None:
                    continue
                where = f"{workload.name}/{container['name']} {kind}"
                if "grpc" in probe:
                    assert isinstance(
                        probe["grpc"]["port"], int
                    ), f"{where}: a grpc probe takes a port number"
                    assert port_number(
                        container, probe["grpc"]["port"]
                    ), f"{where}: port {probe['grpc']['port']} is not declared"
                    assert (
                        serves_health
                    ), f"{where}: {LIBRARIES[executable]} registers no grpc.health.v1 HealthService"
                    # The kubelet's gRPC probe speaks plaintext and has no client certificate.
                    assert (
                        probe["grpc"]["port"] not in encrypted
                    ), f"{where}: a gRPC probe on port {probe['grpc']['port']}, which serves TLS (use tcpSocket)"
                elif "httpGet" in probe:
                    assert port_number(
                        container, probe["httpGet"]["port"]
                    ), f"{where}: port {probe['httpGet']['port']} is not declared"
                    if port_number(container, probe["httpGet"]["port"]) in encrypted:
                        assert (
                            probe["httpGet"].get("scheme") == "HTTPS"
                        ), f"{where}: port {probe['httpGet']['port']} serves TLS: the probe needs scheme HTTPS"
                    settings = container_settings(container, where)
                    assert (
                        "no-http" not in settings
                    ), f"{where}: an HTTP probe on a frontend started with --no-http"
                elif "tcpSocket" in probe:
                    assert port_number(
                        container, probe["tcpSocket"]["port"]
                    ), f"{where}: port {probe['tcpSocket']['port']} is not declared"
                else:
                    raise AssertionError(f"{where}: no grpc, httpGet or tcpSocket action")
    # The worker's inference port speaks only mutual TLS, which the kubelet cannot: its probes
    # are HTTP on the metrics port, which opens once the model repository is loaded and whose
    # /health/ready turns 503 while the worker drains (MetricsEndpoint's isReady).
    worker = component_workload(rendered(overlay), "worker").containers[0]
    settings = container_settings(worker, "worker")
    assert "metrics-port" in settings, "the worker's probes need its metrics port (FULCRUM_METRICS_PORT)"
    for kind, path in (("startupProbe", "/health/ready"), ("readinessProbe", "/health/ready"), ("livenessProbe", "/health/live")):
        assert "httpGet" in worker[kind], f"the worker's {kind} must be an HTTP probe on its metrics port"
        probe = worker[kind]["httpGet"]
        assert probe["path"] == path, f"the worker's {kind} probes {probe['path']}, not {path}"
        assert port_number(worker, probe["port"]) == int(settings["metrics-port"]), (
            f"the worker's {kind} does not probe its metrics port"
        )


@overlays
def test_settings_are_real_options_and_agree_with_ports(overlay):
    objects = rendered(overlay)
    balancer_services = [
        s
        for s in by_kind(objects, "Service")
        if matches(s["spec"]["selector"], component_workload(objects, "balancer").labels)
    ]
    assert len(balancer_services) == 1, "one Service in front of the balancer"
    balancer_service = balancer_services[0]
    for workload in workloads(objects):
        for container in workload.containers:
            where = f"{overlay}: {workload.name}/{container['name']}"
            executable = executable_of(container)
            settings = container_settings(container, where)
            defined: set[str] = set()
            for variable in container.get("env", []):
                for reference in re.findall(r"\$\((\w+)\)", variable.get("value", "")):
                    assert (
                        reference in defined
                    ), f"{where}: {variable['name']} uses $({reference}) before it is defined"
                defined.add(variable["name"])
                field_ref = variable.get("valueFrom", {}).get("resourceFieldRef")
                if field_ref:
                    assert field_ref.get("containerName", container["name"]) == container["name"]
                    section, _, resource = field_ref["resource"].partition(".")
                    assert resource in container.get("resources", {}).get(
                        section, {}
                    ), f"{where}: {variable['name']} reads {field_ref['resource']}, which the container does not set"
            missing = options_of(executable).required - set(settings)
            assert not missing, f"{where}: required options not set: {sorted(missing)}"
            assert settings.get("host") not in {
                None,
                "127.0.0.1",
                "localhost",
                "::1",
            }, f"{where}: binds to {settings.get('host') or 'the default 127.0.0.1'}: unreachable from other pods"
            assert int(settings.get("metrics-port") or 0) == port_named(
                container, "metrics"
            ), f"{where}: metrics port"
            if executable == "fulcrum-frontend":
                assert int(settings["grpc-port"]) == port_named(container, "grpc"), f"{where}: grpc port"
                assert int(settings["http-port"]) == port_named(container, "http"), f"{where}: http port"
            else:
                assert int(settings.get("port") or 0) == port_named(container, "grpc"), f"{where}: grpc port"
            if executable in {"fulcrum-frontend", "fulcrum-worker"}:
                host, _, port = (settings.get("balancer") or "").rpartition(":")
                service_port = next(
                    (p for p in balancer_service["spec"]["ports"] if str(p["port"]) == port), None
                )
                assert (
                    host
                    in {
                        balancer_service["metadata"]["name"],
                        f"{balancer_service['metadata']['name']}.{balancer_service['metadata']['namespace']}",
                    }
                    and service_port is not None
                ), f"{where}: --balancer {settings.get('balancer')} is not the balancer Service"
            if executable == "fulcrum-worker":
                advertise = settings.get("advertise") or ""
                assert advertise.endswith(
                    f":{port_named(container, 'grpc')}"
                ), f"{where}: advertises {advertise!r}, not its grpc port"
                repository = settings["model-repository"]
                mounts = [
                    m
                    for m in container.get("volumeMounts", [])
                    if (repository + "/").startswith(m["mountPath"].rstrip("/") + "/")
                ]
                innermost = max(mounts, key=lambda m: len(m["mountPath"]), default={})
                assert innermost.get("readOnly"), f"{where}: model repository {repository} is not on a read-only mount"


@overlays
def test_overlay_selects_backend_and_device(overlay):
    if overlay not in OVERLAY_EXPECTATIONS:
        pytest.skip(f"no expectations for overlay {overlay}")
    expected = OVERLAY_EXPECTATIONS[overlay]
    worker = component_workload(rendered(overlay), "worker")
    container = worker.containers[0]
    given = check_arguments("fulcrum-worker", [str(a) for a in container.get("args", [])], overlay)
    for option, value in expected["args"].items():
        assert (
            given.get(option[2:]) == value
        ), f"{overlay}: worker needs {option} {value}, has args {container.get('args')}"
    limits = container.get("resources", {}).get("limits", {})
    for resource in GPU_RESOURCES:
        want = 1 if resource == expected["gpu"] else None
        assert (
            limits.get(resource) == want
        ), f"{overlay}: worker limits {resource}={limits.get(resource)}, expected {want}"
    for workload in workloads(rendered(overlay)):
        if workload.name != worker.name:
            for c in workload.containers:
                assert not set(c.get("resources", {}).get("limits", {})) & set(
                    GPU_RESOURCES
                ), f"{workload.name} asks for a GPU"


@overlays
def test_rbac_allows_only_the_worker_deployments_scale(overlay):
    objects = rendered(overlay)
    accounts = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o for o in by_kind(objects, "ServiceAccount")
    }
    roles = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in by_kind(objects, "Role")}
    worker = component_workload(objects, "worker")
    balancer = component_workload(objects, "balancer")
    for workload in workloads(objects):
        account = workload.spec.get("serviceAccountName")
        assert (
            account and (workload.namespace, account) in accounts
        ), f"{workload.name}: service account {account!r} does not exist"
        mounted = workload.spec.get(
            "automountServiceAccountToken",
            accounts[(workload.namespace, account)].get("automountServiceAccountToken", True),
        )
        assert mounted == (
            workload.name == balancer.name
        ), f"{workload.name}: API token mounted={mounted}; only the balancer needs one"
    bound_roles = set()
    for binding in by_kind(objects, "RoleBinding"):
        namespace = binding["metadata"]["namespace"]
        assert (
            binding["roleRef"]["kind"] == "Role" and (namespace, binding["roleRef"]["name"]) in roles
        ), f"RoleBinding {binding['metadata']['name']}: role {binding['roleRef']['name']} does not exist"
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount"
            assert (subject.get("namespace"), subject["name"]) == (
                namespace,
                balancer.spec["serviceAccountName"],
            ), f"RoleBinding {binding['metadata']['name']} binds {subject}, not the balancer's service account"
        bound_roles.add((namespace, binding["roleRef"]["name"]))
    assert bound_roles == set(roles), f"roles bound to the balancer {bound_roles} vs defined {set(roles)}"
    assert roles, "the balancer needs a Role for the worker Deployment's scale subresource"
    for role in roles.values():
        for rule in role["rules"]:
            assert rule.get("apiGroups") == ["apps"], rule
            assert rule.get("resources") == ["deployments/scale"], rule
            assert rule.get("resourceNames") == [
                worker.name
            ], f"Role {role['metadata']['name']} names {rule.get('resourceNames')}, the worker Deployment is {worker.name}"
            assert set(rule["verbs"]) <= {"get", "patch", "update"} and rule["verbs"], rule
            assert not set(rule) - {"apiGroups", "resources", "resourceNames", "verbs"}, rule


@overlays
def test_autoscaler_and_disruption_budgets_target_real_workloads(overlay):
    objects = rendered(overlay)
    hpas = by_kind(objects, "HorizontalPodAutoscaler")
    assert hpas, "the frontend needs a HorizontalPodAutoscaler"
    for hpa in hpas:
        target = hpa["spec"]["scaleTargetRef"]
        found = [
            w
            for w in workloads(objects)
            if w.obj["kind"] == target["kind"]
            and w.name == target["name"]
            and w.obj["apiVersion"] == target["apiVersion"]
        ]
        assert len(found) == 1, f"HPA {hpa['metadata']['name']}: target {target} does not exist"
        assert found[0].name == component_workload(objects, "frontend").name, "the HPA sizes the frontend"
        assert "replicas" not in found[0].obj["spec"], "a Deployment sized by an HPA should not set replicas"
        cpu = [
            m for m in hpa["spec"]["metrics"] if m["type"] == "Resource" and m["resource"]["name"] == "cpu"
        ]
        assert cpu, "the HPA scales on CPU"
        for container in found[0].containers:
            assert "cpu" in container.get("resources", {}).get(
                "requests", {}
            ), "CPU utilisation needs a CPU request"
    budgets = by_kind(objects, "PodDisruptionBudget")
    covered = set()
    for budget in budgets:
        selected = [w for w in workloads(objects) if matches(budget["spec"]["selector"], w.labels)]
        assert len(selected) == 1, f"PDB {budget['metadata']['name']} selects {[w.name for w in selected]}"
        replicas = selected[0].obj["spec"].get("replicas")
        if "minAvailable" in budget["spec"] and replicas is not None:
            assert (
                budget["spec"]["minAvailable"] < replicas
            ), f"PDB {budget['metadata']['name']} would block every eviction"
        covered.add(selected[0].name)
    for component in ("frontend", "worker"):
        assert (
            component_workload(objects, component).name in covered
        ), f"no PodDisruptionBudget for the {component}s"


# Peers for the reachability checks: (namespace labels, pod labels).
PROMETHEUS = ({"kubernetes.io/metadata.name": "monitoring"}, {"app.kubernetes.io/name": "prometheus"})
OUTSIDE = ({"kubernetes.io/metadata.name": "clients"}, {"app": "client"})


def reachable(objects: list[dict], source: tuple[dict, dict], target: Workload, port_name: str) -> bool:
    """Whether NetworkPolicies let `source` open `port_name` on the target's pods."""
    namespace = target.namespace
    container = target.containers[0]
    number = port_named(container, port_name)
    policies = [
        p
        for p in by_kind(objects, "NetworkPolicy")
        if p["metadata"]["namespace"] == namespace
        and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
        and matches(p["spec"]["podSelector"] or {"matchLabels": {}}, target.labels)
    ]
    if not policies:
        return True
    source_namespace, source_labels = source
    for policy in policies:
        for rule in policy["spec"].get("ingress", []) or []:
            if rule.get("ports") and not any(p.get("port") in (port_name, number) for p in rule["ports"]):
                continue
            peers = rule.get("from")
            if not peers:
                return True
            for peer in peers:
                if "ipBlock" in peer:
                    return True
                namespace_ok = (
                    matches(peer["namespaceSelector"], source_namespace)
                    if "namespaceSelector" in peer
                    else source_namespace.get("kubernetes.io/metadata.name") == namespace
                )
                pod_ok = matches(peer["podSelector"], source_labels) if "podSelector" in peer else True
                if namespace_ok and pod_ok:
                    return True
    return False


@overlays
def test_network_policies(overlay):
    objects = rendered(overlay)
    namespace = by_kind(objects, "Namespace")[0]["metadata"]["name"]
    pods = {c: component_workload(objects, c) for c in COMPONENTS}
    inside = {c: ({"kubernetes.io/metadata.name": namespace}, w.labels) for c, w in pods.items()}
    for policy in by_kind(objects, "NetworkPolicy"):
        name = policy["metadata"]["name"]
        selector = policy["spec"]["podSelector"]
        selected = [w for w in pods.values() if matches(selector or {"matchLabels": {}}, w.labels)]
        assert selected, f"NetworkPolicy {name}: podSelector {selector} matches no pods"
        for rule in policy["spec"].get("ingress", []) or []:
            for peer in rule.get("from", []) or []:
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    assert any(
                        matches(peer["podSelector"], w.labels) for w in pods.values()
                    ), f"NetworkPolicy {name}: from.podSelector {peer['podSelector']} matches no pods"
            for port in rule.get("ports", []) or []:
                for workload in selected:
                    assert port_number(
                        workload.containers[0], port["port"]
                    ), f"NetworkPolicy {name}: {workload.name} has no port {port['port']}"
    # The intent, as a reachability table.
    expected = {
        ("worker", "grpc"): {"frontend"},
        ("balancer", "grpc"): {"worker", "frontend"},
        ("frontend", "grpc"): {"balancer", "worker", "frontend", "outside"},
        ("frontend", "http"): {"balancer", "worker", "frontend", "outside"},
    }
    for (target, port), allowed in expected.items():
        for source, peer in list(inside.items()) + [("outside", OUTSIDE)]:
            assert reachable(objects, peer, pods[target], port) == (
                source in allowed
            ), f"{source} {'cannot' if source in allowed else 'can'} reach the {target}'s {port} port"
    for target, workload in pods.items():
        assert reachable(objects, PROMETHEUS, workload, "metrics"), f"Prometheus cannot scrape the {target}"
        assert not reachable(
            objects, OUTSIDE, workload, "metrics"
        ), f"the {target}'s metrics port is open to everyone"


@overlays
def test_prometheus_annotations(overlay):
    for workload in workloads(rendered(overlay)):
        annotations = workload.obj["spec"]["template"]["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", f"{workload.name}: not scraped"
        assert annotations.get("prometheus.io/path") == "/metrics", f"{workload.name}: path"
        metrics = port_named(workload.containers[0], "metrics")
        assert annotations.get("prometheus.io/port") == str(
            metrics
        ), f"{workload.name}: scrape port is not the metrics port {metrics}"


@overlays
def test_termination_outlasts_the_drain(overlay):
    drain = worker_drain_grace_seconds()
    for workload in workloads(rendered(overlay)):
        grace = workload.spec.get("terminationGracePeriodSeconds", 30)
        pre_stop = 0.0
        for container in workload.containers:
            hook = container.get("lifecycle", {}).get("preStop")
            if hook:
                if "sleep" in hook:
                    pre_stop = max(pre_stop, float(hook["sleep"]["seconds"]))
                else:
                    command = hook["exec"]["command"]
                    assert (
                        Path(command[0]).name == "sleep"
                    ), f"{workload.name}: preStop {command} is not understood by this test"
                    pre_stop = max(pre_stop, float(command[1]))
        needed = pre_stop + (
            drain if workload.name == component_workload(rendered(overlay), "worker").name else 0
        )
        assert (
            grace >= needed + 10
        ), f"{workload.name}: terminationGracePeriodSeconds {grace} leaves under 10 s after {needed} s of preStop and drain"
    worker = component_workload(rendered(overlay), "worker")
    assert worker.spec["terminationGracePeriodSeconds"] >= 10 * drain


@overlays
def test_volumes_and_claims(overlay):
    objects = rendered(overlay)
    claims = {
        (o["metadata"]["namespace"], o["metadata"]["name"]) for o in by_kind(objects, "PersistentVolumeClaim")
    }
    for workload in workloads(objects):
        volumes = {v["name"]: v for v in workload.spec.get("volumes", [])}
        for container in workload.containers:
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{workload.name}: mount {mount['name']} has no volume"
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                assert (workload.namespace, claim) in claims, f"{workload.name}: claim {claim} does not exist"


def mount_of(container: dict, path: str) -> dict | None:
    """The innermost volume mount holding `path`."""
    mounts = [
        m
        for m in container.get("volumeMounts", [])
        if (path + "/").startswith(m["mountPath"].rstrip("/") + "/") and path != m["mountPath"]
    ]
    return max(mounts, key=lambda m: len(m["mountPath"]), default=None)


@overlays
def test_cluster_tls_files_come_from_a_secret(overlay):
    """Each tier's FULCRUM_TLS_* (or --tls-*) settings name its own role's certificate, key and the
    CA, in a Secret volume mounted read-only that projects only those files (no other role's key),
    readable by the container's non-root user and, for the key, by nobody else; no --insecure."""
    objects = rendered(overlay)
    secret_names = set()
    for component in COMPONENTS:
        workload = component_workload(objects, component)
        volumes = {v["name"]: v for v in workload.spec.get("volumes", [])}
        pod_security = workload.spec.get("securityContext", {})
        for container in workload.containers:
            where = f"{overlay}: {workload.name}/{container['name']}"
            role = ROLE_OF[executable_of(container)]
            settings = container_settings(container, where)
            assert not flag_set(settings, "insecure"), f"{where}: runs the tiers in plaintext (--insecure)"
            missing = [option for option in TLS_OPTIONS if not settings.get(option)]
            assert not missing, f"{where}: no {', '.join('--' + m for m in missing)}: no mutual TLS"
            for option, expected in role_files(role).items():
                path = PurePosixPath(settings[option])
                assert path.is_absolute(), f"{where}: --{option} {path} is not an absolute path"
                mount = mount_of(container, str(path))
                assert mount is not None, f"{where}: --{option} {path} is on no volume mount"
                assert mount.get("readOnly") is True, f"{where}: {mount['mountPath']} is not mounted read-only"
                volume = volumes[mount["name"]]
                assert "secret" in volume, f"{where}: --{option} {path} is not from a Secret volume ({volume})"
                secret = volume["secret"]
                assert not secret.get("optional"), f"{where}: Secret {secret['secretName']} is optional"
                secret_names.add(secret["secretName"])
                relative = str(PurePosixPath(mount.get("subPath", "")) / path.relative_to(mount["mountPath"]))
                items = secret.get("items")
                assert items, (
                    f"{where}: the Secret volume {mount['name']} projects every key of "
                    f"{secret['secretName']}; list this role's files in `items`"
                )
                item = next((i for i in items if i["path"] == relative), None)
                assert item is not None, f"{where}: --{option} {path}: no item of {mount['name']} has path {relative}"
                assert (
                    item["key"] == expected
                ), f"{where}: --{option} is the Secret's {item['key']}, the {role} needs {expected}"
                mode = item.get("mode", secret.get("defaultMode", 0o644))
                group = pod_security.get("fsGroup")
                assert mode & 0o004 or (
                    mode & 0o040 and group is not None
                ), f"{where}: {path} (mode {mode:o}, fsGroup {group}) is not readable by the non-root user"
                if option == "tls-key":
                    assert not mode & 0o007, f"{where}: the private key {path} is readable by everyone (mode {mode:o})"
            for mount in container.get("volumeMounts", []):
                secret = volumes[mount["name"]].get("secret")
                if secret is None:
                    continue
                others = {
                    i["key"]
                    for i in secret.get("items", [])
                    if i["key"] == "ca-key.pem"
                    or any(i["key"] == f"{r}-key.pem" for r in ROLES if r != role)
                }
                assert not others, f"{where}: the {role} pod also gets {sorted(others)}"
    assert len(secret_names) == 1, f"the tiers' certificates come from one Secret, not {sorted(secret_names)}"


@overlays
def test_pod_security_restricted(overlay):
    uids = {executable: containerfile_user(executable) for executable in EXECUTABLES}
    for workload in workloads(rendered(overlay)):
        pod = workload.spec.get("securityContext", {})
        assert pod.get("runAsNonRoot") is True, f"{workload.name}: runAsNonRoot"
        assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{workload.name}: seccomp"
        for container in workload.containers:
            context = container.get("securityContext", {})
            assert (
                context.get("allowPrivilegeEscalation") is False
            ), f"{workload.name}: allowPrivilegeEscalation"
            assert context.get("capabilities", {}).get("drop") == ["ALL"], f"{workload.name}: capabilities"
            assert context.get("readOnlyRootFilesystem") is True, f"{workload.name}: readOnlyRootFilesystem"
            assert not context.get("privileged"), f"{workload.name}: privileged"
            uid = context.get("runAsUser", pod.get("runAsUser"))
            assert (
                uid == uids[executable_of(container)]
            ), f"{workload.name}: runs as {uid}, the image's user is {uids[executable_of(container)]}"


# ============================================================================================
# Containerfiles


def containerfile(executable: str) -> str:
    path = CONTAINERS / f"Containerfile.{executable.removeprefix('fulcrum-')}"
    assert path.exists(), f"{path} is missing"
    return path.read_text()


def containerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in text.splitlines():
        if not current and line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            instruction, _, arguments = current.strip().partition(" ")
            logical.append((instruction.upper(), arguments.strip()))
        current = ""
    return logical


def containerfile_user(executable: str) -> int:
    instructions = containerfile_instructions(containerfile(executable))
    users = [arguments for instruction, arguments in instructions if instruction == "USER"]
    assert users, f"Containerfile for {executable}: no USER"
    uid = users[-1].split(":")[0]
    assert (
        uid.isdigit() and int(uid) != 0
    ), f"Containerfile for {executable}: USER {users[-1]} is not a numeric non-root uid"
    return int(uid)


@pytest.mark.parametrize("executable", EXECUTABLES)
def test_containerfile(executable):
    text = containerfile(executable)
    instructions = containerfile_instructions(text)
    froms = [arguments for instruction, arguments in instructions if instruction == "FROM"]
    assert len(froms) >= 2, "multi-stage: a build stage and a runtime stage"
    arguments = {m.group(1): m.group(2) for m in re.finditer(r"^ARG\s+(\w+)=(\S+)", text, re.M)}

    def image(reference: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: arguments.get(m.group(1), m.group(0)), reference.split()[0])

    assert re.fullmatch(
        r"(docker\.io/)?(library/)?swift:6\.\d+(\.\d+)?-bookworm", image(froms[0])
    ), f"build stage from {image(froms[0])}"
    assert re.fullmatch(
        r"(docker\.io/)?(library/)?debian:bookworm-slim", image(froms[-1])
    ), f"runtime stage from {image(froms[-1])}"
    runs = " ".join(arguments for instruction, arguments in instructions if instruction == "RUN")
    assert re.search(
        rf"swift build -c release --static-swift-stdlib --product {executable}\b", runs
    ), "release build of the product"
    runtime = text[text.rindex("\nFROM ") :]
    # Only the worker links the runtime (OpenBLAS, the Vulkan loader); the edges do not
    # (Package.swift, tests/integration/test_linkage.py), so their images leave both out.
    math = ("libvulkan1", "libopenblas0")
    for package in ("ca-certificates",) + (math if executable == "fulcrum-worker" else ()):
        assert re.search(rf"\b{package}\b", runtime), f"runtime stage lacks {package}"
    if executable != "fulcrum-worker":
        for package in math:
            assert not re.search(rf"\b{package}\b", runtime), f"the {executable} image carries {package}, which it does not link"
    entrypoint = [
        json.loads(arguments) for instruction, arguments in instructions if instruction == "ENTRYPOINT"
    ]
    assert (
        entrypoint and Path(entrypoint[-1][0]).name == executable
    ), f"ENTRYPOINT {entrypoint} is not {executable} (exec form)"
    exposed = {
        int(p.split("/")[0])
        for instruction, arguments in instructions
        if instruction == "EXPOSE"
        for p in arguments.split()
    }
    for overlay in overlay_names():
        for workload in workloads(rendered(overlay)):
            for container in workload.containers:
                if executable_of(container) == executable:
                    ports = {p["containerPort"] for p in container.get("ports", [])}
                    assert (
                        ports <= exposed
                    ), f"{overlay}: {workload.name} uses ports {sorted(ports - exposed)} the image does not EXPOSE"
    for instruction, arguments in instructions:
        if instruction == "ENV":
            for name, value in re.findall(r"(\w+)=(\S*)", arguments):
                check_environment_name(executable, name, value, f"Containerfile ENV {name}")


# ============================================================================================
# systemd


@dataclass
class Unit:
    path: Path
    sections: dict[str, list[tuple[str, str]]]

    def values(self, section: str, key: str) -> list[str]:
        return [v for k, v in self.sections.get(section, []) if k == key]

    def value(self, section: str, key: str) -> str | None:
        values = self.values(section, key)
        return values[-1] if values else None


def parse_unit(path: Path) -> Unit:
    sections: dict[str, list[tuple[str, str]]] = {}
    section = None
    pending = ""
    for raw in path.read_text().splitlines():
        if not pending and raw.lstrip().startswith(("#", ";")):
            continue
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if not line:
            continue
        if line.startswith("["):
            section = line.strip("[]")
            sections.setdefault(section, [])
            continue
        key, _, value = line.partition("=")
        assert section, f"{path}: {key} outside a section"
        sections[section].append((key.strip(), value.strip()))
    return Unit(path, sections)


UNITS = {
    "fulcrum-balancer": "fulcrum-balancer.service",
    "fulcrum-frontend": "fulcrum-frontend.service",
    "fulcrum-worker": "fulcrum-worker@.service",
}


def seconds(text: str) -> float:
    total = 0.0
    for number, unit in re.findall(r"([\d.]+)\s*(ms|s|min|m|h)?", text):
        total += float(number) * {"ms": 0.001, "s": 1, "": 1, "min": 60, "m": 60, "h": 3600}[unit or ""]
    return total


def read_env_file(path: Path) -> list[tuple[str, str, bool]]:
    """(name, value, commented out) for each assignment, including `# FULCRUM_X=...` examples."""
    entries = []
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        commented = stripped.startswith(("#", ";"))
        body = stripped.lstrip("#; ").strip() if commented else stripped
        match = re.fullmatch(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)", body)
        if match is None:
            assert commented, f"{path}: {line!r} is not NAME=value"
            continue
        value = match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        entries.append((match.group(1), value, commented))
    return entries


def env_file_executable(path: Path) -> str:
    return COMPONENTS[re.match(r"(balancer|frontend|worker)", path.stem).group(1)]


@pytest.mark.parametrize("path", sorted((SYSTEMD / "env").glob("*.env")), ids=lambda p: p.name)
def test_environment_files_name_real_options(path):
    executable = env_file_executable(path)
    for name, value, commented in read_env_file(path):
        where = f"{path.relative_to(REPO)}: {name}{' (commented example)' if commented else ''}"
        assert name.startswith("FULCRUM_"), f"{where}: only FULCRUM_* settings belong here"
        check_environment_name(executable, name, value, where)
    if path.name == "worker.env":
        active = {name for name, _, commented in read_env_file(path) if not commented}
        shared = active & {
            "FULCRUM_PORT",
            "FULCRUM_METRICS_PORT",
            "FULCRUM_NAME",
            "FULCRUM_DEVICE",
            "FULCRUM_ADVERTISE",
        }
        assert (
            not shared
        ), f"{path}: {sorted(shared)} would be the same for every instance; set them in worker-N.env"
        assert "FULCRUM_MODEL_REPOSITORY" in active, f"{path}: the worker needs a model repository"


def test_environment_files_agree_on_the_balancer_port():
    def active(name: str) -> dict[str, str]:
        return {n: v for n, v, commented in read_env_file(SYSTEMD / "env" / name) if not commented}

    port = active("balancer.env").get("FULCRUM_PORT", "7000")
    for name in ("frontend.env", "worker.env"):
        balancer = active(name).get("FULCRUM_BALANCER", "")
        assert (
            balancer.rpartition(":")[2] == port
        ), f"{name}: FULCRUM_BALANCER={balancer}, the balancer listens on {port}"


def systemd_settings(executable: str) -> dict[str, str | None]:
    """option -> value that the unit's service gets from the example environment files (in the
    unit's order, later files winning), its Environment= lines and its ExecStart flags (which win;
    the worker template's shell line gives names only, with the value None)."""
    unit = parse_unit(SYSTEMD / UNITS[executable])
    by_env = options_of(executable).by_env()
    settings: dict[str, str | None] = {}
    for entry in unit.values("Service", "EnvironmentFile"):
        example = SYSTEMD / "env" / Path(entry.lstrip("-")).name.replace("%i", "0")
        if example.exists():
            for name, value, commented in read_env_file(example):
                if not commented and name in by_env:
                    settings[by_env[name]] = value
    for entry in unit.values("Service", "Environment"):
        for name, value in re.findall(r"(\w+)=(\S*)", entry):
            if name in by_env:
                settings[by_env[name]] = value
    tokens = shlex.split(unit.value("Service", "ExecStart").lstrip("-@:+!"))
    if Path(tokens[0]).name == "sh":
        for flag in re.findall(r"(?<![\w-])--([a-z][a-z0-9-]*)", tokens[2]):
            settings[flag] = None
    else:
        settings.update(check_arguments(executable, tokens[1:], f"{unit.path.name} ExecStart"))
    return settings


@pytest.mark.parametrize("executable", EXECUTABLES)
def test_systemd_units_use_the_cluster_certificates(executable):
    """Each unit's service gets its own role's certificate and key and the CA from
    /etc/fulcrum/tls (as `fulcrum certs --out /etc/fulcrum/tls` writes them), runs without
    --insecure, and its sandbox leaves the folder visible."""
    unit = parse_unit(SYSTEMD / UNITS[executable])
    settings = systemd_settings(executable)
    assert not flag_set(settings, "insecure"), f"{unit.path.name}: runs the tiers in plaintext (--insecure)"
    for option, name in role_files(ROLE_OF[executable]).items():
        assert settings.get(option) == f"{SYSTEMD_TLS_DIR}/{name}", (
            f"{unit.path.name}: --{option} is {settings.get(option)!r}, "
            f"expected {SYSTEMD_TLS_DIR}/{name} (FULCRUM_{option.upper().replace('-', '_')} in its environment file)"
        )
    hidden = [
        path.lstrip("-+")
        for key in ("InaccessiblePaths", "TemporaryFileSystem")
        for entry in unit.values("Service", key)
        for path in entry.split()
    ]
    for path in hidden:
        path = path.split(":")[0]
        assert not (SYSTEMD_TLS_DIR + "/").startswith(
            path.rstrip("/") + "/"
        ), f"{unit.path.name}: {path} hides {SYSTEMD_TLS_DIR}"


@pytest.mark.parametrize("executable", EXECUTABLES)
def test_systemd_unit(executable):
    unit = parse_unit(SYSTEMD / UNITS[executable])
    service = "Service"
    start = unit.values(service, "ExecStart")
    assert len(start) == 1, f"{unit.path.name}: one ExecStart"
    command = start[0].lstrip("-@:+!")
    tokens = shlex.split(command)
    if Path(tokens[0]).name == "sh":
        assert (
            tokens[1] == "-c" and f"exec /usr/local/bin/{executable} " in tokens[2] + " "
        ), f"{unit.path.name}: the shell must exec {executable} (so that it gets SIGTERM itself)"
        flags = re.findall(r"(?<![\w-])--([a-z][a-z0-9-]*)", tokens[2])
        for flag in flags:
            assert flag in options_of(
                executable
            ), f"{unit.path.name}: ExecStart uses --{flag}, which {executable} does not accept"
    else:
        assert tokens[0] == f"/usr/local/bin/{executable}", f"{unit.path.name}: ExecStart runs {tokens[0]}"
        check_arguments(executable, tokens[1:], f"{unit.path.name} ExecStart")
    # Settings come from /etc/fulcrum/<name>.env, and each has an example here.
    for entry in unit.values(service, "EnvironmentFile"):
        target = entry.lstrip("-")
        assert target.startswith("/etc/fulcrum/"), f"{unit.path.name}: EnvironmentFile {target}"
        example = SYSTEMD / "env" / Path(target).name.replace("%i", "0")
        assert example.exists(), f"{unit.path.name}: no example {example.relative_to(REPO)} for {target}"
        assert env_file_executable(example) == executable
    for entry in unit.values(service, "Environment"):
        for name, value in re.findall(r"(\w+)=(\S*)", entry):
            check_environment_name(executable, name, value, f"{unit.path.name} Environment")
    # Restart, stop and hardening.
    assert unit.value(service, "Restart") == "on-failure"
    assert unit.value(service, "KillSignal") in (None, "SIGTERM")
    stop = seconds(unit.value(service, "TimeoutStopSec") or "90s")
    if executable == "fulcrum-worker":
        assert (
            stop >= 10 * worker_drain_grace_seconds() and stop >= 30
        ), f"TimeoutStopSec {stop} s against the worker's drain"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "ProtectKernelModules": "yes",
        "RestrictSUIDSGID": "yes",
    }.items():
        assert (
            unit.value(service, key) == value
        ), f"{unit.path.name}: {key}={unit.value(service, key)}, expected {value}"
    user = unit.value(service, "User")
    if unit.value(service, "DynamicUser") != "yes":
        assert user and user != "root", f"{unit.path.name}: runs as {user or 'root'}"
        sysusers = (SYSTEMD / "fulcrum.sysusers").read_text()
        assert re.search(
            rf"^u\s+{re.escape(user)}\s", sysusers, re.M
        ), f"fulcrum.sysusers does not create {user}"
    assert unit.value(service, "CapabilityBoundingSet") == "", f"{unit.path.name}: capabilities"
    if executable == "fulcrum-worker":
        assert unit.value(service, "DevicePolicy") == "closed"
        allowed = " ".join(unit.values(service, "DeviceAllow"))
        for device in ("char-drm", "char-nvidia-frontend", "char-nvidia-uvm"):
            assert device in allowed, f"{unit.path.name}: DeviceAllow lacks {device}"
        assert unit.value(service, "PrivateDevices") in (None, "no"), "PrivateDevices would hide the GPUs"
        repository = next(
            v
            for n, v, c in read_env_file(SYSTEMD / "env" / "worker.env")
            if n == "FULCRUM_MODEL_REPOSITORY" and not c
        )
        read_only = [p.lstrip("-") for entry in unit.values(service, "ReadOnlyPaths") for p in entry.split()]
        assert (
            repository in read_only
        ), f"{unit.path.name}: ReadOnlyPaths {read_only} lacks the model repository {repository}"
    else:
        assert unit.value(service, "PrivateDevices") == "yes"


def _stand_in(tmp_path: Path) -> Path:
    script = tmp_path / "fulcrum-worker"
    script.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def run_worker_exec_start(
    tmp_path: Path, instance: str, environment: dict[str, str]
) -> subprocess.CompletedProcess:
    """Runs the template's ExecStart as systemd would for `fulcrum-worker@<instance>` (specifiers
    and `$$` resolved), with a stand-in that prints its arguments instead of the worker."""
    unit = parse_unit(SYSTEMD / UNITS["fulcrum-worker"])
    command = unit.value("Service", "ExecStart")
    command = command.replace("%i", instance).replace("%H", "gpuhost").replace("%%", "%").replace("$$", "$")
    assert not re.search(r"%[a-zA-Z]", command), f"unhandled specifier in {command}"
    tokens = shlex.split(command)
    script = tokens[2].replace("/usr/local/bin/fulcrum-worker", str(_stand_in(tmp_path)))
    return subprocess.run(
        [tokens[0], "-c", script],
        env={"PATH": "/usr/bin:/bin", **environment},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_worker_template_arguments_per_instance(tmp_path):
    result = run_worker_exec_start(tmp_path, "3", {})
    assert result.returncode == 0, result.stderr
    arguments = result.stdout.splitlines()
    given = check_arguments("fulcrum-worker", arguments, "fulcrum-worker@3 ExecStart")
    assert given == {"device": "3", "port": "9003", "metrics-port": "9203", "name": "gpuhost-3"}, given
    # worker-N.env settings win over the derived ones.
    result = run_worker_exec_start(tmp_path, "1", {"FULCRUM_PORT": "9500", "FULCRUM_NAME": "w"})
    given = check_arguments("fulcrum-worker", result.stdout.splitlines(), "fulcrum-worker@1 ExecStart")
    assert given["port"] == "9500" and given["name"] == "w" and given["metrics-port"] == "9201", given
    # An instance name that is not a device index stops with EX_USAGE, which is not restarted.
    result = run_worker_exec_start(tmp_path, "gpu0", {})
    assert result.returncode == 64 and "device index" in result.stderr, (result.returncode, result.stderr)
    unit = parse_unit(SYSTEMD / UNITS["fulcrum-worker"])
    assert "64" in (unit.value("Service", "RestartPreventExitStatus") or "").split()


def test_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    system_units = Path("/usr/lib/systemd/system")
    if analyze is None or not (system_units / "sysinit.target").exists():
        pytest.skip(
            "systemd-analyze (package systemd) is not installed: units checked by this file's parser only"
        )
    # A scratch root with the distribution's units, stand-in executables and the example
    # environment files, so that verify checks our units rather than this machine's state.
    root = tmp_path / "root"
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    for executable in EXECUTABLES:
        binary = root / "usr/local/bin" / executable
        binary.parent.mkdir(parents=True, exist_ok=True)
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    (root / "bin").mkdir()
    shutil.copy("/bin/sh", root / "bin/sh")
    (root / "etc/fulcrum").mkdir(parents=True)
    for env in (SYSTEMD / "env").glob("*.env"):
        shutil.copy(env, root / "etc/fulcrum" / env.name)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    for name in UNITS.values():
        shutil.copy(SYSTEMD / name, units / name)
    names = [
        "fulcrum-balancer.service",
        "fulcrum-frontend.service",
        "fulcrum-worker@0.service",
        "fulcrum-worker@1.service",
    ]
    result = subprocess.run(
        [analyze, "verify", f"--root={root}", *names], cwd=units, capture_output=True, text=True, timeout=120
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not output, f"systemd-analyze verify:\n{output}"


# ============================================================================================
# netns rehearsal

REHEARSE = DEPLOY / "netns" / "rehearse"


def test_netns_rehearse_parses():
    result = subprocess.run(["bash", "-n", str(REHEARSE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"bash -n deploy/netns/rehearse:\n{result.stderr}"


def test_netns_rehearse_gives_each_role_its_certificates(tmp_path):
    """Runs the rehearsal's certificate functions (not `up`, which needs root and namespaces)
    with a stand-in `fulcrum` that writes placeholder files: `fulcrum certs` gets the run
    directory's tls folder and every service host's address, each service its own role's files in
    place of the environment files' /etc/fulcrum/tls paths, and the CLI's balancer calls
    --tls-dir; with FULCRUM_NETNS_TLS=off, --insecure and no certificate settings."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "fulcrum"
    stand_in.write_text(
        "#!/bin/bash\n"
        'case $1 in\n'
        '  --help) printf "SUBCOMMANDS:\\n  status  Show the pool.\\n  certs  Make a cluster CA.\\n" ;;\n'
        '  certs) printf "%s\\n" "$@" >"$FULCRUM_TEST_CERTS_ARGS"; shift\n'
        '         while (($#)); do if [[ $1 == --out ]]; then out=$2; fi; shift; done\n'
        '         mkdir -p "$out"; for f in ca balancer frontend worker admin; do echo "$f" >"$out/$f.pem"; done ;;\n'
        "esac\n"
    )
    stand_in.chmod(0o755)
    run_dir = tmp_path / "run"
    # The script without its last line (`main "$@"`), so that its functions can be called.
    text = REHEARSE.read_text().rstrip("\n")
    assert text.endswith('main "$@"'), "deploy/netns/rehearse no longer ends with main \"$@\""
    library = tmp_path / "rehearse.sh"
    library.write_text(text[: -len('main "$@"')])
    script = f"""
        source {shlex.quote(str(library))}
        mkdir -p "$RUN_DIR"
        if tls_enabled; then make_certificates; fi
        for role in balancer frontend worker; do
            entries=(); read_env_file "$ENV_DIR/$role.env" entries
            tls_settings "$role" entries
            printf '%s %s\\n' "$role" "${{entries[*]}}"
        done
        admin=(); admin_tls admin
        printf 'cli %s\\n' "${{admin[*]}}"
    """

    def run(mode: str) -> tuple[dict[str, dict[str, str]], list[str], list[str]]:
        environment = {
            "PATH": "/usr/bin:/bin",
            "FULCRUM_BIN_DIR": str(bin_dir),
            "FULCRUM_NETNS_RUN_DIR": str(run_dir),
            "FULCRUM_NETNS_TLS": mode,
            "FULCRUM_NETNS_ENV_DIR": str(SYSTEMD / "env"),
            "FULCRUM_TEST_CERTS_ARGS": str(tmp_path / "certs-args"),
        }
        result = subprocess.run(
            ["bash", "-c", script], env=environment, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"rehearse's certificate functions ({mode}):\n{result.stderr}"
        services: dict[str, dict[str, str]] = {}
        cli: list[str] = []
        for line in result.stdout.splitlines():
            name, _, rest = line.partition(" ")
            if name == "cli":
                cli = rest.split()
            else:
                services[name] = dict(entry.split("=", 1) for entry in rest.split())
        certs = (tmp_path / "certs-args").read_text().split() if (tmp_path / "certs-args").exists() else []
        return services, cli, certs

    tls_dir = run_dir / "tls"
    services, cli, certs = run("on")
    assert certs[:3] == ["certs", "--out", str(tls_dir)], certs
    hosts = [certs[i + 1] for i, a in enumerate(certs) if a == "--host"]
    script_text = REHEARSE.read_text()
    addresses = re.search(r"declare -A ADDR=\(([^)]*)\)", script_text).group(1)
    subnet = re.search(r"SUBNET=\$\{FULCRUM_NETNS_SUBNET:-([\d.]+)\}", script_text).group(1)
    for host in ("ctl", "w1", "w2"):
        octet = re.search(rf"\[{host}\]=\$SUBNET\.(\d+)", addresses).group(1)
        assert f"{subnet}.{octet}" in hosts, f"`fulcrum certs` does not name {host}'s address: {certs}"
    for role, entries in services.items():
        for option, name in role_files(role).items():
            variable = "FULCRUM_" + option.upper().replace("-", "_")
            assert entries.get(variable) == str(tls_dir / name), (role, entries)
        assert "FULCRUM_INSECURE" not in entries, (role, entries)
    assert set(services) == {"balancer", "frontend", "worker"}
    assert cli == ["--tls-dir", str(tls_dir)], cli
    (tmp_path / "certs-args").unlink()
    shutil.rmtree(tls_dir)
    services, cli, certs = run("off")
    assert not certs, "FULCRUM_NETNS_TLS=off still made certificates"
    for role, entries in services.items():
        assert entries.get("FULCRUM_INSECURE") == "true", (role, entries)
        assert not {k for k in entries if k.startswith("FULCRUM_TLS_")}, (role, entries)
    assert cli == [], cli
    # Every `fulcrum` call to the balancer in the script passes the admin arguments.
    calls = re.findall(r'"\$BIN_DIR/fulcrum" (?:status|plan|loadtest)\b[^\n]*', script_text)
    assert calls, "no `fulcrum status` call found in deploy/netns/rehearse"
    for call in calls:
        assert "--tls-dir" in call or re.search(r'"\$\{\w+\[@\]\}"', call), f"no --tls-dir in: {call}"
