#!/usr/bin/env python3
"""Writes the seed inputs of sealant's fuzz targets into DIR/<target>/.

The seeds are real inputs: the known-answer vectors of keys/tests/testdata/ (made by
independent Python implementations, gen_vectors.py and gen_age_vectors.py), the
committed test keys and certificates, SealedSecrets built from those blobs, and
templates of the kinds users write (connection strings, dockerconfigjson, TLS
bundles). scripts/fuzz.sh writes them beside the committed corpus and fuzzes from
both; what adds coverage is merged into fuzz/corpus/ and committed.

Usage: python3 fuzz/seed.py [DIR]    (default: fuzz/corpus)
"""

import base64
import glob
import hashlib
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTDATA = os.path.join(ROOT, "keys", "tests", "testdata")
CORPUS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fuzz", "corpus")


def write(target, data):
    """Stores one seed under its content hash, as libFuzzer names corpus files."""
    if isinstance(data, str):
        data = data.encode()
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def label(scope, namespace, name):
    """The scope label a value is sealed under (Bitnami's rule)."""
    return {"strict": f"{namespace}/{name}", "namespace-wide": namespace,
            "cluster-wide": ""}[scope].encode()


def vectors(pattern):
    for path in sorted(glob.glob(os.path.join(TESTDATA, pattern))):
        with open(path) as f:
            yield json.load(f)


TEMPLATES = [
    "{{ .password }}",
    "postgres://{{ .username }}:{{ .password | urlquery }}@{{ .host }}:5432/app?sslmode=require",
    '{"auths":{"registry.example":{"username":"{{ .username }}","password":"{{ .password }}",'
    '"auth":"{{ printf "%s:%s" .username .password | b64enc }}"}}}',
    "{{ index . \"tls.crt\" }}{{ index . \"tls.key\" | default \"\" }}",
    "{{ range $k, $v := . }}{{ $k }}={{ $v | quote }}\n{{ end }}",
    '{{ if hasPrefix "h" .password }}x{{ else if eq .username "root" }}y{{ else }}z{{ end }}',
    "{{ $a := list }}{{ range 40 }}{{ $a = list $a }}{{ end }}{{ len $a }}",
    '{{ printf "%-10s|%5d|%x|%q|%v|%08.3f" .username 42 .host .password (list 1 2) 3.5 }}',
    '{{ upper .username }} {{ lower "ABC" }} {{ trim "  x " }} {{ replace "." "-" .host }} '
    '{{ splitList "." .host | join "," }} {{ title "a b" }} {{ nospace "a b" }}',
    "{{ with .missing }}{{ . }}{{ else }}none{{ end }}",
    '{{- /* comment */ -}} {{ "a" | quote }} {{ squote "b" }} {{ cat "a" "b" }} {{ repeat 3 "ab" }}',
    '{{ range $i, $e := splitList "," "a,b,c" }}{{ if eq $i 1 }}{{ continue }}{{ end }}'
    "{{ if gt $i 1 }}{{ break }}{{ end }}{{ $e }}{{ end }}",
    '{{ b64dec "!" }}',
    '{{ .password | b64enc | b64dec | toString | len }} {{ toJson . }}',
    '{{ coalesce .missing .empty "fallback" }} {{ ternary "a" "b" (empty .empty) }} '
    '{{ and true .password }} {{ or false nil 1 }} {{ not true }}',
    '{{ trimPrefix "db." .host }} {{ trimSuffix ".example" .host }} {{ trimAll "x" "xax" }} '
    '{{ contains "internal" .host }} {{ hasSuffix "e" .host }}',
    '{{ print 1 2 "a" }}{{ println "b" }}{{ indent 2 .json }}{{ nindent 4 "x" }}',
    '{{ define "t" }}x{{ end }}{{ template "t" . }}{{ block "b" . }}y{{ end }}',
    "{{ index (list) (index .password 0) }}",
    "{{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1_000 }} {{ 1e3 }} {{ 'a' }} {{ `raw` }} {{ -3 }}",
    "{{ ne (len .password) 0 | not }}{{ lt 1 2 }}{{ le 2 2 }}{{ ge 3 1 }}",
    "{{ $x := 1 }}{{ $x = 2 }}{{ $x }}{{ $ }}{{ .username.nothing }}",
    "{{ unterminated",
    "{{ end }}",
    "{{ range .password }}{{ . }}{{ end }}",
    "\u00e9\u4e2d{{ \"\u00fc\" | upper }}\U0001F600",
]


def main():
    # Bitnami hybrid blobs, prefixed with their label's length.
    for case in vectors("cases/*.json"):
        lab = label(case["scope"], case["namespace"], case["name"])
        write("hybrid_open", bytes([len(lab)]) + lab + base64.b64decode(case["blob"]))
    # sealant age envelopes.
    for case in vectors("age/*.json"):
        lab = base64.b64decode(case["label"])
        write("age_open", bytes([len(lab) % 256]) + lab + base64.b64decode(case["blob"]))
    # Key bundles.
    for case in vectors("bundle/*.json"):
        write("bundle_open", base64.b64decode(case["file"]))

    # SealedSecrets from the blobs that open under the fixture keys.
    sealed = []
    for pattern, blob_key in (("cases/*.json", "rsa"), ("age/*.json", "age")):
        for case in vectors(pattern):
            if case["expected"] != "ok":
                continue
            if blob_key == "rsa" and case.get("key") != "rsa2048-a":
                continue
            annotations = {}
            if case["scope"] == "namespace-wide":
                annotations["sealedsecrets.bitnami.com/namespace-wide"] = "true"
            if case["scope"] == "cluster-wide":
                annotations["sealedsecrets.bitnami.com/cluster-wide"] = "true"
            sealed.append({
                "apiVersion": "bitnami.com/v1alpha1",
                "kind": "SealedSecret",
                "metadata": {"name": case["name"], "namespace": case["namespace"],
                             "annotations": annotations},
                "spec": {"encryptedData": {"password": case["blob"]},
                         "template": {"metadata": {"labels": {"app": "x"}},
                                      "type": "Opaque"}},
            })
    for i, obj in enumerate(sealed):
        write("unseal", json.dumps(obj))
        write("http_body", b"\x00" + json.dumps(obj).encode())
        write("http_body", b"\x01" + json.dumps(obj).encode())
        templated = json.loads(json.dumps(obj))
        templated["spec"]["template"]["data"] = {
            "password": TEMPLATES[i % len(TEMPLATES)],
            "url": TEMPLATES[(i + 1) % len(TEMPLATES)],
        }
        write("unseal", json.dumps(templated))
        write("http_body", b"\x01" + json.dumps(templated).encode())
    # The same in YAML, and a two-document stream.
    if sealed:
        obj = sealed[0]
        yaml = (
            "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n"
            f"  name: {obj['metadata']['name']}\n  namespace: {obj['metadata']['namespace']}\n"
            "spec:\n  encryptedData:\n"
            f"    password: {obj['spec']['encryptedData']['password']}\n"
            "  template:\n    data:\n      url: '{{ .password }}@host'\n"
        )
        write("unseal", yaml)
        write("unseal", yaml + "---\n" + yaml)
        write("http_body", b"\x00" + yaml.encode())

    for template in TEMPLATES:
        write("template", template)

    # Certificates, keys, age identities and recipients (the selector byte first).
    for name, selector in (("rsa2048-a.crt.pem", 0), ("rsa2048-b.crt.pem", 0),
                           ("rsa4096.crt.pem", 0), ("rsa2048-a.pem", 2),
                           ("rsa2048-pkcs8.pem", 2), ("rsa4096.pem", 2),
                           ("age-identity-a.txt", 6)):
        with open(os.path.join(TESTDATA, name), "rb") as f:
            text = f.read()
        write("pem", bytes([selector]) + text)
        if b"-----BEGIN" in text:
            body = b"".join(line for line in text.splitlines() if not line.startswith(b"-----"))
            der = base64.b64decode(body)
            write("pem", bytes([{0: 1, 2: 3}[selector]]) + der)
            write("pem", bytes([4]) + der)
            write("pem", bytes([5]) + der)
    for case in vectors("age/*.json"):
        for recipient in case.get("sealed_to") or []:
            write("pem", b"\x07# recipients\n" + recipient.encode() + b"\n")


if __name__ == "__main__":
    main()
