{{- define "loadtester.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release name when it holds the chart name: "flagger-loadtester" stays so. */}}
{{- define "loadtester.fullname" -}}
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

{{- define "loadtester.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "loadtester.labels" -}}
helm.sh/chart: {{ include "loadtester.chart" . }}
app.kubernetes.io/name: {{ include "loadtester.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "loadtester.validate" -}}
{{- if or .Values.meshName .Values.appmesh.enabled -}}
{{- fail "meshName, appmesh.enabled: Sluice does not route App Mesh; its load tester needs no virtual node" -}}
{{- end -}}
{{- if .Values.istio.enabled -}}
{{- fail "istio.enabled: expose the load tester through Istio with your own Gateway and VirtualService; the chart does not create them" -}}
{{- end -}}
{{- if and .Values.rbac.create (not .Values.rbac.rules) -}}
{{- fail "rbac.create needs rbac.rules: the commands your hooks run decide the permissions" -}}
{{- end -}}
{{- end -}}
