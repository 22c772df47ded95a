"""The NetworkPolicies the operator renders (operator/build_netpol.c), as the real API server
validates and stores them: who may reach each worker and Valkey, and whom each may call; the
spec's namespaces; the switch; drift. (No CNI runs here, so nothing enforces them: their
effect is read from the stored objects.)"""
from harness import wait_until
from kubekit import condition, data_namespace
from test_reconcile import NAME, create_sample, reconciled

POLICIES = ["api", "bridge", "writers", "consumer", "valkey"]


def policies(kube, ns):
    """The pipeline's policies: the workers' in its namespace, Valkey's in the data namespace."""
    found = kube.owned("NetworkPolicy", ns, NAME) + kube.owned("NetworkPolicy", data_namespace(ns), NAME)
    return {p["metadata"]["name"][len(NAME) + 1:]: p for p in found}


def peers(rule, side):
    """Each peer of a rule as (namespace or None, pod labels or None)."""
    out = []
    for peer in rule.get(side, []):
        ns = (peer.get("namespaceSelector") or {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
        pods = (peer.get("podSelector") or {}).get("matchLabels")
        out.append((ns, pods and pods.get("app.kubernetes.io/name")))
    return out


def rules(policy, side):
    """{port: [peers]} of a policy's ingress ("from") or egress ("to") rules."""
    key, peer_key = ("ingress", "from") if side == "in" else ("egress", "to")
    out = {}
    for r in policy["spec"].get(key, []):
        for p in r.get("ports", []):
            out.setdefault((p["port"], p["protocol"]), []).extend(peers(r, peer_key) or [("anywhere", None)])
    return out


def test_policies_are_stored_as_rendered(kube, ns, operator):
    operator()
    create_sample(kube, ns)
    wait_until(lambda: reconciled(kube, ns) and len(policies(kube, ns)) == 5, 60,
               what="the five NetworkPolicies")
    pol = policies(kube, ns)
    assert sorted(pol) == sorted(POLICIES)
    for name, app in (("api", "api"), ("bridge", "bridge"), ("writers", "writer"), ("consumer", "consumer"),
                      ("valkey", "valkey")):
        sel = pol[name]["spec"]["podSelector"]["matchLabels"]
        assert sel == {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": NAME}, sel
        # They select exactly the pods of the Deployment (or the VMs' pods).
        if app != "valkey":
            deploy = kube.get(kube.path("Deployment", ns, f"{NAME}-{'writer-a' if app == 'writer' else app}"))
            labels = deploy["spec"]["template"]["metadata"]["labels"]
            assert all(labels[k] == v for k, v in sel.items())
    dns = {(53, "UDP"): [("anywhere", None)], (53, "TCP"): [("anywhere", None)]}
    assert rules(pol["api"], "in") == {(8080, "TCP"): [("ingress-nginx", None), ("monitoring", None)]}
    # The api also pulls the catalog (the sample's spec.catalog.artifact, 10.128.0.5:5000/...).
    assert rules(pol["api"], "out") == {**dns, (8081, "TCP"): [(None, "bridge")], (5000, "TCP"): [(None, None)]}
    assert pol["api"]["spec"]["egress"][2]["to"] == [{"ipBlock": {"cidr": "10.128.0.5/32"}}]
    assert rules(pol["bridge"], "in") == {(8081, "TCP"): [(None, "api"), ("monitoring", None)]}
    assert rules(pol["bridge"], "out") == {**dns, (50051, "TCP"): [(None, "writer")]}
    assert rules(pol["writers"], "in") == {(50051, "TCP"): [(None, "bridge")], (9091, "TCP"): [("monitoring", None)]}
    assert rules(pol["writers"], "out") == {**dns, (9092, "TCP"): [(None, None)]}  # Strimzi's pods
    assert pol["writers"]["spec"]["egress"][1]["to"][0]["podSelector"]["matchLabels"] == \
        {"strimzi.io/cluster": NAME, "strimzi.io/kind": "Kafka"}
    assert rules(pol["consumer"], "in") == {(9092, "TCP"): [("monitoring", None)]}
    assert rules(pol["consumer"], "out") == {**dns, (9092, "TCP"): [(None, None)],
                                            (6379, "TCP"): [(data_namespace(ns), "valkey")]}
    assert rules(pol["valkey"], "in") == {(6379, "TCP"): [(ns, "consumer"), ("monitoring", "grafana"), (None, "valkey")]}
    assert pol["valkey"]["spec"]["policyTypes"] == ["Ingress"]   # the VMs fetch packages
    # Valkey's lives with the VMs: labelled with the pipeline, no owner reference across namespaces.
    assert pol["valkey"]["metadata"]["namespace"] == data_namespace(ns)
    assert pol["valkey"]["metadata"]["labels"]["sales.blackfriday.dev/pipeline-namespace"] == ns
    assert "ownerReferences" not in pol["valkey"]["metadata"]
    for name in ("api", "bridge", "writers", "consumer"):
        assert pol[name]["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_spec_namespaces_switch_and_drift(kube, ns, operator):
    operator()
    create_sample(kube, ns)
    wait_until(lambda: reconciled(kube, ns) and len(policies(kube, ns)) == 5, 60, what="the policies")
    kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"networkPolicies": {
        "ingressNamespace": "traefik", "monitoringNamespace": "observability"}}})
    wait_until(lambda: reconciled(kube, ns), 60, what="the new generation to be reconciled")
    pol = policies(kube, ns)
    assert rules(pol["api"], "in") == {(8080, "TCP"): [("traefik", None), ("observability", None)]}
    assert rules(pol["valkey"], "in")[(6379, "TCP")][1] == ("observability", "grafana")
    # A deleted policy comes back (the operator watches NetworkPolicies).
    kube.delete(kube.path("NetworkPolicy", ns, f"{NAME}-bridge"))
    wait_until(lambda: "bridge" in policies(kube, ns), 60, what="the bridge's policy to come back")
    kube.delete(kube.path("NetworkPolicy", data_namespace(ns), f"{NAME}-valkey"))
    wait_until(lambda: "valkey" in policies(kube, ns), 60, what="Valkey's policy to come back")
    # Off: all go; on again: all come back.
    kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"networkPolicies": {"enabled": False}}})
    wait_until(lambda: reconciled(kube, ns) and not policies(kube, ns), 60, what="the policies to go")
    sp = reconciled(kube, ns)
    assert (condition(sp, "Degraded") or {}).get("status") != "True"
    kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"networkPolicies": {"enabled": True}}})
    wait_until(lambda: len(policies(kube, ns)) == 5, 60, what="the policies to come back")


def test_invalid_namespace_is_refused(kube, ns):
    from kubekit import ApiError, sample_pipeline
    sp = sample_pipeline(ns)
    sp["spec"]["networkPolicies"] = {"ingressNamespace": "Not_A_Namespace"}
    try:
        kube.create(kube.sp_path(ns), sp, dry_run=True)
    except ApiError as e:
        assert e.status == 422 and "spec.networkPolicies.ingressNamespace" in e.message, e.message
    else:
        raise AssertionError("an invalid namespace name was accepted")
