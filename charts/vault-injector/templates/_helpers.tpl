{{/*
Names. The base name is "vault" (not the chart's name) so that the objects and labels are those
of the vault-helm chart: release `vault` -> `vault-agent-injector`. `vault.name`,
`vault.fullname` and `vault.namespace` keep vault-helm's template names because values files
written for vault-helm call them from templated strings (objectSelector, affinity, ...).
*/}}
{{- define "vault.name" -}}
{{- .Values.nameOverride | default "vault" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "vault.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $base := include "vault.name" . -}}
{{- if contains $base .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $base | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "vault.namespace" -}}
{{- .Values.global.namespace | default .Release.Namespace -}}
{{- end -}}

{{- define "vault.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The injector's object name prefix: <fullname>-agent-injector. */}}
{{- define "vi.prefix" -}}
{{- printf "%s-agent-injector" (include "vault.fullname" .) -}}
{{- end -}}

{{/* "true" when the injector is rendered at all (injector.enabled, "-" = global.enabled). */}}
{{- define "vi.enabled" -}}
{{- $e := toString .Values.injector.enabled -}}
{{- if or (eq $e "true") (and (eq $e "-") (eq (toString .Values.global.enabled) "true")) -}}
true
{{- end -}}
{{- end -}}

{{/* "true" when leader election is on: elector enabled and more than one replica. */}}
{{- define "vi.elector" -}}
{{- if and (eq (toString .Values.injector.leaderElector.enabled) "true") (gt (int .Values.injector.replicas) 1) -}}
true
{{- end -}}
{{- end -}}

{{/* "true" when the Lease election mode is asked for (and the elector is on). */}}
{{- define "vi.lease" -}}
{{- if and (include "vi.elector" .) (eq (toString (dig "mode" "" .Values.injector.leaderElector)) "lease") -}}
true
{{- end -}}
{{- end -}}

{{/* The labels every object carries. */}}
{{- define "vi.labels" -}}
app.kubernetes.io/name: {{ include "vault.name" . }}-agent-injector
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The pod selector (Deployment, Service, PDB, NetworkPolicy). */}}
{{- define "vi.selector" -}}
app.kubernetes.io/name: {{ include "vault.name" . }}-agent-injector
app.kubernetes.io/instance: {{ .Release.Name }}
component: webhook
{{- end -}}

{{/*
A value that may be a map/list or a templated string (vault-helm's convention), rendered as
YAML. Call with (dict "v" VALUE "ctx" $).
*/}}
{{- define "vi.yaml" -}}
{{- if kindIs "string" .v -}}
{{- tpl .v .ctx | trim -}}
{{- else -}}
{{- toYaml .v -}}
{{- end -}}
{{- end -}}

{{/* The address the injected agents use: global, then injector, then the in-release server. */}}
{{- define "vi.vaultAddr" -}}
{{- if .Values.global.externalVaultAddr -}}
{{- .Values.global.externalVaultAddr -}}
{{- else if .Values.injector.externalVaultAddr -}}
{{- .Values.injector.externalVaultAddr -}}
{{- else -}}
{{- $scheme := ternary "http" "https" (eq (toString .Values.global.tlsDisable) "true") -}}
{{- $port := dig "service" "port" 8200 (.Values.server | default dict) -}}
{{- printf "%s://%s.%s.svc:%v" $scheme (include "vault.fullname" .) (include "vault.namespace" .) $port -}}
{{- end -}}
{{- end -}}

{{/* The injector image reference. */}}
{{- define "vi.image" -}}
{{- printf "%s:%s" .Values.injector.image.repository (toString (.Values.injector.image.tag | default .Chart.AppVersion)) -}}
{{- end -}}


{{/*
The account vault-helm creates for an external Vault's TokenReviews, under vault-helm's
conditions (so an in-place upgrade from vault-helm keeps it and its binding): "true" when the
ServiceAccount is created (serviceAccount.create, and server.enabled or global.enabled true).
*/}}
{{- define "vi.serverServiceAccount" -}}
{{- if and (eq (toString .Values.server.serviceAccount.create) "true") (or (eq (toString .Values.server.enabled) "true") (eq (toString .Values.global.enabled) "true")) -}}
true
{{- end -}}
{{- end -}}

{{/* "true" when the account's non-expiring token Secret is created (create and createSecret). */}}
{{- define "vi.serverServiceAccountSecret" -}}
{{- if and (eq (toString .Values.server.serviceAccount.create) "true") (eq (toString .Values.server.serviceAccount.createSecret) "true") -}}
true
{{- end -}}
{{- end -}}

{{/*
"true" when the account is bound to system:auth-delegator: authDelegator.enabled, an account
(created, or named), and server.enabled or global.enabled true.
*/}}
{{- define "vi.serverAuthDelegator" -}}
{{- if and (eq (toString .Values.server.authDelegator.enabled) "true") (or (eq (toString .Values.server.serviceAccount.create) "true") (ne (toString .Values.server.serviceAccount.name) "")) (or (eq (toString .Values.server.enabled) "true") (eq (toString .Values.global.enabled) "true")) -}}
true
{{- end -}}
{{- end -}}

{{/*
The account's name, as vault-helm names it: `name`, else `<fullname>` when created, else
"default". Keeps vault-helm's template name, which values files may call.
*/}}
{{- define "vault.serviceAccount.name" -}}
{{- if .Values.server.serviceAccount.create -}}
{{- .Values.server.serviceAccount.name | default (include "vault.fullname" .) -}}
{{- else -}}
{{- .Values.server.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/*
vault-helm's dev mode (a server of this release in dev mode, no external address), where
vault-helm leaves the account's annotations out.
*/}}
{{- define "vi.serverDevMode" -}}
{{- $server := or (eq (toString .Values.server.enabled) "true") (and (eq (toString .Values.server.enabled) "-") (eq (toString .Values.global.enabled) "true")) -}}
{{- if and $server (not .Values.global.externalVaultAddr) (not .Values.injector.externalVaultAddr) (eq (toString (dig "dev" "enabled" false .Values.server)) "true") -}}
true
{{- end -}}
{{- end -}}

{{/* The labels vault-helm puts on the server account's objects. */}}
{{- define "vi.serverLabels" -}}
helm.sh/chart: {{ include "vault.chart" . }}
app.kubernetes.io/name: {{ include "vault.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
