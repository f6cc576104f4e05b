#!/usr/bin/env python3
"""Writes a repository of N Kubernetes manifests for the `sealant scan` benchmark.

Mixed kinds, as a GitOps repository holds them: Deployments, Services, ConfigMaps,
well-formed SealedSecrets (RSA-4096 shaped blobs), ExternalSecrets, Secrets without
values, kustomizations and multi-document files. One in a hundred files is a planted
leak, in one of several forms (YAML Secret, JSON Secret, a List, a pasted base64 in a
SealedSecret, a kustomize literal). The planted files are listed, one per line, in
`<out>/.planted` (a dot file the scan skips as it is not YAML), so the benchmark can
check that every leak is found and nothing else.

Usage: scan_gen.py OUT_DIR [N]
"""
import base64
import json
import os
import random
import sys

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
rng = random.Random(14)


def blob():
    # u16 BE 512, a 512-byte RSA part, then AES-GCM ciphertext and tag.
    body = bytes([0x02, 0x00]) + rng.randbytes(512 + rng.randint(16, 80))
    return base64.b64encode(body).decode()


def deployment(i):
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i}
  namespace: team-{i % 37}
  labels: {{app: app-{i}, tier: backend}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: app-{i}}}
  template:
    metadata:
      labels: {{app: app-{i}}}
    spec:
      containers:
      - name: app
        image: registry.example/app:{i}
        ports: [{{containerPort: 8080}}]
        envFrom:
        - secretRef: {{name: app-{i}-db}}
        env:
        - name: TOKEN
          valueFrom: {{secretKeyRef: {{name: app-{i}-token, key: token}}}}
        resources:
          limits: {{cpu: 500m, memory: 256Mi}}
"""


def service(i):
    return f"""apiVersion: v1
kind: Service
metadata:
  name: app-{i}
  namespace: team-{i % 37}
spec:
  selector: {{app: app-{i}}}
  ports:
  - port: 80
    targetPort: 8080
"""


def configmap(i):
    return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: app-{i}-config
  namespace: team-{i % 37}
data:
  LOG_LEVEL: info
  FEATURE_FLAGS: "a,b,c"
  config.yaml: |
    server:
      port: 8080
      timeout: 30s
"""


def sealed(i):
    keys = "\n".join(f"    key{k}: {blob()}" for k in range(rng.randint(1, 4)))
    return f"""apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
  name: app-{i}-db
  namespace: team-{i % 37}
spec:
  encryptedData:
{keys}
  template:
    metadata:
      name: app-{i}-db
      namespace: team-{i % 37}
    type: Opaque
"""


def external(i):
    return f"""apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app-{i}-token
  namespace: team-{i % 37}
spec:
  secretStoreRef: {{name: vault, kind: ClusterSecretStore}}
  target: {{name: app-{i}-token}}
  data:
  - secretKey: token
    remoteRef: {{key: apps/{i}, property: token}}
"""


def empty_secret(i):
    return f"""apiVersion: v1
kind: Secret
metadata:
  name: sa-{i}
  namespace: team-{i % 37}
  annotations:
    kubernetes.io/service-account.name: app-{i}
type: kubernetes.io/service-account-token
"""


def leak(i, form):
    value = f"bench-leak-{i}"
    b64 = base64.b64encode(value.encode()).decode()
    if form == 0:
        return "yaml", f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: leak-{i}\n  namespace: team-{i % 37}\nstringData:\n  password: {value}\n"
    if form == 1:
        doc = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"leak-{i}"}, "data": {"token": b64}}
        return "json", json.dumps(doc, indent=2) + "\n"
    if form == 2:
        return "yaml", f"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {{name: leak-{i}}}\n  data: {{token: {b64}}}\n"
    if form == 3:
        return "yaml", f"apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: leak-{i}\n  namespace: team-{i % 37}\nspec:\n  encryptedData:\n    password: {b64}\n"
    return "yaml", f"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nsecretGenerator:\n- name: leak-{i}\n  literals:\n  - password={value}\n"


makers = [deployment, service, configmap, sealed, sealed, external, empty_secret]
planted = []
for i in range(n):
    d = os.path.join(out, f"team-{i % 37}", f"app-{i // 37 % 50}")
    os.makedirs(d, exist_ok=True)
    if i % 100 == 42:
        ext, text = leak(i, (i // 100) % 5)
        name = f"kustomization.yaml" if (i // 100) % 5 == 4 else f"leak-{i}.{ext}"
        path = os.path.join(d, name)
        planted.append(os.path.relpath(path, out))
    elif i % 10 == 7:
        # A multi-document file: Deployment, Service and SealedSecret together.
        text = "---\n".join([deployment(i), service(i), sealed(i)])
        path = os.path.join(d, f"app-{i}.yaml")
    else:
        text = makers[i % len(makers)](i)
        path = os.path.join(d, f"m-{i}.yaml")
    with open(path, "w") as f:
        f.write(text)
with open(os.path.join(out, ".planted"), "w") as f:
    f.write("\n".join(sorted(planted)) + "\n")
print(f"{n} manifests, {len(planted)} planted leaks in {out}", file=sys.stderr)
