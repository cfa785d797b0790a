#!/usr/bin/env python3
"""Split `helm template` output of charts/vault-injector for the e2e harness (E2E_INJECTOR_FROM=chart).

    chart-injector.py RENDERED.yaml OUT_DIR POD_NAME KEY=VALUE...

Writes into OUT_DIR:
  apply.yaml  every rendered document except the Deployment (the harness runs its container
              itself) and the ServiceMonitor (no Prometheus Operator CRDs), as rendered;
  env         the container's environment as the kubelet would set it, NUL-separated
              NAME=VALUE: `value`s with $(VAR) expanded against the variables defined before
              them and the service variables KEY=VALUE given on the command line (`$$` is a
              literal `$`, unknown references stay as written), `valueFrom.fieldRef`
              metadata.namespace / metadata.name resolved to the Deployment's namespace and
              POD_NAME; any other valueFrom is refused;
  args        the container's command + args, NUL-separated, $(VAR) expanded the same way;
  pod.sh      shell assignments: CHART_SA (serviceAccountName), CHART_USER (uid:gid from the
              pod and container securityContext), CHART_NNP / CHART_RO_ROOT (1 or empty),
              CHART_CERTS_DIR (mountPath of the Secret volume, empty without one).
"""
import os
import re
import shlex
import sys

import yaml


def expand(s, env):
    # k8s.io/kubernetes/third_party/forked/golang/expansion: $$ -> $, $(NAME) -> value when
    # NAME is known, otherwise left as written.
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", sub, s)


def main():
    rendered, out, pod_name = sys.argv[1:4]
    service_env = dict(a.split("=", 1) for a in sys.argv[4:])
    text = open(rendered).read()
    chunks = re.split(r"(?m)^---\s*$", text)
    keep, deps = [], []
    for c in chunks:
        doc = yaml.safe_load(c)
        if not doc:
            continue
        if doc.get("kind") == "Deployment":
            deps.append(doc)
        elif doc.get("kind") != "ServiceMonitor":
            keep.append(c.strip("\n"))
    if len(deps) != 1:
        sys.exit(f"chart-injector: expected one Deployment, found {len(deps)}")
    dep = deps[0]
    ns = dep["metadata"].get("namespace", "default")
    spec = dep["spec"]["template"]["spec"]
    (ctr,) = [c for c in spec["containers"] if c["name"] == "sidecar-injector"]

    env = dict(service_env)
    order = []
    for e in ctr.get("env", []):
        name = e["name"]
        if "valueFrom" in e:
            ref = e["valueFrom"].get("fieldRef", {}).get("fieldPath")
            fields = {"metadata.namespace": ns, "metadata.name": pod_name}
            if ref not in fields:
                sys.exit(f"chart-injector: {name}: unsupported valueFrom {e['valueFrom']}")
            value = fields[ref]
        else:
            value = expand(str(e.get("value", "")), env)
        env[name] = value
        if name in order:
            order.remove(name)
        order.append(name)
    argv = [expand(a, env) for a in ctr.get("command", []) + ctr.get("args", [])]

    psc = spec.get("securityContext") or {}
    csc = ctr.get("securityContext") or {}
    uid = csc.get("runAsUser", psc.get("runAsUser", 0))
    gid = csc.get("runAsGroup", psc.get("runAsGroup", 0))
    nnp = "1" if csc.get("allowPrivilegeEscalation") is False else ""
    ro = "1" if csc.get("readOnlyRootFilesystem") else ""
    secret_vols = {v["name"] for v in spec.get("volumes", []) if "secret" in v}
    certs = [m["mountPath"] for m in ctr.get("volumeMounts", []) if m["name"] in secret_vols]

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "apply.yaml"), "w") as f:
        f.write("\n---\n".join(keep) + "\n")
    with open(os.path.join(out, "env"), "w") as f:
        f.write("".join(f"{n}={env[n]}\0" for n in order))
    with open(os.path.join(out, "args"), "w") as f:
        f.write("".join(a + "\0" for a in argv))
    with open(os.path.join(out, "pod.sh"), "w") as f:
        for k, v in [
            ("CHART_SA", spec.get("serviceAccountName", "default")),
            ("CHART_USER", f"{uid}:{gid}"),
            ("CHART_NNP", nnp),
            ("CHART_RO_ROOT", ro),
            ("CHART_CERTS_DIR", certs[0] if certs else ""),
        ]:
            f.write(f"{k}={shlex.quote(v)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
