"""The install's RBAC used for real: the operator authenticates as its ServiceAccount (a token
from the TokenRequest API in a token kubeconfig) and reconciles with exactly the install's rules,
namespaced (the default, manifests/) and cluster-wide (manifests/cluster-wide/); with any one
rule removed it fails visibly. The control plane runs OwnerReferencesPermissionEnforcement
(scripts/cluster.sh), so the finalizers rule is checked too."""
import base64
import uuid

import pytest
import yaml

from harness import ROOT, wait_until
from kubekit import condition, lease_holder
from test_reconcile import NAME, all_objects_exist, create_sample, reconciled

MANIFESTS = ROOT / "manifests"
SA_NS, SA_NAME = "salespipeline-system", "salespipeline-operator"
SA_USER = f"system:serviceaccount:{SA_NS}:{SA_NAME}"
LEASE = "salespipeline-operator"   # the name the Lease Role allows
RBAC_DOCS = [d for d in yaml.safe_load_all((MANIFESTS / "base" / "rbac.yaml").read_text()) if d]
RULES = next(d for d in RBAC_DOCS if d["kind"] == "ClusterRole")["rules"]
LEASE_RULES = next(d for d in RBAC_DOCS if d["kind"] == "Role")["rules"]
CLUSTER_BINDING = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/salespipeline-operator"


def rbac_path(kind, ns=None, name=None):
    plural = {"Role": "roles", "RoleBinding": "rolebindings", "ClusterRole": "clusterroles"}[kind]
    base = "/apis/rbac.authorization.k8s.io/v1" + (f"/namespaces/{ns}" if ns else "") + f"/{plural}"
    return base + (f"/{name}" if name else "")


def sa_kubeconfig(kube, path):
    token = kube.kubectl("create", "token", SA_NAME, "-n", SA_NS, "--duration=1h").stdout.strip()
    ca = base64.b64encode((kube.state / "pki" / "ca.crt").read_bytes()).decode()
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "{kube.server}", certificate-authority-data: {ca}}}}}]
users: [{{name: sa, user: {{token: "{token}"}}}}]
contexts: [{{name: sa, context: {{cluster: c, user: sa}}}}]
current-context: sa
""")
    return path


def can(kube, ns, *args):
    return kube.kubectl("auth", "can-i", *args, "-n", ns, f"--as={SA_USER}", check=False).stdout.strip()


def bind(kube, ns, role_kind, role_name, name=SA_NAME):
    kube.create(rbac_path("RoleBinding", ns), {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": SA_NAME, "namespace": SA_NS}]})


@pytest.fixture(scope="module", autouse=True)
def installed(kube):
    """The default install (its ServiceAccount, rules, Lease Role), as a user applies it."""
    kube.kubectl("apply", "-k", str(MANIFESTS))


@pytest.fixture
def other_ns(kube):
    """A second namespace, which the namespaced operator must leave alone."""
    name = f"sp-other-{uuid.uuid4().hex[:8]}"
    kube.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": name}})
    yield name
    for sp in kube.get(kube.sp_path(name))["items"]:
        kube.delete(kube.sp_path(name, sp["metadata"]["name"]))
    kube.delete(f"/api/v1/namespaces/{name}")


def test_namespaced_install_is_enough(kube, ns, other_ns, operator, tmp_path):
    """kubectl apply -k manifests/ (the default), the RoleBinding moved to this test's namespace
    as the docs say for another namespace, WATCH_NAMESPACE set: reconciles with exactly that."""
    kube.delete(CLUSTER_BINDING)   # left by nothing, but a namespaced test must not have it
    binding = next(d for d in yaml.safe_load_all((MANIFESTS / "namespaced.yaml").read_text())
                   if d and d["kind"] == "RoleBinding")
    binding["metadata"]["namespace"] = ns
    kube.create(rbac_path("RoleBinding", ns), binding)
    op = operator("--namespace", ns, "--lease-name", LEASE, lease_ns=SA_NS,
                  kubeconfig=sa_kubeconfig(kube, tmp_path / "sa.kubeconfig"))
    create_sample(kube, ns)
    create_sample(kube, other_ns)
    wait_until(lambda: all_objects_exist(kube, ns) and reconciled(kube, ns), 90,
               what="reconcile as the ServiceAccount")
    logs = op.logs()
    assert "forbidden" not in logs.lower(), logs[-3000:]
    assert lease_holder(kube, SA_NS, LEASE)
    # The other namespace is neither watched nor reachable.
    assert not reconciled(kube, other_ns) and not all_objects_exist(kube, other_ns)
    assert can(kube, ns, "get", "secrets") == "yes" and can(kube, other_ns, "get", "secrets") == "no"
    assert can(kube, ns, "delete", "persistentvolumeclaims") == "yes"
    assert can(kube, other_ns, "delete", "persistentvolumeclaims") == "no"
    assert can(kube, ns, "get", "pods") == "no" and can(kube, ns, "create", "pods/exec") == "no"
    assert can(kube, ns, "update", "virtualmachines.kubevirt.io/status") == "no"
    # The install's own Deployment passes the restricted Pod Security admission of its namespace.
    wait_until(lambda: len(kube.get(kube.path("Pod", SA_NS) +
                                    "?labelSelector=app.kubernetes.io/name%3Dsalespipeline-operator")["items"]) == 2,
               90, interval=0.5, what="the operator Deployment's two pods")


def test_cluster_wide_install_is_enough(kube, ns, operator, tmp_path):
    kube.kubectl("apply", "-k", str(MANIFESTS / "cluster-wide"))
    try:
        op = operator("--lease-name", LEASE, lease_ns=SA_NS,
                      kubeconfig=sa_kubeconfig(kube, tmp_path / "sa.kubeconfig"))
        create_sample(kube, ns)
        wait_until(lambda: all_objects_exist(kube, ns) and reconciled(kube, ns), 90,
                   what="reconcile as the ServiceAccount, cluster-wide")
        assert "forbidden" not in op.logs().lower(), op.logs()[-3000:]
        assert can(kube, ns, "get", "secrets") == "yes" and can(kube, "default", "get", "secrets") == "yes"
    finally:
        kube.delete(CLUSTER_BINDING)   # later tests are namespaced


def rule_id(rule):
    return "+".join(r.replace("/", "-") for r in rule["resources"])


# Each rule removed whole; and for Secrets, the most sensitive kind, each verb alone.
SECRETS = next(i for i, r in enumerate(RULES) if r["resources"] == ["secrets"])
CASES = [("rules", i, r) for i, r in enumerate(RULES)] + \
        [("lease", i, r) for i, r in enumerate(LEASE_RULES)] + \
        [("verb", SECRETS, dict(RULES[SECRETS], verbs=[v])) for v in RULES[SECRETS]["verbs"]]


def without(rules, index, verbs):
    """`rules` without the verbs `verbs` of rule `index` (the rule goes when none is left)."""
    out = [dict(r) for r in rules]
    out[index]["verbs"] = [v for v in out[index]["verbs"] if v not in verbs]
    return [r for r in out if r["verbs"]]


@pytest.mark.parametrize("where,index,rule", CASES, ids=[f"{w}-{rule_id(r)}-{','.join(r['verbs'])}"
                                                         for w, _, r in CASES])
def test_one_rule_fewer_fails_visibly(kube, ns, operator, tmp_path, where, index, rule):
    """The same install in this namespace with one rule (or one verb) removed: the operator says
    which."""
    rules = without(RULES, index, rule["verbs"]) if where != "lease" else RULES
    lease_rules = without(LEASE_RULES, index, rule["verbs"]) if where == "lease" else LEASE_RULES
    role = f"sp-rbac-minus-{uuid.uuid4().hex[:8]}"
    kube.create(rbac_path("ClusterRole"), {"apiVersion": "rbac.authorization.k8s.io/v1",
                                           "kind": "ClusterRole", "metadata": {"name": role},
                                           "rules": rules})
    try:
        bind(kube, ns, "ClusterRole", role)
        kube.create(rbac_path("Role", ns), {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                                            "metadata": {"name": "lease"}, "rules": lease_rules})
        bind(kube, ns, "Role", "lease", name="lease")
        kc = sa_kubeconfig(kube, tmp_path / "sa.kubeconfig")
        op = operator("--namespace", ns, "--lease-name", LEASE, lease_ns=ns, kubeconfig=kc, ready=False)
        create_sample(kube, ns)
        if rule["verbs"] == ["delete"]:
            # Delete is for objects a changed spec no longer wants: switch to the user's own
            # password Secret, so the operator's goes.
            wait_until(lambda: reconciled(kube, ns), 60, what="the first reconcile")
            kube.create(kube.path("Secret", ns), {
                "apiVersion": "v1", "kind": "Secret", "stringData": {"password": "users-own"},
                "metadata": {"name": "mine", "annotations": {"sales.blackfriday.dev/operator-may-read": "true"}}})
            kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"valkey": {"passwordSecret": "mine"}}})
        # The API server's words for each verb and resource of the rule, in the operator's log.
        denied = [f'cannot {v} resource "{r}"' for v in rule["verbs"] for r in rule["resources"]]
        if rule["resources"] == ["salespipelines/finalizers"]:
            denied.append("blockOwnerDeletion")
        def reported():
            text = op.logs().replace('\\"', '"')   # the messages as the JSON lines hold them
            return next((d for d in denied if d in text), None)
        try:
            found = wait_until(reported, 60, interval=0.2, what=f"the operator to report {denied[0]}")
        except TimeoutError as e:
            raise AssertionError(f"{e}\n{op.logs()[-4000:]}") from None
        print(f"without {rule['resources']} {rule['verbs']}: {found}")
        # Where the reconcile itself needs what was removed (not only the watch, which the log
        # reports) and the operator can still write its status, the pipeline says Degraded too.
        if where != "lease" and rule["resources"][0] not in ("salespipelines", "salespipelines/status",
                                                              "events") and rule["verbs"] != ["watch"]:
            def degraded():
                sp = kube.get(kube.sp_path(ns, NAME))
                c = condition(sp, "Degraded")
                return c if c and c["status"] == "True" and "forbidden" in c["message"] else None
            c = wait_until(degraded, 60, what="status Degraded naming the refusal")
            assert "forbidden" in c["message"]
    finally:
        kube.delete(rbac_path("ClusterRole", name=role))
