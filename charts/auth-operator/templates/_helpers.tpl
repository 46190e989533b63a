{{/*
The chart name, or nameOverride.
*/}}
{{- define "auth-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: fullnameOverride, else the release name with the chart
name appended unless the release name already contains it. Truncated to 63 characters (DNS label).
*/}}
{{- define "auth-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The chart label value: name-version.
*/}}
{{- define "auth-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object the chart creates.
*/}}
{{- define "auth-operator.labels" -}}
helm.sh/chart: {{ include "auth-operator.chart" . }}
app.kubernetes.io/name: {{ include "auth-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: auth-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the manager's pods; the Deployment selector is immutable, so they never change.
*/}}
{{- define "auth-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "auth-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller-manager
{{- end }}

{{/*
The manager's ServiceAccount name.
*/}}
{{- define "auth-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "auth-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The manager's image reference: repository@digest when a digest is set, else repository:tag with the
chart's appVersion as the default tag.
*/}}
{{- define "auth-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The image the operator deploys the auth server from: authServerImage, else the manager's own.
*/}}
{{- define "auth-operator.authServerImage" -}}
{{- default (include "auth-operator.image" .) .Values.authServerImage }}
{{- end }}
