#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from the golden fixtures (tests/fixtures/*.yaml):
seeds/review/ (each pod wrapped in an AdmissionReview request), seeds/annotations/ (each pod's
annotation map as JSON) and seeds/json_patch/ (every agent-json-patch / agent-init-json-patch
value, plus a few hand-written patches). Needs PyYAML."""
import json
import pathlib
import sys

import yaml

root = pathlib.Path(__file__).resolve().parent
fixtures = sorted((root.parent / "tests" / "fixtures").glob("*.yaml"))
out = {name: root / "seeds" / name for name in ("review", "annotations", "json_patch")}
for d in out.values():
    d.mkdir(parents=True, exist_ok=True)

patches = {
    "empty": "[]",
    "null": "null",
    "add-env": '[{"op":"add","path":"/env/-","value":{"name":"X","value":"y"}}]',
    "copy-move": '[{"op":"copy","from":"/env/0","path":"/env/-"},{"op":"move","from":"/env/0","path":"/env/1"}]',
    "test-remove": '[{"op":"test","path":"/name","value":"vault-agent"},{"op":"remove","path":"/resources"}]',
    "replace-root": '[{"op":"replace","path":"","value":{"name":"x"}}]',
}
for fixture in fixtures:
    for i, pod in enumerate(yaml.safe_load_all(fixture.read_text())):
        if not isinstance(pod, dict):
            continue
        stem = f"{fixture.stem}-{i}"
        ns = pod.get("metadata", {}).get("namespace", "default")
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": stem,
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": ns,
                "operation": "CREATE",
                "object": pod,
            },
        }
        (out["review"] / f"{stem}.json").write_text(json.dumps(review))
        annotations = pod.get("metadata", {}).get("annotations") or {}
        annotations = {str(k): str(v) for k, v in annotations.items()}
        (out["annotations"] / f"{stem}.json").write_text(json.dumps(annotations))
        for key, value in annotations.items():
            if key.endswith("json-patch"):
                patches[f"{stem}-{key.rsplit('/', 1)[-1]}"] = value
for name, text in patches.items():
    (out["json_patch"] / name).write_text(text)
print(f"seeds from {len(fixtures)} fixtures, {len(patches)} patches", file=sys.stderr)
