{{/* The chart's short name. */}}
{{- define "sealant.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The name of the namespaced objects. Defaults to the name `sealant` and `kubeseal`
look for (`--controller-name`), whatever the release is called.
*/}}
{{- define "sealant.fullname" -}}
{{- default "sealed-secrets-controller" .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sealant.namespace" -}}
{{- default .Release.Namespace .Values.namespace -}}
{{- end -}}

{{- define "sealant.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sealant.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries (commonLabels are added by "sealant.metadata"). */}}
{{- define "sealant.labels" -}}
app.kubernetes.io/name: {{ include "sealant.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: sealed-secrets
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* The labels that select the controller's Pods. */}}
{{- define "sealant.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sealant.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* A value rendered as a template: strings as they are, anything else as YAML. */}}
{{- define "sealant.tpl" -}}
{{- if typeIs "string" .value -}}
{{- tpl .value .context -}}
{{- else -}}
{{- tpl (.value | toYaml) .context -}}
{{- end -}}
{{- end -}}

{{/*
labels: and annotations: of an object's metadata. Arguments: "context" (the root),
and optionally "labels" and "annotations" (the object's own maps, added to the
common ones). An empty annotations map is left out.
*/}}
{{- define "sealant.metadata" -}}
{{- $root := .context -}}
labels:
  {{- include "sealant.labels" $root | nindent 2 }}
  {{- with .labels }}
  {{- include "sealant.tpl" (dict "value" . "context" $root) | nindent 2 }}
  {{- end }}
  {{- with $root.Values.commonLabels }}
  {{- include "sealant.tpl" (dict "value" . "context" $root) | nindent 2 }}
  {{- end }}
{{- if or .annotations $root.Values.commonAnnotations }}
annotations:
  {{- with .annotations }}
  {{- include "sealant.tpl" (dict "value" . "context" $root) | nindent 2 }}
  {{- end }}
  {{- with $root.Values.commonAnnotations }}
  {{- include "sealant.tpl" (dict "value" . "context" $root) | nindent 2 }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "sealant.image" -}}
{{- $tag := default .Chart.AppVersion (toString .Values.image.tag) -}}
{{- if .Values.image.registry -}}
{{- printf "%s/%s:%s" .Values.image.registry .Values.image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
Whether the controller is namespace-scoped: Roles in its own namespace and in
additionalNamespaces instead of a ClusterRole.
*/}}
{{- define "sealant.namespaced" -}}
{{- if and .Values.rbac.create .Values.rbac.namespacedRoles -}}true{{- end -}}
{{- end -}}

{{/* The namespaces a namespace-scoped controller watches: its own first. */}}
{{- define "sealant.watchedNamespaces" -}}
{{- $all := list (include "sealant.namespace" .) -}}
{{- range .Values.additionalNamespaces -}}
{{- $all = append $all . -}}
{{- end -}}
{{- $all | uniq | toJson -}}
{{- end -}}

{{/* "k1=v1,k2=v2" from a map of strings; `what` names it in the error. */}}
{{- define "sealant.pairs" -}}
{{- $pairs := list -}}
{{- range $k, $v := .map -}}
{{- if not (kindIs "string" $v) -}}
{{- fail (printf "%s: the value of %q must be a string" $.what $k) -}}
{{- end -}}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* Why the rules below are what they are (a YAML comment in the output). */}}
{{- define "sealant.rulesComment" -}}
# The controller's rules: exactly the verbs its code calls, no more.
# controller/tests/rbac.rs maps each verb granted here to the call in controller/src/
# that needs it, and fails on a verb with no such call (or a call with no grant). The
# end-to-end suite runs the controller with these rights and nothing else, so a
# missing grant fails a test there too.
#
# Bitnami's chart also grants secrets `delete`, core `events`, `namespaces get`,
# `sealedsecrets get` and `sealedsecrets/status update`, and repeats the key Secrets'
# verbs in a Role (<fullname>-key-admin). sealant calls none of these: it never
# deletes a Secret (ownerReferences let the garbage collector do it), publishes
# events.k8s.io/v1 events, reads SealedSecrets from its watch cache and writes status
# with a merge patch; and the secrets verbs already cover the key Secrets in its
# namespace.
{{- end -}}

{{/* The rules of the controller's ClusterRole, or of its Roles when namespace-scoped. */}}
{{- define "sealant.unsealerRules" }}
rules:
  - apiGroups: ["bitnami.com"]
    resources: ["sealedsecrets"]
    verbs: ["list", "watch"]
  - apiGroups: ["bitnami.com"]
    resources: ["sealedsecrets/status"]
    verbs: ["patch"]
  # Produced Secrets (read, create, replace; their metadata is watched for repairs)
  # and the key Secrets in the controller's namespace (listed and watched by label,
  # the legacy one read by name, new ones created on renewal).
  - apiGroups: [""]
    resources: ["secrets"]
    verbs: ["get", "list", "watch", "create", "update"]
  - apiGroups: ["events.k8s.io"]
    resources: ["events"]
    verbs: ["create", "patch"]
{{- end }}
