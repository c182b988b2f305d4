package v2

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var (
	// GroupVersion is the API group and version of the kinds in this package.
	GroupVersion = schema.GroupVersion{Group: "apisix.apache.org", Version: "v2"}

	schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = schemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &ApisixRoute{}, &ApisixRouteList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// ApisixRoute holds HTTP and stream routes that APISIX serves.
//
// +kubebuilder:object:root=true
type ApisixRoute struct {
	metav1.TypeMeta `json:",inline"`
	// ObjectMeta is the standard object metadata.
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec holds the routes.
	Spec ApisixRouteSpec `json:"spec"`
}

// ApisixRouteSpec holds the routes of an ApisixRoute.
type ApisixRouteSpec struct {
	// IngressClassName is the ingress class of the APISIX controller that
	// serves the routes.
	IngressClassName string `json:"ingressClassName,omitempty"`
	// HTTP are the HTTP routes.
	HTTP []HTTPRoute `json:"http,omitempty"`
	// Stream are the TCP and UDP routes, kept as written.
	Stream []apiextensionsv1.JSON `json:"stream,omitempty"`
}

// HTTPRoute is an HTTP route of an ApisixRoute. The fields Sluice does not
// change are kept as JSON, as written.
type HTTPRoute struct {
	// Name is the route's name, unique in the ApisixRoute.
	Name string `json:"name"`
	// Priority orders the routes that match the same request: the highest
	// wins.
	Priority int `json:"priority,omitempty"`
	// Timeout holds the timeouts towards the backends.
	Timeout *apiextensionsv1.JSON `json:"timeout,omitempty"`
	// Match holds the conditions a request must meet.
	Match *apiextensionsv1.JSON `json:"match,omitempty"`
	// Backends are the Services the requests go to, by weight.
	Backends []Backend `json:"backends,omitempty"`
	// Upstreams are ApisixUpstreams the requests go to.
	Upstreams []apiextensionsv1.JSON `json:"upstreams,omitempty"`
	// Websocket turns on WebSocket proxying.
	Websocket *bool `json:"websocket,omitempty"`
	// PluginConfigName names an ApisixPluginConfig.
	PluginConfigName string `json:"plugin_config_name,omitempty"`
	// PluginConfigNamespace is the namespace of that ApisixPluginConfig.
	PluginConfigNamespace string `json:"plugin_config_namespace,omitempty"`
	// Plugins are the route's plugins.
	Plugins []apiextensionsv1.JSON `json:"plugins,omitempty"`
	// Authentication holds the route's authentication.
	Authentication *apiextensionsv1.JSON `json:"authentication,omitempty"`
}

// Backend is a Kubernetes Service with its share of a route's requests.
type Backend struct {
	// ServiceName is the Service's name, in the route's namespace.
	ServiceName string `json:"serviceName"`
	// ServicePort is the Service's port, by number or name.
	ServicePort intstr.IntOrString `json:"servicePort"`
	// ResolveGranularity is endpoint (the pods) or service (the cluster IP).
	ResolveGranularity string `json:"resolveGranularity,omitempty"`
	// Weight is the Service's share of the requests, relative to the sum of
	// the weights of the route's backends.
	Weight *int `json:"weight,omitempty"`
	// Subset names a subset of the Service's pods.
	Subset string `json:"subset,omitempty"`
}

// ApisixRouteList is a list of ApisixRoutes.
//
// +kubebuilder:object:root=true
type ApisixRouteList struct {
	metav1.TypeMeta `json:",inline"`
	// ListMeta is the standard list metadata.
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the ApisixRoutes in the list.
	Items []ApisixRoute `json:"items"`
}
