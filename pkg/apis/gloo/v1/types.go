package v1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of the kinds in this package.
	GroupVersion = schema.GroupVersion{Group: "gloo.solo.io", Version: "v1"}

	schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = schemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &Upstream{}, &UpstreamList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// Upstream is a destination that Gloo's Envoy proxies send requests to.
//
// +kubebuilder:object:root=true
type Upstream struct {
	metav1.TypeMeta `json:",inline"`
	// ObjectMeta is the standard object metadata.
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec says where the upstream is and how Envoy talks to it.
	Spec UpstreamSpec `json:"spec"`
}

// UpstreamSpec is the part of an Upstream's spec that Sluice writes: the
// Kubernetes Service it stands for and the connection settings it copies,
// as they are, from a template Upstream.
type UpstreamSpec struct {
	// Kube names the Kubernetes Service the upstream stands for.
	Kube *KubeUpstream `json:"kube,omitempty"`
	// Labels are labels of the upstream's endpoints.
	Labels map[string]string `json:"labels,omitempty"`
	// SslConfig is the TLS configuration towards the upstream.
	SslConfig *apiextensionsv1.JSON `json:"sslConfig,omitempty"`
	// CircuitBreakers are Envoy's circuit breaker thresholds.
	CircuitBreakers *apiextensionsv1.JSON `json:"circuitBreakers,omitempty"`
	// ConnectionConfig holds the connection limits and timeouts.
	ConnectionConfig *apiextensionsv1.JSON `json:"connectionConfig,omitempty"`
	// LoadBalancerConfig is the load balancing policy.
	LoadBalancerConfig *apiextensionsv1.JSON `json:"loadBalancerConfig,omitempty"`
	// UseHTTP2 makes Envoy speak HTTP/2 to the upstream.
	UseHTTP2 *apiextensionsv1.JSON `json:"useHttp2,omitempty"`
	// InitialStreamWindowSize is the HTTP/2 initial stream window, in bytes.
	InitialStreamWindowSize *apiextensionsv1.JSON `json:"initialStreamWindowSize,omitempty"`
	// InitialConnectionWindowSize is the HTTP/2 initial connection window,
	// in bytes.
	InitialConnectionWindowSize *apiextensionsv1.JSON `json:"initialConnectionWindowSize,omitempty"`
	// HTTPProxyHostname is the host name of an HTTP CONNECT tunnel through
	// the upstream.
	HTTPProxyHostname *apiextensionsv1.JSON `json:"httpProxyHostName,omitempty"`
}

// KubeUpstream is a Kubernetes Service and the pods it selects.
type KubeUpstream struct {
	// ServiceName is the Service's name.
	ServiceName string `json:"serviceName"`
	// ServiceNamespace is the Service's namespace.
	ServiceNamespace string `json:"serviceNamespace"`
	// ServicePort is the Service's port number.
	ServicePort int32 `json:"servicePort"`
	// Selector selects the Service's pods.
	Selector map[string]string `json:"selector,omitempty"`
}

// UpstreamList is a list of Upstreams.
//
// +kubebuilder:object:root=true
type UpstreamList struct {
	metav1.TypeMeta `json:",inline"`
	// ListMeta is the standard list metadata.
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the Upstreams in the list.
	Items []Upstream `json:"items"`
}
