package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Canary describes the progressive delivery of one workload: which workload
// to watch, how to expose it, and how to analyse every new revision before it
// replaces the production copy (the "primary").
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=all
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Weight",type=string,JSONPath=`.status.canaryWeight`
// +kubebuilder:printcolumn:name="Suspended",type=boolean,JSONPath=`.spec.suspend`,priority=1
// +kubebuilder:printcolumn:name="FailedChecks",type=string,JSONPath=`.status.failedChecks`,priority=1
// +kubebuilder:printcolumn:name="Interval",type=string,JSONPath=`.spec.analysis.interval`,priority=1
// +kubebuilder:printcolumn:name="Mirror",type=boolean,JSONPath=`.spec.analysis.mirror`,priority=1
// +kubebuilder:printcolumn:name="StepWeight",type=string,JSONPath=`.spec.analysis.stepWeight`,priority=1
// +kubebuilder:printcolumn:name="StepWeights",type=string,JSONPath=`.spec.analysis.stepWeights`,priority=1
// +kubebuilder:printcolumn:name="MaxWeight",type=string,JSONPath=`.spec.analysis.maxWeight`,priority=1
// +kubebuilder:printcolumn:name="LastTransitionTime",type=string,JSONPath=`.status.lastTransitionTime`
type Canary struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the user asks for: the target workload, its Service and
	// the analysis that every new revision goes through.
	// +required
	Spec CanarySpec `json:"spec"`

	// status is what Sluice observed and decided last; it is the controller's
	// only memory, so a restarted controller resumes from it.
	// +optional
	Status CanaryStatus `json:"status,omitempty"`
}

// CanaryList is a list of Canaries.
//
// +kubebuilder:object:root=true
type CanaryList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the Canaries in the list.
	Items []Canary `json:"items"`
}

// Provider names accepted in spec.provider. They are the names Flagger uses.
const (
	ProviderAPISIX            = "apisix"
	ProviderAppMesh           = "appmesh"
	ProviderAppMeshV1beta2    = "appmesh:v1beta2"
	ProviderContour           = "contour"
	ProviderGatewayAPIV1      = "gatewayapi:v1"
	ProviderGatewayAPIV1beta1 = "gatewayapi:v1beta1"
	ProviderGloo              = "gloo"
	ProviderIstio             = "istio"
	ProviderKnative           = "knative"
	ProviderKubernetes        = "kubernetes"
	ProviderKuma              = "kuma"
	ProviderLinkerd           = "linkerd"
	ProviderNGINX             = "nginx"
	ProviderOSM               = "osm"
	ProviderSkipper           = "skipper"
	ProviderSMIV1alpha1       = "smi:v1alpha1"
	ProviderSMIV1alpha2       = "smi:v1alpha2"
	ProviderSMIV1alpha3       = "smi:v1alpha3"
	ProviderTraefik           = "traefik"
)

// CanarySpec is the desired state of a Canary.
//
// +kubebuilder:validation:XValidation:rule="!has(self.analysis) || !has(self.analysis.sessionAffinity) || (has(self.analysis.sessionAffinity.primaryCookieName) ? self.analysis.sessionAffinity.cookieName != self.analysis.sessionAffinity.primaryCookieName : size(self.analysis.sessionAffinity.cookieName) > 0)",message="analysis.sessionAffinity.cookieName must be set and differ from primaryCookieName"
type CanarySpec struct {
	// provider names the service mesh or ingress controller that shifts
	// traffic for this Canary. It overrides the controller's -mesh-provider
	// flag for this Canary only. Unset means the flag's value. Versioned
	// names (gatewayapi:v1, smi:v1alpha3) select the API version of the
	// routing objects.
	// +kubebuilder:validation:Enum=apisix;appmesh;"appmesh:v1beta2";contour;"gatewayapi:v1";"gatewayapi:v1beta1";gloo;istio;knative;kubernetes;kuma;linkerd;nginx;osm;skipper;"smi:v1alpha1";"smi:v1alpha2";"smi:v1alpha3";traefik
	// +optional
	Provider string `json:"provider,omitempty"`

	// metricsServer is the address of the Prometheus-compatible server that
	// answers the builtin metric queries (request-success-rate,
	// request-duration) for this Canary, for example http://prometheus:9090.
	// Unset means the controller's -metrics-server flag.
	// +optional
	MetricsServer string `json:"metricsServer,omitempty"`

	// targetRef names the workload whose revisions are analysed: a Deployment
	// or DaemonSet (apps/v1) in the Canary's namespace.
	// +required
	TargetRef LocalObjectReference `json:"targetRef"`

	// autoscalerRef names the autoscaler of the target workload. Sluice copies
	// it to <name>-primary pointing at the primary workload.
	// +optional
	AutoscalerRef *AutoscalerReference `json:"autoscalerRef,omitempty"`

	// ingressRef names the Ingress that exposes the target (NGINX and
	// Skipper providers). Sluice copies it to <name>-canary and never edits
	// the original.
	// +optional
	IngressRef *IngressReference `json:"ingressRef,omitempty"`

	// routeRef names the ApisixRoute that exposes the target (APISIX provider).
	// +optional
	RouteRef *RouteReference `json:"routeRef,omitempty"`

	// upstreamRef names a Gloo Upstream whose configuration is used as the
	// template for the upstreams Sluice generates (Gloo provider).
	// +optional
	UpstreamRef *UpstreamReference `json:"upstreamRef,omitempty"`

	// service describes the Services (<name>, <name>-primary, <name>-canary)
	// and the routing objects Sluice generates for the target.
	// +optional
	Service CanaryService `json:"service,omitzero"`

	// analysis is the schedule and the checks that every new revision goes
	// through before it is promoted.
	// +required
	Analysis *CanaryAnalysis `json:"analysis"`

	// progressDeadlineSeconds is how long, in seconds, Sluice waits for the
	// canary or primary workload to become ready before it counts the
	// revision as failed and rolls back. Defaults to 600, which also
	// applies to values below 1.
	// +kubebuilder:validation:Type=number
	// +kubebuilder:validation:Format=""
	// +kubebuilder:validation:Minimum=-2147483648
	// +kubebuilder:validation:Maximum=2147483647
	// +kubebuilder:validation:MultipleOf=1
	// +kubebuilder:default=600
	// +optional
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`

	// skipAnalysis promotes new revisions at once, without running metric
	// checks or webhooks. Defaults to false.
	// +optional
	SkipAnalysis bool `json:"skipAnalysis,omitempty"`

	// revertOnDeletion makes the deletion of the Canary restore the target
	// workload (scaled back up and receiving all traffic) before the Canary
	// goes away. Defaults to false: the generated objects are garbage
	// collected and the target stays scaled down.
	// +optional
	RevertOnDeletion bool `json:"revertOnDeletion,omitempty"`

	// suspend stops Sluice from acting on this Canary: no analysis runs and
	// no object is changed until it is set back to false. Defaults to false.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// LocalObjectReference names the workload a Canary manages.
type LocalObjectReference struct {
	// apiVersion of the referenced object, for example apps/v1.
	// +required
	APIVersion string `json:"apiVersion"`

	// kind of the referenced object: Deployment or DaemonSet (apps/v1), or
	// Service: a Kubernetes Service (v1), copied to <name>-primary and
	// <name>-canary for the router to split between, or a Knative Service
	// (serving.knative.dev/v1, provider knative), whose revisions are the
	// primary and the canary.
	// +kubebuilder:validation:Enum=DaemonSet;Deployment;Service
	// +required
	Kind string `json:"kind"`

	// name of the referenced object in the Canary's namespace.
	// +kubebuilder:validation:MinLength=1
	// +required
	Name string `json:"name"`
}

// AutoscalerReference names the autoscaler of the target workload.
type AutoscalerReference struct {
	// apiVersion of the autoscaler, for example autoscaling/v2 or keda.sh/v1alpha1.
	// +required
	APIVersion string `json:"apiVersion"`

	// kind of the autoscaler: HorizontalPodAutoscaler or ScaledObject (KEDA).
	// +kubebuilder:validation:Enum=HorizontalPodAutoscaler;ScaledObject
	// +required
	Kind string `json:"kind"`

	// name of the autoscaler in the Canary's namespace.
	// +required
	Name string `json:"name"`

	// primaryScalerQueries replaces, by trigger name, the queries of the
	// ScaledObject copied for the primary, so that the primary scales on its
	// own metrics; triggers without a name or not listed keep their query.
	// Unset, every trigger query of the copy has the target's name (and
	// <target>-canary) replaced by <target>-primary. Only used with
	// ScaledObject.
	// +optional
	PrimaryScalerQueries map[string]string `json:"primaryScalerQueries,omitempty"`

	// primaryScalerReplicas overrides the replica bounds of the primary's
	// autoscaler. Unset means the bounds of the target's autoscaler.
	// +optional
	PrimaryScalerReplicas *ScalerReplicas `json:"primaryScalerReplicas,omitempty"`
}

// ScalerReplicas are replica bounds for an autoscaler.
type ScalerReplicas struct {
	// minReplicas is the lower bound of replicas; at least 1.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MinReplicas *int32 `json:"minReplicas,omitempty"`

	// maxReplicas is the upper bound of replicas; at least 1.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`
}

// IngressReference names an Ingress in the Canary's namespace.
type IngressReference struct {
	// apiVersion of the Ingress, for example networking.k8s.io/v1.
	// +required
	APIVersion string `json:"apiVersion"`

	// kind must be Ingress.
	// +kubebuilder:validation:Enum=Ingress
	// +required
	Kind string `json:"kind"`

	// name of the Ingress in the Canary's namespace.
	// +required
	Name string `json:"name"`
}

// RouteReference names an ApisixRoute in the Canary's namespace.
type RouteReference struct {
	// apiVersion of the route, for example apisix.apache.org/v2.
	// +required
	APIVersion string `json:"apiVersion"`

	// kind must be ApisixRoute.
	// +kubebuilder:validation:Enum=ApisixRoute
	// +required
	Kind string `json:"kind"`

	// name of the ApisixRoute in the Canary's namespace.
	// +required
	Name string `json:"name"`
}

// UpstreamReference names a Gloo Upstream.
type UpstreamReference struct {
	// apiVersion of the upstream, for example gloo.solo.io/v1.
	// +required
	APIVersion string `json:"apiVersion"`

	// kind must be Upstream.
	// +kubebuilder:validation:Enum=Upstream
	// +required
	Kind string `json:"kind"`

	// name of the Upstream.
	// +required
	Name string `json:"name"`

	// namespace of the Upstream. Unset means the Canary's namespace.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}
