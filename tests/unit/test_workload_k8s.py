"""Kubernetes manifests read as the kubelet runs them (tests/unit/data/workload/helm)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from smtpgate.cli import main
from smtpgate.errors import WorkloadError
from smtpgate.static.image import ImageConfig
from smtpgate.workload.k8s import expand, load_k8s
from smtpgate.workload.spec import DeclaredPort

DATA = Path(__file__).parent / "data" / "workload"
HELM = DATA / "helm" / "release.yaml"


def _specs(where: str, **kw):
    specs, notes = load_k8s(where, **kw)
    return {s.name: s for s in specs}, notes


def _line(path: Path, text: str, nth: int = 1) -> int:
    hits = [i for i, ln in enumerate(path.read_text().splitlines(), 1) if text in ln]
    return hits[nth - 1]


def test_helm_output_every_container():
    specs, notes = _specs(str(HELM))
    assert list(specs) == [
        "StatefulSet/release-mailstack#volume-permissions", "StatefulSet/release-mailstack#metrics",
        "StatefulSet/release-mailstack#postfix", "CronJob/release-mailstack-queue-report#report",
        "Pod/release-mailstack-test-connection#nc"]
    assert notes == ["skipped 2 object(s) that run no container: ServiceAccount/release-mailstack, "
                     "Secret/release-mailstack"]
    roles = {name: s.role for name, s in specs.items()}
    assert roles["StatefulSet/release-mailstack#volume-permissions"] == "init"
    assert roles["StatefulSet/release-mailstack#metrics"] == "sidecar"
    assert roles["StatefulSet/release-mailstack#postfix"] == "container"
    postfix = specs["StatefulSet/release-mailstack#postfix"]
    assert (postfix.source, postfix.line) == (str(HELM), _line(HELM, "image: docker.io/example/postfix:3.8.6"))


def test_command_and_args_precedence():
    specs, _ = _specs(str(HELM))
    init = specs["StatefulSet/release-mailstack#volume-permissions"]
    assert init.entrypoint == ("/bin/bash",) and init.cmd == ("-ec", "chown -R 1001:1001 /bitnami/postfix\n")
    metrics = specs["StatefulSet/release-mailstack#metrics"]  # args only: the image's ENTRYPOINT stays
    assert metrics.entrypoint is None and metrics.cmd == ("--postfix.showq_path=/var/spool/postfix/public/showq",)
    report = specs["CronJob/release-mailstack-queue-report#report"]  # command only: the image's CMD goes
    assert report.entrypoint == ("postqueue", "-p") and report.cmd == ()
    nc = specs["Pod/release-mailstack-test-connection#nc"]
    assert nc.entrypoint is None and nc.cmd == ("nc", "-z", "release-mailstack", "25")
    config = ImageConfig(entrypoint=("/entry",), cmd=("serve",), env={"A": "1"}, user="app")
    assert report.effective(config).argv == ("postqueue", "-p")
    assert metrics.effective(config).argv == ("/entry", "--postfix.showq_path=/var/spool/postfix/public/showq")
    assert nc.effective(config).argv == ("/entry", "nc", "-z", "release-mailstack", "25")


def test_env_expansion_and_what_is_unknown_offline():
    postfix = _specs(str(HELM))[0]["StatefulSet/release-mailstack#postfix"]
    env = dict(postfix.env)
    assert env == {"BITNAMI_DEBUG": "false", "POSTFIX_HOSTNAME": "mail.example.com", "ENABLE_RELAY": "1",
                   "BANNER": "mail.example.com ESMTP on $(POD_NAME), $(NOT_EXPANDED)"}
    assert postfix.cmd == ("start", "--host", "mail.example.com")
    assert postfix.unknown_env == (
        "envFrom configMapRef release-mailstack-env: its variables",
        "envFrom secretRef release-mailstack-extra (prefix EXTRA_): its variables",
        "POD_NAME (valueFrom fieldRef metadata.name)",
        "RELAY_PASSWORD (valueFrom secretKeyRef release-mailstack/relay-password)")
    assert postfix.ports == (DeclaredPort(25, True, "containerPort: 25, hostPort: 25"),
                             DeclaredPort(587, False, "containerPort: 587"))  # UDP 514 is no TCP listener
    assert (postfix.user, postfix.workdir) == ("1001:1001", "/opt/postfix")  # the pod's securityContext
    init = _specs(str(HELM))[0]["StatefulSet/release-mailstack#volume-permissions"]
    assert init.user == "0:1001"  # the container's runAsUser over the pod's, the pod's group kept


@pytest.mark.parametrize(("text", "env", "out"), [
    ("$(A)-$(B)", {"A": "1"}, "1-$(B)"),
    ("$$(A)", {"A": "1"}, "$(A)"),
    ("$$$(A)", {"A": "1"}, "$1"),
    ("$A $(A", {"A": "1"}, "$A $(A"),
])
def test_dollar_paren_expansion(text, env, out):
    assert expand(text, env) == out


def test_kind_list_is_unwrapped():
    specs, notes = _specs(str(DATA / "helm" / "kubectl-list.yaml"))
    assert list(specs) == ["Deployment/relay#relay"]
    assert specs["Deployment/relay#relay"].image.startswith("example/relay@sha256:")
    assert any("List of 2 item(s), each read as an object" in n for n in notes)
    assert any("Service/relay" in n for n in notes)


def test_a_directory_and_stdin():
    specs, _ = _specs(str(DATA / "helm"))
    assert len(specs) == 6  # kubectl-list.yaml then release.yaml
    stdin, _ = _specs("-", stdin=io.StringIO(HELM.read_text()))
    assert list(stdin) == list(_specs(str(HELM))[0])
    assert all(s.source is None for s in stdin.values())


BAD = [
    ("bad-image.yaml", None, "bad-image.yaml:16: document 2 (Deployment/web): "
     "spec.template.spec.containers[1].image: expected text, got nothing"),
    (None, "kind: Deployment\nmetadata: {name: x}\nspec: {template: {spec: {containers: web}}}\n",
     "document 1 (Deployment/x): spec.template.spec.containers: expected a non-empty list of containers"),
    (None, "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: i\n    env:\n"
     "    - name: N\n      value: 3\n", "document 1 (Pod/p): spec.containers[0].env[0].value: expected a string, "
     "got int (quote it)"),
    (None, "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: i\n    ports:\n"
     "    - containerPort: smtp\n", "spec.containers[0].ports[0].containerPort: expected a port number"),
    (None, "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: i\n    args: [1]\n",
     "spec.containers[0].args[0]: expected a string, got int (quote it)"),
    (None, "kind: CronJob\nmetadata: {name: c}\nspec: {jobTemplate: {spec: {}}}\n",
     "document 1 (CronJob/c): spec.jobTemplate.spec.template: missing or not a mapping"),
    (None, "kind: Job\nspec: {}\n", "document 1: metadata.name: missing: a workload needs a name"),
    (None, "---\napiVersion: v1\n---\n",
     "m.yaml:2: document 1: kind: missing (every Kubernetes object names its kind)"),
    (None, "- a\n- b\n", "document 1: (document): expected a Kubernetes object (a mapping), got list"),
    (None, "kind: Pod\nmetadata: {name: p}\nspec:\n  securityContext: {runAsUser: root}\n  containers:\n"
     "  - {name: a, image: i}\n", "spec.containers[0].securityContext.runAsUser: expected a user or group id"),
    (None, "kind: Service\nmetadata: {name: s}\n", "no workload (Pod, Deployment"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD)
def test_malformed_manifests_name_document_and_path(name, text, message, tmp_path):
    path = DATA / name if name else tmp_path / "m.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(WorkloadError) as err:
        load_k8s(str(path))
    assert message in str(err.value)
    assert main(["scan", "--k8s", str(path), "-q"]) == 2  # the CLI: exit 2, before any engine is asked


def test_malformed_manifest_is_exit_2_before_any_engine(tmp_path, capsys):
    code = main(["scan", "--k8s", str(DATA / "bad-image.yaml"), "--json", str(tmp_path / "r.json")])
    assert code == 2
    assert "spec.template.spec.containers[1].image" in (tmp_path / "r.json").read_text()
    assert "spec.template.spec.containers[1].image" in capsys.readouterr().err
