#!/usr/bin/env python3
"""Assertions on charts/vault-injector rendered by tests/chart/test.sh.

Usage: check.py CASE RENDERED.yaml [DEFAULTS.yaml]

CASE is one of the matrix cases of test.sh; the rendered set is parsed as YAML and checked
against what the stock vault-helm 0.34.1 chart renders for the same values (object names,
labels, container args, the AGENT_INJECT_* env in the stock order, RBAC, webhook), plus this
chart's additions. Release `vault` in namespace `vault`, so <fullname> is `vault`.
"""
import sys

import yaml

FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)


def eq(got, want, what):
    check(got == want, f"{what}: got {got!r}, want {want!r}")


P = "vault-agent-injector"  # <fullname>-agent-injector
NS = "vault"
SELECTOR = {"app.kubernetes.io/name": P, "app.kubernetes.io/instance": "vault", "component": "webhook"}
LABELS = {"app.kubernetes.io/name": P, "app.kubernetes.io/instance": "vault", "app.kubernetes.io/managed-by": "Helm"}
HOSTS = f"{P}-svc,{P}-svc.{NS},{P}-svc.{NS}.svc"
MWC_RULE = {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["mutatingwebhookconfigurations"],
            "verbs": ["get", "list", "watch", "patch"]}
NODES_RULE = {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}
ELECTOR_RULES = [
    {"apiGroups": [""], "resources": ["secrets", "configmaps"], "verbs": ["create", "get", "watch", "list", "update"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["delete"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch", "delete"]},
]
LEASE_RULE = {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}
MATCH_CONDITIONS = [{
    "name": "has-agent-inject-annotation",
    "expression": "has(object.metadata.annotations) && ('vault.hashicorp.com/agent-inject' in object.metadata.annotations || 'openbao.org/agent-inject' in object.metadata.annotations)",
}]
DEFAULT_OBJECT_SELECTOR = {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "NotIn", "values": [P]}]}
FIELD = lambda path: {"fieldRef": {"fieldPath": path}}  # noqa: E731


def stock_env(**over):
    """The env of vault-helm's injector Deployment for the default values, in its order."""
    env = [
        ("AGENT_INJECT_LISTEN", ":8080"),
        ("AGENT_INJECT_LOG_LEVEL", "info"),
        ("AGENT_INJECT_VAULT_ADDR", f"http://vault.{NS}.svc:8200"),
        ("AGENT_INJECT_VAULT_AUTH_PATH", "auth/kubernetes"),
        ("AGENT_INJECT_VAULT_IMAGE", "hashicorp/vault:2.0.4"),
        ("AGENT_INJECT_TLS_AUTO", f"{P}-cfg"),
        ("AGENT_INJECT_TLS_AUTO_HOSTS", HOSTS),
        ("AGENT_INJECT_LOG_FORMAT", "standard"),
        ("AGENT_INJECT_REVOKE_ON_SHUTDOWN", "false"),
        ("AGENT_INJECT_CPU_REQUEST", "250m"),
        ("AGENT_INJECT_CPU_LIMIT", "500m"),
        ("AGENT_INJECT_MEM_REQUEST", "64Mi"),
        ("AGENT_INJECT_MEM_LIMIT", "128Mi"),
        ("AGENT_INJECT_DEFAULT_TEMPLATE", "map"),
        ("AGENT_INJECT_TEMPLATE_CONFIG_EXIT_ON_RETRY_FAILURE", "true"),
        ("POD_NAME", FIELD("metadata.name")),
    ]
    return [(k, over.get(k, v)) for k, v in env]


def insert_after(env, after, items):
    i = [k for k, _ in env].index(after) + 1
    return env[:i] + items + env[i:]


ELECTOR_ENV = [("AGENT_INJECT_USE_LEADER_ELECTOR", "true"), ("NAMESPACE", FIELD("metadata.namespace"))]


# vault-helm's server ServiceAccount and its auth-delegator binding, which vault-helm also
# creates for an external Vault (server.serviceAccount.*, server.authDelegator.enabled).
SERVER_LABELS = {"app.kubernetes.io/name": "vault", "app.kubernetes.io/instance": "vault",
                 "app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "vault-injector-0.1.0"}
SERVER_KINDS = {("ServiceAccount", "vault"), ("ClusterRoleBinding", "vault-server-binding")}


def is_server_object(key, o):
    return o["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "vault"


def server_account(objs, sa="vault", created=True, bound=True, secret=False, annotations=None, extra_labels=None):
    """The server account objects, exactly: which exist, their names, labels, binding and Secret."""
    want = set()
    if created:
        want.add(("ServiceAccount", sa))
    if bound:
        want.add(("ClusterRoleBinding", "vault-server-binding"))
    if secret:
        want.add(("Secret", f"{sa}-token"))
    got = {key for key, o in objs.items() if is_server_object(key, o)}
    eq(sorted(got), sorted(want), "server account objects")
    for key in got:
        o = objs[key]
        labels = dict(SERVER_LABELS, **(extra_labels or {})) if key[0] == "ServiceAccount" else SERVER_LABELS
        eq(o["metadata"].get("labels"), labels, f"{key} labels")
        if key[0] != "ClusterRoleBinding":
            eq(o["metadata"].get("namespace"), NS, f"{key} namespace")
    if created:
        eq(objs[("ServiceAccount", sa)]["metadata"].get("annotations"), annotations, "server ServiceAccount annotations")
    if bound:
        crb = objs[("ClusterRoleBinding", "vault-server-binding")]
        eq(crb.get("roleRef"), {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                "name": "system:auth-delegator"}, "server binding roleRef")
        eq(crb.get("subjects"), [{"kind": "ServiceAccount", "name": sa, "namespace": NS}], "server binding subjects")
    if secret:
        s = objs[("Secret", f"{sa}-token")]
        eq(s.get("type"), "kubernetes.io/service-account-token", "token Secret type")
        eq(s["metadata"].get("annotations"), {"kubernetes.io/service-account.name": sa}, "token Secret annotations")


def load(path):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    objs = {}
    for d in docs:
        key = (d["kind"], d["metadata"]["name"])
        check(key not in objs, f"duplicate object {key}")
        objs[key] = d
    return objs


def env_pairs(container):
    out = []
    for e in container.get("env", []):
        out.append((e["name"], e["value"] if "value" in e else e.get("valueFrom")))
    return out


# injector.namespaceDefaults / injector.missedInjectionWatcher (beyond vault-helm).
WATCHER_RULES = [
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]


def common(objs, elector, lease=False, port=8080, watchers=False):
    want = {("ServiceAccount", P), ("ClusterRole", f"{P}-clusterrole"), ("ClusterRoleBinding", f"{P}-binding"),
            ("Service", f"{P}-svc"), ("Deployment", P), ("MutatingWebhookConfiguration", f"{P}-cfg")}
    if elector:
        want |= {("Role", f"{P}-leader-elector-role"), ("RoleBinding", f"{P}-leader-elector-binding"),
                 ("Secret", "vault-injector-certs")}
    for key in want:
        check(key in objs, f"missing {key}")
    for key, o in objs.items():
        if is_server_object(key, o):
            continue
        for k, v in LABELS.items():
            eq(o["metadata"].get("labels", {}).get(k), v, f"{key} label {k}")
        if key[0] not in ("ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration"):
            eq(o["metadata"].get("namespace"), NS, f"{key} namespace")
    if not elector:
        for k in ("Role", "RoleBinding", "Secret"):
            check(not any(key[0] == k and not is_server_object(key, o) for key, o in objs.items()),
                  f"unexpected {k} without the elector")

    cr = objs.get(("ClusterRole", f"{P}-clusterrole"), {})
    eq(cr.get("rules"), [MWC_RULE] + ([NODES_RULE] if elector else []) + (WATCHER_RULES if watchers else []),
       "ClusterRole rules")
    crb = objs.get(("ClusterRoleBinding", f"{P}-binding"), {})
    eq(crb.get("roleRef"), {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": f"{P}-clusterrole"},
       "ClusterRoleBinding roleRef")
    eq(crb.get("subjects"), [{"kind": "ServiceAccount", "name": P, "namespace": NS}], "ClusterRoleBinding subjects")
    if elector:
        role = objs.get(("Role", f"{P}-leader-elector-role"), {})
        eq(role.get("rules"), ELECTOR_RULES + ([LEASE_RULE] if lease else []), "leader-elector Role rules")
        rb = objs.get(("RoleBinding", f"{P}-leader-elector-binding"), {})
        eq(rb.get("roleRef", {}).get("name"), f"{P}-leader-elector-role", "RoleBinding roleRef")
        eq(rb.get("subjects"), [{"kind": "ServiceAccount", "name": P, "namespace": NS}], "RoleBinding subjects")
        check("data" not in objs.get(("Secret", "vault-injector-certs"), {}), "certs Secret must be empty")

    svc = objs.get(("Service", f"{P}-svc"), {})
    ports = svc.get("spec", {}).get("ports", [])
    eq(ports[:1], [{"name": "https", "port": 443, "targetPort": port}], "Service https port")
    eq(svc.get("spec", {}).get("selector"), SELECTOR, "Service selector")

    dep = objs.get(("Deployment", P), {})
    spec = dep.get("spec", {})
    eq(spec.get("selector"), {"matchLabels": SELECTOR}, "Deployment selector")
    tmpl = spec.get("template", {})
    for k, v in SELECTOR.items():
        eq(tmpl.get("metadata", {}).get("labels", {}).get(k), v, f"pod label {k}")
    pod = tmpl.get("spec", {})
    eq(pod.get("serviceAccountName"), P, "serviceAccountName")
    cs = pod.get("containers", [])
    eq([c["name"] for c in cs], ["sidecar-injector"], "containers")
    c = cs[0] if cs else {}
    eq(c.get("args"), ["agent-inject", "2>&1"], "args")
    check("command" not in c, "no command (the image's entrypoint runs)")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        eq(c.get(probe, {}).get("httpGet"), {"path": "/health/ready", "port": port, "scheme": "HTTPS"}, f"{probe} httpGet")
    eq(c.get("ports"), [{"name": "https", "containerPort": port, "protocol": "TCP"}], "container ports")

    mwc = objs.get(("MutatingWebhookConfiguration", f"{P}-cfg"), {})
    whs = mwc.get("webhooks", [])
    eq([w["name"] for w in whs], ["vault.hashicorp.com"], "webhooks")
    w = whs[0] if whs else {}
    eq(w.get("sideEffects"), "None", "sideEffects")
    eq(w.get("admissionReviewVersions"), ["v1", "v1beta1"], "admissionReviewVersions")
    eq(w.get("clientConfig", {}).get("service"), {"name": f"{P}-svc", "namespace": NS, "path": "/mutate"}, "clientConfig.service")
    eq(w.get("rules"), [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"],
                         "scope": "Namespaced"}], "webhook rules")
    check("reinvocationPolicy" not in w, "reinvocationPolicy is not set (stock)")
    return dep, pod, c, w


def stock_defaults_checks(objs, openshift=False, image="vault-injector:0.1.0", **env_over):
    dep, pod, c, w = common(objs, elector=False)
    eq(dep["spec"]["replicas"], 1, "replicas")
    env = stock_env(**env_over)
    if openshift:
        env = insert_after(env, "AGENT_INJECT_REVOKE_ON_SHUTDOWN", [("AGENT_INJECT_SET_SECURITY_CONTEXT", "false")])
    eq(env_pairs(c), env, "env")
    eq(c.get("image"), image, "image")
    eq(c.get("imagePullPolicy"), "IfNotPresent", "imagePullPolicy")
    if openshift:
        check("securityContext" not in pod, "no pod securityContext on OpenShift")
        check("securityContext" not in c, "no container securityContext on OpenShift")
        check("hostNetwork" not in pod, "no hostNetwork on OpenShift")
    else:
        eq(pod.get("securityContext"), {"runAsNonRoot": True, "runAsGroup": 1000, "runAsUser": 100, "fsGroup": 1000,
                                        "seccompProfile": {"type": "RuntimeDefault"}}, "pod securityContext")
        eq(c.get("securityContext"), {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                      "capabilities": {"drop": ["ALL"]}}, "container securityContext")
        eq(pod.get("hostNetwork"), False, "hostNetwork")
    eq(pod.get("affinity"), {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": SELECTOR}, "topologyKey": "kubernetes.io/hostname"}]}}, "affinity")
    for k in ("tolerations", "nodeSelector", "topologySpreadConstraints", "priorityClassName", "volumes",
              "imagePullSecrets"):
        check(k not in pod, f"pod {k} is not set by default")
    check("resources" not in c and "volumeMounts" not in c, "no resources/volumeMounts by default")
    check("strategy" not in dep["spec"], "no strategy by default")
    eq(c["livenessProbe"], {"httpGet": c["livenessProbe"]["httpGet"], "failureThreshold": 2, "initialDelaySeconds": 5,
                            "periodSeconds": 2, "successThreshold": 1, "timeoutSeconds": 5}, "livenessProbe")
    eq(c["startupProbe"]["failureThreshold"], 12, "startupProbe failureThreshold")
    eq(c["startupProbe"]["periodSeconds"], 5, "startupProbe periodSeconds")
    eq(w.get("failurePolicy"), "Ignore", "failurePolicy")
    eq(w.get("matchPolicy"), "Exact", "matchPolicy")
    eq(w.get("timeoutSeconds"), 30, "timeoutSeconds")
    eq(w.get("clientConfig", {}).get("caBundle"), "", "caBundle")
    check("namespaceSelector" not in w, "no namespaceSelector by default")
    eq(w.get("objectSelector"), DEFAULT_OBJECT_SELECTOR, "objectSelector")
    eq(w.get("matchConditions"), MATCH_CONDITIONS, "matchConditions")
    check("annotations" not in objs[("MutatingWebhookConfiguration", f"{P}-cfg")]["metadata"], "no webhook annotations")
    eq(len(objs[("Service", f"{P}-svc")]["spec"]["ports"]), 1, "one Service port")
    kinds = {k for k, _ in objs}
    for k in ("PodDisruptionBudget", "ServiceMonitor"):
        check(k not in kinds, f"no {k} by default")
    check(("NetworkPolicy" in kinds) == openshift, "NetworkPolicy only on OpenShift")


def case_defaults(objs, _):
    stock_defaults_checks(objs)
    server_account(objs)


def case_server_account(objs, _):
    # An external-Vault values file that names the account, annotates and labels it and asks
    # for its token Secret: vault-helm's objects, names and subjects.
    common(objs, elector=False)
    server_account(objs, sa="vault-auth", secret=True,
                   annotations={"example.com/role": "token-reviewer", "example.com/release": "vault"},
                   extra_labels={"team": "platform"})


def case_no_server_account(objs, _):
    common(objs, elector=False)
    server_account(objs, created=False, bound=False)


def case_existing_account(objs, _):
    # Not created, but named: only the binding, to that account.
    common(objs, elector=False)
    server_account(objs, sa="reviewer", created=False)


def case_vault_helm(objs, defaults):
    # A stock vault-helm values file: the same objects as our defaults, except the image.
    stock_defaults_checks(objs, image="hashicorp/vault-k8s:1.7.6")
    if defaults is not None:
        eq(sorted(objs), sorted(defaults), "same objects as the chart defaults")
        for key, o in objs.items():
            d = defaults.get(key)
            if key[0] == "Deployment" and d:
                o = yaml.safe_load(yaml.safe_dump(o))
                o["spec"]["template"]["spec"]["containers"][0]["image"] = d["spec"]["template"]["spec"]["containers"][0]["image"]
            eq(o, d, f"{key} identical to the chart defaults")


def case_ha(objs, _):
    dep, pod, c, w = common(objs, elector=True)
    eq(dep["spec"]["replicas"], 3, "replicas")
    eq(env_pairs(c), insert_after(stock_env(), "AGENT_INJECT_REVOKE_ON_SHUTDOWN", ELECTOR_ENV), "env")
    pdb = objs.get(("PodDisruptionBudget", P), {})
    eq(pdb.get("spec"), {"selector": {"matchLabels": SELECTOR}, "maxUnavailable": 1}, "PDB spec")
    check("affinity" in pod, "anti-affinity kept")


def case_metrics(objs, _):
    dep, pod, c, w = common(objs, elector=False)
    eq(env_pairs(c), insert_after(stock_env(), "AGENT_INJECT_REVOKE_ON_SHUTDOWN",
                                  [("AGENT_INJECT_TELEMETRY_PATH", "/metrics")]), "env")
    ports = objs[("Service", f"{P}-svc")]["spec"]["ports"]
    eq(ports[1:], [{"name": "metrics", "port": 8080, "targetPort": 8080}], "Service metrics port")
    sm = objs.get(("ServiceMonitor", P), {})
    eq(sm.get("apiVersion"), "monitoring.coreos.com/v1", "ServiceMonitor apiVersion")
    eq(sm.get("metadata", {}).get("labels", {}).get("release"), "prometheus", "ServiceMonitor extra label")
    ep = (sm.get("spec", {}).get("endpoints") or [{}])[0]
    eq((ep.get("port"), ep.get("scheme"), ep.get("path")), ("metrics", "https", "/metrics"), "ServiceMonitor endpoint")
    sel = sm.get("spec", {}).get("selector", {}).get("matchLabels", {})
    svc_labels = objs[("Service", f"{P}-svc")]["metadata"]["labels"]
    check(all(svc_labels.get(k) == v for k, v in sel.items()), "ServiceMonitor selects the Service")


def case_openshift(objs, _):
    stock_defaults_checks(objs, openshift=True,
                          image="registry.connect.redhat.com/hashicorp/vault-k8s:1.7.6-ubi",
                          AGENT_INJECT_VAULT_IMAGE="registry.connect.redhat.com/hashicorp/vault:2.0.4-ubi")
    np = objs.get(("NetworkPolicy", P), {})
    eq(np.get("spec", {}).get("ingress"), [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 8080, "protocol": "TCP"}]}],
       "NetworkPolicy ingress")


def case_opt_in(objs, _):
    dep, pod, c, w = common(objs, elector=False)
    eq(env_pairs(c), stock_env(), "env")
    eq(w.get("namespaceSelector"), {"matchLabels": {"vault-injector/inject": "enabled"}}, "namespaceSelector")
    eq(w.get("matchConditions"), MATCH_CONDITIONS, "matchConditions")


def case_everything(objs, _):
    dep, pod, c, w = common(objs, elector=True, lease=True, port=9443, watchers=True)
    eq(dep["spec"]["replicas"], 2, "replicas")
    env = [
        ("AGENT_INJECT_LISTEN", ":9443"),
        ("AGENT_INJECT_LOG_LEVEL", "debug"),
        ("AGENT_INJECT_VAULT_ADDR", "https://vault.example.com:8200"),
        ("AGENT_INJECT_VAULT_AUTH_PATH", "auth/k8s-prod"),
        ("AGENT_INJECT_VAULT_IMAGE", "quay.io/openbao/openbao:2.7.2"),
        ("AGENT_INJECT_TLS_CERT_FILE", "/etc/webhook/certs/cert.pem"),
        ("AGENT_INJECT_TLS_KEY_FILE", "/etc/webhook/certs/key.pem"),
        ("AGENT_INJECT_LOG_FORMAT", "json"),
        ("AGENT_INJECT_REVOKE_ON_SHUTDOWN", "true"),
        ("AGENT_INJECT_USE_LEADER_ELECTOR", "true"),
        ("NAMESPACE", FIELD("metadata.namespace")),
        ("AGENT_INJECT_LEADER_ELECTION_MODE", "lease"),
        ("AGENT_INJECT_CPU_REQUEST", "100m"),
        ("AGENT_INJECT_CPU_LIMIT", "1"),
        ("AGENT_INJECT_MEM_REQUEST", "32Mi"),
        ("AGENT_INJECT_MEM_LIMIT", "256Mi"),
        ("AGENT_INJECT_EPHEMERAL_REQUEST", "64Mi"),
        ("AGENT_INJECT_EPHEMERAL_LIMIT", "128Mi"),
        ("AGENT_INJECT_DEFAULT_TEMPLATE", "json"),
        ("AGENT_INJECT_TEMPLATE_CONFIG_EXIT_ON_RETRY_FAILURE", "false"),
        ("AGENT_INJECT_TEMPLATE_STATIC_SECRET_RENDER_INTERVAL", "5m"),
        ("AGENT_INJECT_NAMESPACE_DEFAULTS", "true"),
        ("AGENT_INJECT_MISSED_INJECTION_WATCHER", "true"),
        # extraEnvironmentVars, in key order (Go template map order), names upper-cased
        ("AGENT_INJECT_VAULT_NAMESPACE", "team-a"),
        ("AGENT_INJECT_TLS_MIN_VERSION", "tls13"),
        ("POD_NAME", FIELD("metadata.name")),
    ]
    eq(env_pairs(c), env, "env")
    eq(c.get("image"), "registry.example.com/vault-injector:1.2.3", "image")
    eq(c.get("imagePullPolicy"), "Always", "imagePullPolicy")
    eq(c.get("volumeMounts"), [{"name": "webhook-certs", "mountPath": "/etc/webhook/certs", "readOnly": True}], "volumeMounts")
    eq(pod.get("volumes"), [{"name": "webhook-certs", "secret": {"secretName": "injector-tls"}}], "volumes")
    eq(pod.get("imagePullSecrets"), [{"name": "pull-a"}, {"name": "pull-b"}], "imagePullSecrets")
    eq(pod.get("securityContext"), {"runAsNonRoot": True, "runAsUser": 2000}, "pod securityContext (templated)")
    eq(c.get("securityContext"), {"allowPrivilegeEscalation": False}, "container securityContext")
    eq(c.get("resources"), {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}, "resources")
    check("affinity" not in pod, "affinity emptied")
    eq(pod.get("topologySpreadConstraints", [{}])[0].get("labelSelector"), {"matchLabels": {"app.kubernetes.io/name": P}},
       "topologySpreadConstraints (templated)")
    eq(pod.get("tolerations"), [{"key": "dedicated", "operator": "Equal", "value": "vault", "effect": "NoSchedule"}],
       "tolerations")
    eq(pod.get("nodeSelector"), {"kubernetes.io/os": "linux"}, "nodeSelector")
    eq(pod.get("priorityClassName"), "system-cluster-critical", "priorityClassName")
    eq(pod.get("hostNetwork"), True, "hostNetwork")
    meta = dep["spec"]["template"]["metadata"]
    eq(meta.get("labels", {}).get("team"), "platform", "extraLabels")
    eq(meta.get("annotations"), {"example.com/pod": "yes"}, "pod annotations")
    eq(dep["spec"].get("strategy"), {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
       "strategy")
    eq(c["startupProbe"]["failureThreshold"], 30, "startupProbe")
    eq(c["livenessProbe"]["periodSeconds"], 4, "livenessProbe")
    eq(objs[("Service", f"{P}-svc")]["metadata"].get("annotations"), {"example.com/svc": "yes"}, "Service annotations")
    eq(objs[("ServiceAccount", P)]["metadata"].get("annotations"), {"example.com/sa": "vault"}, "SA annotations")
    mwc = objs[("MutatingWebhookConfiguration", f"{P}-cfg")]
    eq(mwc["metadata"].get("annotations"), {"example.com/owner": "vault"}, "webhook annotations")
    eq((w.get("failurePolicy"), w.get("matchPolicy"), w.get("timeoutSeconds")), ("Fail", "Equivalent", 10), "webhook policy")
    eq(w["clientConfig"].get("caBundle"), "Y2E=", "caBundle")
    eq(w.get("namespaceSelector"), {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                                          "values": ["kube-system"]}]}, "namespaceSelector")
    eq(w.get("objectSelector"), {"matchLabels": {"inject-vault": "yes"}}, "objectSelector (templated)")
    check("matchConditions" not in w, "matchConditions: [] disables them")
    eq(objs.get(("PodDisruptionBudget", P), {}).get("spec", {}).get("minAvailable"), 1, "PDB minAvailable")


def case_old_kube(objs, _):
    dep, pod, c, w = common(objs, elector=False)
    check("matchConditions" not in w, "no matchConditions before Kubernetes 1.28")


def case_disabled(objs, _):
    # As in vault-helm, the server account does not depend on the injector.
    eq(sorted(objs), sorted(SERVER_KINDS), "injector.enabled=false renders only the server account")
    server_account(objs)


def case_global_disabled(objs, _):
    eq(sorted(objs), [], "global.enabled=false renders nothing")


CASES = {
    "defaults": case_defaults,
    "vault-helm-style": case_vault_helm,
    "ha-3-replicas": case_ha,
    "metrics": case_metrics,
    "openshift": case_openshift,
    "opt-in-namespaces": case_opt_in,
    "everything": case_everything,
    "kube-1.27": case_old_kube,
    "disabled": case_disabled,
    "global-disabled": case_global_disabled,
    "server-account": case_server_account,
    "no-server-account": case_no_server_account,
    "existing-account": case_existing_account,
}


def main():
    case, path = sys.argv[1], sys.argv[2]
    defaults = load(sys.argv[3]) if len(sys.argv) > 3 else None
    CASES[case](load(path), defaults)
    if FAILS:
        for f in FAILS:
            print(f"chart-test: {case}: FAIL: {f}", file=sys.stderr)
        sys.exit(1)
    print(f"chart-test: {case}: ok")


if __name__ == "__main__":
    main()
