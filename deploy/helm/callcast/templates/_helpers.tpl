{{- define "callcast.name" -}}{{ .Release.Name }}-callcast{{- end -}}
{{- define "callcast.secret" -}}{{ default (include "callcast.name" .) .Values.existingSecret }}{{- end -}}
