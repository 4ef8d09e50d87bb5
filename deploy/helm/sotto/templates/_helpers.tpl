{{- define "sotto.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sotto.labels" -}}
app.kubernetes.io/name: sotto
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "sotto.selector" -}}
app.kubernetes.io/name: sotto
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The cluster settings, the same on every node (APPLIANCE_CLUSTER__*, docs/operator-guide.md). */}}
{{- define "sotto.clusterEnv" -}}
- name: APPLIANCE_CLUSTER__PORT
  value: {{ .Values.cluster.port | quote }}
- name: APPLIANCE_CLUSTER__NODE_MANAGER_PORT
  value: {{ .Values.cluster.nodeManagerPort | quote }}
- name: APPLIANCE_CLUSTER__OBJECT_MANAGER_PORT
  value: {{ .Values.cluster.objectManagerPort | quote }}
- name: APPLIANCE_CLUSTER__RUNTIME_ENV_AGENT_PORT
  value: {{ .Values.cluster.runtimeEnvAgentPort | quote }}
- name: APPLIANCE_CLUSTER__DASHBOARD_AGENT_GRPC_PORT
  value: {{ .Values.cluster.dashboardAgentGrpcPort | quote }}
- name: APPLIANCE_CLUSTER__DASHBOARD_AGENT_LISTEN_PORT
  value: {{ .Values.cluster.dashboardAgentListenPort | quote }}
- name: APPLIANCE_CLUSTER__METRICS_EXPORT_PORT
  value: {{ .Values.cluster.metricsExportPort | quote }}
- name: APPLIANCE_CLUSTER__MIN_WORKER_PORT
  value: {{ .Values.cluster.minWorkerPort | quote }}
- name: APPLIANCE_CLUSTER__MAX_WORKER_PORT
  value: {{ .Values.cluster.maxWorkerPort | quote }}
- name: APPLIANCE_CLUSTER__OBJECT_STORE_BYTES
  value: {{ .Values.cluster.objectStoreBytes | int64 | quote }}
- name: APPLIANCE_MODELS__DEVICE
  value: auto
- name: APPLIANCE_DIARIZATION__DEVICE
  value: auto
{{- end -}}
