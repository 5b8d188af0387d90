{{/* Names and labels shared by every template. */}}
{{- define "modelroute.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "modelroute.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "modelroute.operatorName" -}}
{{- printf "%s-operator" (include "modelroute.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "modelroute.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "modelroute.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelroute
{{- end -}}

{{- define "modelroute.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelroute.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "modelroute.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "modelroute.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "modelroute.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "modelroute.serviceHost" -}}
{{- printf "%s.%s.svc" (include "modelroute.operatorName" .) .Release.Namespace -}}
{{- end -}}

{{/*
The webhook's self-signed certificate: reused from the existing Secret on upgrades (lookup), or
generated once per render and shared by the Secret and the webhook's caBundle.
*/}}
{{- define "modelroute.webhookCerts" -}}
{{- if not .Values.webhook.generated -}}
{{- $host := include "modelroute.serviceHost" . -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "modelroute.webhookSecret" .) -}}
{{- if and $existing $existing.data (index $existing.data "ca.crt") -}}
{{- $_ := set .Values.webhook "generated" (dict "crt" (index $existing.data "tls.crt") "key" (index $existing.data "tls.key") "ca" (index $existing.data "ca.crt")) -}}
{{- else -}}
{{- $ca := genCA "modelroute-webhook-ca" 3650 -}}
{{- $cert := genSignedCert $host nil (list $host (printf "%s.%s" (include "modelroute.operatorName" .) .Release.Namespace) (include "modelroute.operatorName" .)) 3650 $ca -}}
{{- $_ := set .Values.webhook "generated" (dict "crt" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc) "ca" ($ca.Cert | b64enc)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
