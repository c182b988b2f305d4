package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of the kinds in this package.
	GroupVersion = schema.GroupVersion{Group: "appmesh.k8s.aws", Version: "v1beta1"}

	schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = schemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &VirtualNode{}, &VirtualNodeList{}, &VirtualService{}, &VirtualServiceList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// VirtualNode is a logical pointer to a workload: the host name its
// requests are sent to, its listeners and the virtual services it calls.
//
// +kubebuilder:object:root=true
type VirtualNode struct {
	metav1.TypeMeta `json:",inline"`
	// ObjectMeta is the standard object metadata.
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec describes the node.
	Spec VirtualNodeSpec `json:"spec"`
}

// VirtualNodeSpec describes a virtual node.
type VirtualNodeSpec struct {
	// MeshName is the App Mesh mesh of the node.
	MeshName string `json:"meshName"`
	// Listeners are the ports the node receives requests on.
	Listeners []Listener `json:"listeners,omitempty"`
	// ServiceDiscovery says how the node's instances are found.
	ServiceDiscovery *ServiceDiscovery `json:"serviceDiscovery,omitempty"`
	// Backends are the virtual services the node sends requests to.
	Backends []Backend `json:"backends,omitempty"`
	// Logging holds the node's access log.
	Logging *Logging `json:"logging,omitempty"`
}

// Listener is a port a node receives requests on.
type Listener struct {
	// PortMapping is the port and its protocol.
	PortMapping PortMapping `json:"portMapping"`
}

// PortMapping is a port and its protocol.
type PortMapping struct {
	// Port is the port number.
	Port int64 `json:"port"`
	// Protocol is http, http2, grpc or tcp.
	Protocol string `json:"protocol"`
}

// ServiceDiscovery says how a node's instances are found.
type ServiceDiscovery struct {
	// DNS finds them by a DNS name.
	DNS *DNSServiceDiscovery `json:"dns,omitempty"`
}

// DNSServiceDiscovery finds a node's instances by a DNS name.
type DNSServiceDiscovery struct {
	// HostName is the DNS name.
	HostName string `json:"hostName"`
}

// Backend is a virtual service a node sends requests to.
type Backend struct {
	// VirtualService names the virtual service.
	VirtualService VirtualServiceBackend `json:"virtualService"`
}

// VirtualServiceBackend names a virtual service.
type VirtualServiceBackend struct {
	// VirtualServiceName is the virtual service's name.
	VirtualServiceName string `json:"virtualServiceName"`
}

// Logging holds a node's access log.
type Logging struct {
	// AccessLog is where requests are logged.
	AccessLog *AccessLog `json:"accessLog,omitempty"`
}

// AccessLog is where requests are logged.
type AccessLog struct {
	// File is a file of the Envoy container.
	File *FileAccessLog `json:"file,omitempty"`
}

// FileAccessLog is a file requests are logged to.
type FileAccessLog struct {
	// Path is the file's path.
	Path string `json:"path"`
}

// VirtualNodeList is a list of VirtualNodes.
//
// +kubebuilder:object:root=true
type VirtualNodeList struct {
	metav1.TypeMeta `json:",inline"`
	// ListMeta is the standard list metadata.
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the VirtualNodes in the list.
	Items []VirtualNode `json:"items"`
}

// VirtualService is a service of a mesh, named after the DNS name its
// clients call, with the virtual router and routes that spread its
// requests over virtual nodes.
//
// +kubebuilder:object:root=true
type VirtualService struct {
	metav1.TypeMeta `json:",inline"`
	// ObjectMeta is the standard object metadata.
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec describes the service.
	Spec VirtualServiceSpec `json:"spec"`
}

// VirtualServiceSpec describes a virtual service.
type VirtualServiceSpec struct {
	// MeshName is the App Mesh mesh of the service.
	MeshName string `json:"meshName"`
	// VirtualRouter is the router of the service's requests.
	VirtualRouter *VirtualRouter `json:"virtualRouter,omitempty"`
	// Routes are the router's routes.
	Routes []Route `json:"routes,omitempty"`
}

// VirtualRouter is the router of a virtual service.
type VirtualRouter struct {
	// Name is the router's name.
	Name string `json:"name"`
	// Listeners are the ports the router receives requests on.
	Listeners []VirtualRouterListener `json:"listeners,omitempty"`
}

// VirtualRouterListener is a port a router receives requests on.
type VirtualRouterListener struct {
	// PortMapping is the port and its protocol.
	PortMapping PortMapping `json:"portMapping"`
}

// Route is a route of a virtual router.
type Route struct {
	// Name is the route's name.
	Name string `json:"name"`
	// Priority orders the routes, the lowest first.
	Priority *int64 `json:"priority,omitempty"`
	// HTTP is an HTTP route.
	HTTP *HTTPRoute `json:"http,omitempty"`
}

// HTTPRoute sends the matching requests to weighted virtual nodes.
type HTTPRoute struct {
	// Match holds the conditions a request must meet.
	Match HTTPRouteMatch `json:"match"`
	// Action is where the requests go.
	Action HTTPRouteAction `json:"action"`
	// RetryPolicy retries failed requests.
	RetryPolicy *HTTPRetryPolicy `json:"retryPolicy,omitempty"`
}

// HTTPRouteMatch holds the conditions of an HTTP route.
type HTTPRouteMatch struct {
	// Prefix is the path prefix.
	Prefix string `json:"prefix"`
	// Headers are conditions on request headers.
	Headers []HTTPRouteHeader `json:"headers,omitempty"`
}

// HTTPRouteHeader is a condition on a request header.
type HTTPRouteHeader struct {
	// Name is the header's name.
	Name string `json:"name"`
	// Match is how its value must match.
	Match *HeaderMatchMethod `json:"match,omitempty"`
}

// HeaderMatchMethod is how a header's value must match; one field is set.
type HeaderMatchMethod struct {
	// Exact is the whole value.
	Exact *string `json:"exact,omitempty"`
	// Prefix is the start of the value.
	Prefix *string `json:"prefix,omitempty"`
	// Regex is a regular expression the value must match.
	Regex *string `json:"regex,omitempty"`
	// Suffix is the end of the value.
	Suffix *string `json:"suffix,omitempty"`
}

// HTTPRouteAction spreads a route's requests over virtual nodes.
type HTTPRouteAction struct {
	// WeightedTargets are the virtual nodes and their weights.
	WeightedTargets []WeightedTarget `json:"weightedTargets"`
}

// WeightedTarget is a virtual node with its share of the requests.
type WeightedTarget struct {
	// VirtualNodeName is the node's name.
	VirtualNodeName string `json:"virtualNodeName"`
	// Weight is the node's share, relative to the sum of the route's weights.
	Weight int64 `json:"weight"`
}

// HTTPRetryPolicy retries failed requests.
type HTTPRetryPolicy struct {
	// PerRetryTimeoutMillis is the timeout of each try, in milliseconds.
	PerRetryTimeoutMillis *int64 `json:"perRetryTimeoutMillis,omitempty"`
	// MaxRetries is the number of retries.
	MaxRetries *int64 `json:"maxRetries,omitempty"`
	// HTTPRetryEvents are the failures that are retried, such as
	// gateway-error.
	HTTPRetryEvents []string `json:"httpRetryEvents,omitempty"`
}

// VirtualServiceList is a list of VirtualServices.
//
// +kubebuilder:object:root=true
type VirtualServiceList struct {
	metav1.TypeMeta `json:",inline"`
	// ListMeta is the standard list metadata.
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the VirtualServices in the list.
	Items []VirtualService `json:"items"`
}
