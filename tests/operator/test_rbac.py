"""The install's RBAC used for real: the operator authenticates as its ServiceAccount (a token
from the TokenRequest API in a token kubeconfig) and reconciles with exactly the install's rules,
namespaced (the default, manifests/: the watched namespace and its data namespace) and
cluster-wide (manifests/cluster-wide/); with any one rule removed it fails visibly. The control
plane runs OwnerReferencesPermissionEnforcement (scripts/cluster.sh), so the finalizers rule is
checked too."""
import base64
import uuid

import pytest
import yaml

from harness import ROOT, wait_until
from kubekit import condition, data_namespace, lease_holder
from test_reconcile import NAME, all_objects_exist, create_sample, reconciled

MANIFESTS = ROOT / "manifests"
SA_NS, SA_NAME = "salespipeline-system", "salespipeline-operator"
SA_USER = f"system:serviceaccount:{SA_NS}:{SA_NAME}"
LEASE = "salespipeline-operator"   # the name the Lease Role allows
RBAC_DOCS = [d for d in yaml.safe_load_all((MANIFESTS / "base" / "rbac.yaml").read_text()) if d]
RULES = next(d for d in RBAC_DOCS if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "salespipeline-operator")["rules"]
NAMESPACE_RULES = next(d for d in RBAC_DOCS if d["metadata"]["name"] == "salespipeline-operator-namespaces")["rules"]
LEASE_RULES = next(d for d in RBAC_DOCS if d["kind"] == "Role")["rules"]
NAMESPACED_DOCS = [d for d in yaml.safe_load_all((MANIFESTS / "namespaced.yaml").read_text()) if d]
# The namespaced install's one cluster-scoped rule: reading its data namespace.
DATA_NS_RULES = next(d for d in NAMESPACED_DOCS if d["kind"] == "ClusterRole")["rules"]
CRB = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
CLUSTER_BINDINGS = [f"{CRB}/salespipeline-operator", f"{CRB}/salespipeline-operator-namespaces"]


def rbac_path(kind, ns=None, name=None):
    plural = {"Role": "roles", "RoleBinding": "rolebindings", "ClusterRole": "clusterroles",
              "ClusterRoleBinding": "clusterrolebindings"}[kind]
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
    """A RoleBinding in `ns`, or a ClusterRoleBinding when ns is None."""
    kind = "RoleBinding" if ns else "ClusterRoleBinding"
    kube.create(rbac_path(kind, ns), {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
        "metadata": {"name": name, **({"namespace": ns} if ns else {})},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": SA_NAME, "namespace": SA_NS}]})


def cluster_role(kube, name, rules):
    kube.create(rbac_path("ClusterRole"), {"apiVersion": "rbac.authorization.k8s.io/v1",
                                           "kind": "ClusterRole", "metadata": {"name": name},
                                           "rules": rules})


def make_data_namespace(kube, ns):
    """The data namespace a namespaced install makes for `ns` (privileged, for KubeVirt)."""
    kube.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": data_namespace(ns), "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}})


@pytest.fixture
def temporary(kube):
    """Cluster-scoped objects a test makes (paths), deleted afterwards, and data namespaces."""
    made = []
    yield made
    for path in reversed(made):
        kube.delete(path)


def namespaced_install(kube, ns, temporary, rules=RULES, data_ns_rules=DATA_NS_RULES):
    """manifests/namespaced.yaml for `ns` instead of blackfriday: RoleBindings of `rules` in ns
    and its data namespace, `get` on that namespace alone."""
    make_data_namespace(kube, ns)
    temporary.append(f"/api/v1/namespaces/{data_namespace(ns)}")
    tag = uuid.uuid4().hex[:8]
    role = SA_NAME
    if rules is not RULES:
        role = f"sp-rbac-minus-{tag}"
        cluster_role(kube, role, rules)
        temporary.append(rbac_path("ClusterRole", name=role))
    for where in (ns, data_namespace(ns)):
        bind(kube, where, "ClusterRole", role)
    data_role = f"sp-rbac-data-ns-{tag}"
    cluster_role(kube, data_role, [dict(r, resourceNames=[data_namespace(ns)]) for r in data_ns_rules])
    temporary.append(rbac_path("ClusterRole", name=data_role))
    bind(kube, None, "ClusterRole", data_role, name=data_role)
    temporary.append(rbac_path("ClusterRoleBinding", name=data_role))


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


def test_namespaced_install_is_enough(kube, ns, other_ns, operator, tmp_path, temporary):
    """kubectl apply -k manifests/ (the default), its bindings moved to this test's namespace and
    its data namespace as the docs say for another namespace, WATCH_NAMESPACE set: reconciles
    with exactly that, and cleans up on deletion without touching any namespace."""
    for path in CLUSTER_BINDINGS:   # left by nothing, but a namespaced test must not have them
        kube.delete(path)
    namespaced_install(kube, ns, temporary)
    op = operator("--namespace", ns, "--lease-name", LEASE, lease_ns=SA_NS,
                  kubeconfig=sa_kubeconfig(kube, tmp_path / "sa.kubeconfig"))
    create_sample(kube, ns)
    create_sample(kube, other_ns)
    wait_until(lambda: all_objects_exist(kube, ns) and reconciled(kube, ns), 90,
               what="reconcile as the ServiceAccount")
    dns = data_namespace(ns)
    assert kube.get_or_none(kube.path("VirtualMachine", dns, f"{NAME}-valkey-primary"))
    logs = op.logs()
    assert "forbidden" not in logs.lower(), logs[-3000:]
    assert lease_holder(kube, SA_NS, LEASE)
    # The other namespace is neither watched nor reachable.
    assert not reconciled(kube, other_ns) and not all_objects_exist(kube, other_ns)
    assert can(kube, ns, "get", "secrets") == "yes" and can(kube, other_ns, "get", "secrets") == "no"
    assert can(kube, dns, "patch", "virtualmachines.kubevirt.io") == "yes"
    assert can(kube, ns, "delete", "persistentvolumeclaims") == "yes"
    assert can(kube, other_ns, "delete", "persistentvolumeclaims") == "no"
    assert can(kube, ns, "get", "pods") == "no" and can(kube, ns, "create", "pods/exec") == "no"
    assert can(kube, ns, "update", "virtualmachines.kubevirt.io/status") == "no"
    assert can(kube, ns, "create", "namespaces") == "no" and can(kube, ns, "list", "namespaces") == "no"
    assert can(kube, ns, "get", f"namespaces/{dns}") == "yes"
    assert can(kube, ns, "get", f"namespaces/{other_ns}") == "no"
    # Drift in the data namespace is seen (a namespaced operator watches it too).
    kube.delete(kube.path("VirtualMachine", dns, f"{NAME}-valkey-primary"))
    wait_until(lambda: kube.get_or_none(kube.path("VirtualMachine", dns, f"{NAME}-valkey-primary")), 60,
               what="the deleted VM to come back")
    # Deleting the pipeline: the finalizer empties the data namespace of its objects; the
    # namespace itself is the install's and stays.
    kube.delete(kube.sp_path(ns, NAME))
    wait_until(lambda: not kube.get_or_none(kube.sp_path(ns, NAME)), 90, what="the pipeline to go")
    assert not kube.owned("VirtualMachine", dns, NAME) and kube.get_or_none(f"/api/v1/namespaces/{dns}")
    assert "forbidden" not in op.logs().lower(), op.logs()[-3000:]
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
        # The Valkey VMs' namespace: made by the operator (privileged), deleted when empty.
        assert can(kube, ns, "create", "namespaces") == "yes" and can(kube, ns, "delete", "namespaces") == "yes"
        assert kube.get_or_none(f"/api/v1/namespaces/{data_namespace(ns)}")["metadata"]["labels"][
            "pod-security.kubernetes.io/enforce"] == "privileged"
        kube.delete(kube.sp_path(ns, NAME))
        wait_until(lambda: not kube.get_or_none(f"/api/v1/namespaces/{data_namespace(ns)}") or
                   kube.get(f"/api/v1/namespaces/{data_namespace(ns)}")["metadata"].get("deletionTimestamp"),
                   90, what="the data namespace it made to be deleted")
    finally:
        for path in CLUSTER_BINDINGS:   # later tests are namespaced
            kube.delete(path)


def rule_id(rule):
    return "+".join(r.replace("/", "-") for r in rule["resources"])


# Each rule removed whole (namespaced install: the rules, the data namespace's `get`, the Lease;
# cluster-wide: the namespaces rule); and for Secrets, the most sensitive kind, each verb alone.
SECRETS = next(i for i, r in enumerate(RULES) if r["resources"] == ["secrets"])
CASES = [("rules", i, r) for i, r in enumerate(RULES)] + \
        [("data-ns", i, r) for i, r in enumerate(DATA_NS_RULES)] + \
        [("lease", i, r) for i, r in enumerate(LEASE_RULES)] + \
        [("cluster-namespaces", i, r) for i, r in enumerate(NAMESPACE_RULES)] + \
        [("verb", SECRETS, dict(RULES[SECRETS], verbs=[v])) for v in RULES[SECRETS]["verbs"]]


def without(rules, index, verbs):
    """`rules` without the verbs `verbs` of rule `index` (the rule goes when none is left)."""
    out = [dict(r) for r in rules]
    out[index]["verbs"] = [v for v in out[index]["verbs"] if v not in verbs]
    return [r for r in out if r["verbs"]]


@pytest.mark.parametrize("where,index,rule", CASES, ids=[f"{w}-{rule_id(r)}-{','.join(r['verbs'])}"
                                                         for w, _, r in CASES])
def test_one_rule_fewer_fails_visibly(kube, ns, operator, tmp_path, temporary, where, index, rule):
    """The same install in this namespace with one rule (or one verb) removed: the operator says
    which."""
    rules = without(RULES, index, rule["verbs"]) if where in ("rules", "verb") else RULES
    lease_rules = without(LEASE_RULES, index, rule["verbs"]) if where == "lease" else LEASE_RULES
    args = ("--lease-name", LEASE)
    if where == "cluster-namespaces":
        # Cluster-wide: every rule through a ClusterRoleBinding, the namespaces rule minus one.
        role = f"sp-rbac-minus-{uuid.uuid4().hex[:8]}"
        cluster_role(kube, role, RULES + without(NAMESPACE_RULES, index, rule["verbs"]))
        temporary.append(rbac_path("ClusterRole", name=role))
        bind(kube, None, "ClusterRole", role, name=role)
        temporary.append(rbac_path("ClusterRoleBinding", name=role))
    else:
        data_rules = without(DATA_NS_RULES, index, rule["verbs"]) if where == "data-ns" else DATA_NS_RULES
        namespaced_install(kube, ns, temporary, rules, data_rules)
        args += ("--namespace", ns)
    kube.create(rbac_path("Role", ns), {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                                        "metadata": {"name": "lease"}, "rules": lease_rules})
    bind(kube, ns, "Role", "lease", name="lease")
    kc = sa_kubeconfig(kube, tmp_path / "sa.kubeconfig")
    op = operator(*args, lease_ns=ns, kubeconfig=kc, ready=False)
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
    print(f"without {where} {rule['resources']} {rule['verbs']}: {found}")
    # Where the reconcile itself needs what was removed (not only the watch, which the log
    # reports) and the operator can still write its status, the pipeline says Degraded too.
    if where in ("rules", "verb", "data-ns", "cluster-namespaces") and \
            rule["resources"][0] not in ("salespipelines", "salespipelines/status", "events") and \
            rule["verbs"] != ["watch"]:
        def degraded():
            sp = kube.get(kube.sp_path(ns, NAME))
            c = condition(sp, "Degraded")
            return c if c and c["status"] == "True" and "forbidden" in c["message"] else None
        c = wait_until(degraded, 60, what="status Degraded naming the refusal")
        assert "forbidden" in c["message"]
