package v1beta2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

var (
	// GroupVersion is the API group and version of the kinds in this package.
	GroupVersion = schema.GroupVersion{Group: "appmesh.k8s.aws", Version: "v1beta2"}

	schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = schemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &VirtualNode{}, &VirtualNodeList{}, &VirtualRouter{}, &VirtualRouterList{},
		&VirtualService{}, &VirtualServiceList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// MeshReference names the mesh of an object. The App Mesh controller
// sets it; Sluice keeps it as found.
type MeshReference struct {
	// Name is the mesh's name.
	Name string `json:"name"`
	// UID is the mesh's UID.
	UID types.UID `json:"uid"`
}

// Duration is a length of time in a unit.
type Duration struct {
	// Unit is ms or s.
	Unit string `json:"unit"`
	// Value is the number of units.
	Value int64 `json:"value"`
}

// PortMapping is a port and its protocol.
type PortMapping struct {
	// Port is the port number.
	Port int64 `json:"port"`
	// Protocol is http, http2, grpc or tcp.
	Protocol string `json:"protocol"`
}

// VirtualNode is a logical pointer to the pods of a workload.
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
	// AWSName is the node's name in App Mesh; the controller sets it.
	AWSName *string `json:"awsName,omitempty"`
	// PodSelector selects the node's pods.
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`
	// Listeners are the ports the node receives requests on.
	Listeners []Listener `json:"listeners,omitempty"`
	// ServiceDiscovery says how the node's instances are found.
	ServiceDiscovery *ServiceDiscovery `json:"serviceDiscovery,omitempty"`
	// Backends are the virtual services the node sends requests to.
	Backends []Backend `json:"backends,omitempty"`
	// Logging holds the node's access log.
	Logging *Logging `json:"logging,omitempty"`
	// MeshRef names the node's mesh; the controller sets it.
	MeshRef *MeshReference `json:"meshRef,omitempty"`
}

// Listener is a port a node receives requests on.
type Listener struct {
	// PortMapping is the port and its protocol.
	PortMapping PortMapping `json:"portMapping"`
	// Timeout holds the listener's timeouts.
	Timeout *ListenerTimeout `json:"timeout,omitempty"`
}

// ListenerTimeout holds a listener's timeouts by protocol.
type ListenerTimeout struct {
	// HTTP holds the timeouts of HTTP requests.
	HTTP *HTTPTimeout `json:"http,omitempty"`
}

// HTTPTimeout holds the timeouts of HTTP requests.
type HTTPTimeout struct {
	// PerRequest is the timeout of a request.
	PerRequest *Duration `json:"perRequest,omitempty"`
}

// ServiceDiscovery says how a node's instances are found.
type ServiceDiscovery struct {
	// DNS finds them by a DNS name.
	DNS *DNSServiceDiscovery `json:"dns,omitempty"`
}

// DNSServiceDiscovery finds a node's instances by a DNS name.
type DNSServiceDiscovery struct {
	// Hostname is the DNS name.
	Hostname string `json:"hostname"`
}

// Backend is a virtual service a node sends requests to.
type Backend struct {
	// VirtualService names the virtual service.
	VirtualService VirtualServiceBackend `json:"virtualService"`
}

// VirtualServiceBackend names a virtual service, by reference or ARN.
type VirtualServiceBackend struct {
	// VirtualServiceRef names a VirtualService object.
	VirtualServiceRef *Reference `json:"virtualServiceRef,omitempty"`
	// VirtualServiceARN is the ARN of a virtual service in App Mesh.
	VirtualServiceARN *string `json:"virtualServiceARN,omitempty"`
}

// Reference names an object, in the referrer's namespace unless set.
type Reference struct {
	// Namespace is the object's namespace.
	Namespace *string `json:"namespace,omitempty"`
	// Name is the object's name.
	Name string `json:"name"`
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

// VirtualRouter spreads the requests of a virtual service over virtual
// nodes.
//
// +kubebuilder:object:root=true
type VirtualRouter struct {
	metav1.TypeMeta `json:",inline"`
	// ObjectMeta is the standard object metadata.
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec describes the router.
	Spec VirtualRouterSpec `json:"spec"`
}

// VirtualRouterSpec describes a virtual router.
type VirtualRouterSpec struct {
	// AWSName is the router's name in App Mesh; the controller sets it.
	AWSName *string `json:"awsName,omitempty"`
	// Listeners are the ports the router receives requests on.
	Listeners []VirtualRouterListener `json:"listeners,omitempty"`
	// Routes are the router's routes.
	Routes []Route `json:"routes,omitempty"`
	// MeshRef names the router's mesh; the controller sets it.
	MeshRef *MeshReference `json:"meshRef,omitempty"`
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
	// HTTPRoute is an HTTP route.
	HTTPRoute *HTTPRoute `json:"httpRoute,omitempty"`
}

// HTTPRoute sends the matching requests to weighted virtual nodes.
type HTTPRoute struct {
	// Match holds the conditions a request must meet.
	Match HTTPRouteMatch `json:"match"`
	// Action is where the requests go.
	Action HTTPRouteAction `json:"action"`
	// RetryPolicy retries failed requests.
	RetryPolicy *HTTPRetryPolicy `json:"retryPolicy,omitempty"`
	// Timeout holds the route's timeouts.
	Timeout *HTTPTimeout `json:"timeout,omitempty"`
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
	// VirtualNodeRef names the node.
	VirtualNodeRef *Reference `json:"virtualNodeRef,omitempty"`
	// Weight is the node's share, relative to the sum of the route's weights.
	Weight int64 `json:"weight"`
}

// HTTPRetryPolicy retries failed requests.
type HTTPRetryPolicy struct {
	// HTTPRetryEvents are the failures that are retried, such as
	// gateway-error.
	HTTPRetryEvents []string `json:"httpRetryEvents,omitempty"`
	// MaxRetries is the number of retries.
	MaxRetries int64 `json:"maxRetries"`
	// PerRetryTimeout is the timeout of each try.
	PerRetryTimeout Duration `json:"perRetryTimeout"`
}

// VirtualRouterList is a list of VirtualRouters.
//
// +kubebuilder:object:root=true
type VirtualRouterList struct {
	metav1.TypeMeta `json:",inline"`
	// ListMeta is the standard list metadata.
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the VirtualRouters in the list.
	Items []VirtualRouter `json:"items"`
}

// VirtualService is a service of a mesh, named after the DNS name its
// clients call, provided by a virtual router.
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
	// AWSName is the service's name in App Mesh; the controller sets it.
	AWSName *string `json:"awsName,omitempty"`
	// Provider is what serves the service's requests.
	Provider *VirtualServiceProvider `json:"provider,omitempty"`
	// MeshRef names the service's mesh; the controller sets it.
	MeshRef *MeshReference `json:"meshRef,omitempty"`
}

// VirtualServiceProvider is what serves a virtual service's requests.
type VirtualServiceProvider struct {
	// VirtualRouter is a virtual router.
	VirtualRouter *VirtualRouterServiceProvider `json:"virtualRouter,omitempty"`
}

// VirtualRouterServiceProvider names the virtual router of a service.
type VirtualRouterServiceProvider struct {
	// VirtualRouterRef names a VirtualRouter object.
	VirtualRouterRef *Reference `json:"virtualRouterRef,omitempty"`
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
