package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MetricTemplate is a reusable metric query and the provider that answers it.
// Canaries refer to it from analysis.metrics[].templateRef.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=all
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider.type`
type MetricTemplate struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the query and its provider.
	// +optional
	Spec MetricTemplateSpec `json:"spec"`

	// status reports problems Sluice found with the template.
	// +optional
	Status MetricTemplateStatus `json:"status,omitzero"`
}

// MetricTemplateList is a list of MetricTemplates.
//
// +kubebuilder:object:root=true
type MetricTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the MetricTemplates in the list.
	Items []MetricTemplate `json:"items"`
}

// MetricTemplateSpec is a metric query and the provider that answers it.
type MetricTemplateSpec struct {
	// provider is the metrics backend that runs the query.
	// +required
	Provider MetricTemplateProvider `json:"provider"`

	// query is a Go text/template that renders to the provider's query
	// language. It may use {{ name }}, {{ namespace }}, {{ target }},
	// {{ service }}, {{ ingress }}, {{ route }}, {{ interval }} and
	// {{ variables.NAME }}. It must return a single number.
	// +required
	Query string `json:"query"`
}

// Metric provider types accepted in MetricTemplate spec.provider.type.
const (
	MetricProviderPrometheus      = "prometheus"
	MetricProviderInfluxDB        = "influxdb"
	MetricProviderDatadog         = "datadog"
	MetricProviderExternalMetrics = "externalmetrics"
	MetricProviderStackdriver     = "stackdriver"
	MetricProviderCloudWatch      = "cloudwatch"
	MetricProviderNewRelic        = "newrelic"
	MetricProviderGraphite        = "graphite"
	MetricProviderDynatrace       = "dynatrace"
	MetricProviderKeptn           = "keptn"
	MetricProviderSplunk          = "splunk"
)

// MetricTemplateProvider says which metrics backend runs a query and how to
// reach it.
type MetricTemplateProvider struct {
	// type is the kind of metrics backend.
	// +kubebuilder:validation:Enum=prometheus;influxdb;datadog;externalmetrics;stackdriver;cloudwatch;newrelic;graphite;dynatrace;keptn;splunk
	// +required
	Type string `json:"type"`

	// address is the URL of the backend's API, for example
	// http://prometheus.monitoring:9090 or https://api.datadoghq.eu. Unset
	// means the provider's public default where it has one.
	// +optional
	Address string `json:"address,omitempty"`

	// headers are extra HTTP headers sent with every query, each name with
	// one or more values.
	// +optional
	Headers map[string][]string `json:"headers,omitempty"`

	// secretRef names a Secret in the template's namespace that holds the
	// credentials for the backend (for example a bearer token, a username
	// and password, or API and application keys).
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`

	// region is the cloud region of the backend (CloudWatch).
	// +optional
	Region string `json:"region,omitempty"`

	// insecureSkipVerify accepts any TLS certificate from the backend.
	// Defaults to false.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
}

// SecretReference names a Secret in the same namespace as the referring object.
type SecretReference struct {
	// name of the Secret.
	// +required
	Name string `json:"name"`
}

// MetricTemplateStatus reports what Sluice found when it used the template.
type MetricTemplateStatus struct {
	// conditions describe the state of the template.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
