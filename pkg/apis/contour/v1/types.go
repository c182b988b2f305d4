package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of the kinds in this package.
	GroupVersion = schema.GroupVersion{Group: "projectcontour.io", Version: "v1"}

	schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = schemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &HTTPProxy{}, &HTTPProxyList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// HTTPProxy routes HTTP requests to Services. Without a virtual host it
// is not served on its own: a root HTTPProxy includes it.
//
// +kubebuilder:object:root=true
type HTTPProxy struct {
	metav1.TypeMeta `json:",inline"`
	// ObjectMeta is the standard object metadata.
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the routing.
	Spec HTTPProxySpec `json:"spec"`
}

// HTTPProxySpec is the desired routing of an HTTPProxy.
type HTTPProxySpec struct {
	// VirtualHost makes the HTTPProxy a root one, served for a host name.
	// It is nil for an HTTPProxy that another one includes.
	VirtualHost *VirtualHost `json:"virtualhost,omitempty"`
	// Routes are the routes, each with the conditions a request must meet
	// and the Services it goes to.
	Routes []Route `json:"routes,omitempty"`
	// IngressClassName selects the Contour instance that serves the
	// HTTPProxy. Empty means the instances that serve objects without a
	// class.
	IngressClassName string `json:"ingressClassName,omitempty"`
}

// VirtualHost is the host name a root HTTPProxy is served for.
type VirtualHost struct {
	// Fqdn is the fully qualified host name, such as app.example.com.
	Fqdn string `json:"fqdn"`
}

// Route sends the requests that meet all its conditions to its Services.
type Route struct {
	// Conditions must all hold for a request to take the route. Without
	// conditions the route takes every request (the path prefix "/").
	Conditions []MatchCondition `json:"conditions,omitempty"`
	// Services receive the route's requests, split by weight, and the
	// mirror Service receives a copy of them.
	Services []Service `json:"services"`
	// TimeoutPolicy limits how long a request may take.
	TimeoutPolicy *TimeoutPolicy `json:"timeoutPolicy,omitempty"`
	// RetryPolicy retries failed requests.
	RetryPolicy *RetryPolicy `json:"retryPolicy,omitempty"`
	// RequestHeadersPolicy changes the headers of requests before they are
	// forwarded.
	RequestHeadersPolicy *HeadersPolicy `json:"requestHeadersPolicy,omitempty"`
	// ResponseHeadersPolicy changes the headers of responses before they
	// are returned.
	ResponseHeadersPolicy *HeadersPolicy `json:"responseHeadersPolicy,omitempty"`
}

// MatchCondition is one condition of a route; exactly one field is set.
type MatchCondition struct {
	// Prefix matches the start of the request path.
	Prefix string `json:"prefix,omitempty"`
	// Header matches a request header.
	Header *HeaderMatchCondition `json:"header,omitempty"`
}

// HeaderMatchCondition matches a request header by name; exactly one of
// Present, Contains and Exact is set.
type HeaderMatchCondition struct {
	// Name is the header's name, compared without regard to case.
	Name string `json:"name"`
	// Present matches when the header is sent, whatever its value.
	Present bool `json:"present,omitempty"`
	// Contains matches when the header's value contains this string.
	Contains string `json:"contains,omitempty"`
	// Exact matches when the header's value is this string.
	Exact string `json:"exact,omitempty"`
}

// Service is a Kubernetes Service that a route sends requests to.
type Service struct {
	// Name is the Service's name, in the HTTPProxy's namespace.
	Name string `json:"name"`
	// Port is the Service's port number.
	Port int32 `json:"port"`
	// Weight is the Service's share of the route's requests, relative to
	// the sum of the weights of the route's Services. When no Service of a
	// route has a weight, Contour splits the requests evenly, so Sluice
	// always writes it. On a mirror Service it is the percentage of the
	// requests copied to it.
	Weight int64 `json:"weight"`
	// Mirror makes the Service receive a copy of the route's requests,
	// whose answers are discarded, instead of a share of them.
	Mirror bool `json:"mirror,omitempty"`
	// RequestHeadersPolicy changes the headers of the requests sent to
	// this Service.
	RequestHeadersPolicy *HeadersPolicy `json:"requestHeadersPolicy,omitempty"`
}

// TimeoutPolicy limits how long a request may take.
type TimeoutPolicy struct {
	// Response is how long Envoy waits for the whole answer, as a duration
	// such as 30s, or "infinity".
	Response string `json:"response,omitempty"`
}

// RetryPolicy retries failed requests.
type RetryPolicy struct {
	// Count is the number of retries; Contour's default is 1.
	Count int64 `json:"count,omitempty"`
	// PerTryTimeout is the timeout of each attempt, as a duration such as
	// 2s.
	PerTryTimeout string `json:"perTryTimeout,omitempty"`
	// RetryOn are the conditions that cause a retry, such as 5xx or
	// gateway-error; empty means 5xx.
	RetryOn []string `json:"retryOn,omitempty"`
}

// HeadersPolicy sets and removes HTTP headers.
type HeadersPolicy struct {
	// Set are headers set to a value, replacing any earlier value.
	Set []HeaderValue `json:"set,omitempty"`
	// Remove are the names of headers removed.
	Remove []string `json:"remove,omitempty"`
}

// HeaderValue is an HTTP header and its value.
type HeaderValue struct {
	// Name is the header's name.
	Name string `json:"name"`
	// Value is the header's value.
	Value string `json:"value"`
}

// HTTPProxyList is a list of HTTPProxies.
//
// +kubebuilder:object:root=true
type HTTPProxyList struct {
	metav1.TypeMeta `json:",inline"`
	// ListMeta is the standard list metadata.
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the HTTPProxies in the list.
	Items []HTTPProxy `json:"items"`
}
