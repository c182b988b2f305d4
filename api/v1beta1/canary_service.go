package v1beta1

import (
	"k8s.io/apimachinery/pkg/util/intstr"
)

// CanaryService describes the Services Sluice generates for the target
// (<name>, <name>-primary and <name>-canary) and the routing objects of the
// traffic provider.
type CanaryService struct {
	// name is the name of the apex Service that clients call; the primary
	// and canary Services are named <name>-primary and <name>-canary.
	// Defaults to the name of the target workload.
	// +optional
	Name string `json:"name,omitempty"`

	// port is the port number the generated Services expose.
	// +kubebuilder:validation:Type=number
	// +kubebuilder:validation:Format=""
	// +kubebuilder:validation:Minimum=-2147483648
	// +kubebuilder:validation:Maximum=2147483647
	// +kubebuilder:validation:MultipleOf=1
	// +required
	Port int32 `json:"port"`

	// portName is the name of the Service port. Defaults to http.
	// +optional
	PortName string `json:"portName,omitempty"`

	// appProtocol is the application protocol of the Service port, for
	// example http, grpc or tcp. With Istio, tcp routes the traffic as TCP.
	// +optional
	AppProtocol string `json:"appProtocol,omitempty"`

	// trafficDistribution is copied to the generated Services to prefer
	// endpoints that are topologically close to the client.
	// +kubebuilder:validation:Enum=PreferClose;PreferSameZone;PreferSameNode
	// +optional
	TrafficDistribution string `json:"trafficDistribution,omitempty"`

	// targetPort is the container port, by number or by name, that the
	// Services send traffic to. Defaults to port.
	// +optional
	TargetPort intstr.IntOrString `json:"targetPort,omitempty"`

	// portDiscovery adds every container port of the target's pod template
	// to the generated Services, besides port. Defaults to false.
	// +optional
	PortDiscovery bool `json:"portDiscovery,omitempty"`

	// headless makes the generated primary and canary Services headless
	// (clusterIP None). Defaults to false.
	// +optional
	Headless bool `json:"headless,omitempty"`

	// timeout is the HTTP or gRPC request timeout set on the route, as a
	// duration such as 5s. Unset means the provider's default.
	// +optional
	Timeout string `json:"timeout,omitempty"`

	// backendTimeout is the timeout of each request from the gateway to a
	// backend, as a duration such as 2s (Gateway API only).
	// +optional
	BackendTimeout string `json:"backendTimeout,omitempty"`

	// meshName is the App Mesh mesh that the generated virtual nodes join
	// (App Mesh only).
	// +optional
	MeshName string `json:"meshName,omitempty"`

	// backends are the App Mesh virtual services the workload calls (App
	// Mesh only).
	// +optional
	Backends []string `json:"backends,omitempty"`

	// hosts are the host names the route answers for. Istio defaults to the
	// apex Service name; Gateway API uses them as the HTTPRoute hostnames.
	// +optional
	Hosts []string `json:"hosts,omitempty"`

	// delegation makes the generated Istio VirtualService a delegate of
	// another VirtualService: it then carries no hosts or gateways.
	// Defaults to false.
	// +optional
	Delegation bool `json:"delegation,omitempty"`

	// match are request conditions (Istio HTTPMatchRequest) that every route
	// of the generated VirtualService requires, for example a URI prefix.
	// +optional
	Match []HTTPMatchRequest `json:"match,omitempty"`

	// retries is the retry policy of the route.
	// +optional
	Retries *HTTPRetry `json:"retries,omitempty"`

	// rewrite rewrites the URI or authority of requests before they reach
	// the backends.
	// +optional
	Rewrite *HTTPRewrite `json:"rewrite,omitempty"`

	// mirror are Gateway API request mirror filters added to the HTTPRoute.
	// +optional
	Mirror []HTTPRequestMirrorFilter `json:"mirror,omitempty"`

	// headers are request and response header operations applied by the route.
	// +optional
	Headers *Headers `json:"headers,omitempty"`

	// gateways are the Istio gateways the VirtualService is bound to, as
	// [namespace/]name. Defaults to mesh (the sidecars).
	// +optional
	Gateways []string `json:"gateways,omitempty"`

	// gatewayRefs are the Gateway API parents (Gateways) the generated
	// HTTPRoute attaches to. Required by the Gateway API provider.
	// +kubebuilder:validation:MaxItems=32
	// +optional
	GatewayRefs []ParentReference `json:"gatewayRefs,omitempty"`

	// corsPolicy is the cross-origin resource sharing policy of the route.
	// +optional
	CorsPolicy *CorsPolicy `json:"corsPolicy,omitempty"`

	// trafficPolicy is the Istio traffic policy set on the generated
	// DestinationRules for the primary and canary.
	// +optional
	TrafficPolicy *TrafficPolicy `json:"trafficPolicy,omitempty"`

	// apex holds labels and annotations for the apex Service (and the
	// generated routing object, where the provider has one).
	// +optional
	Apex *CustomMetadata `json:"apex,omitempty"`

	// primary holds labels and annotations for the <name>-primary Service.
	// +optional
	Primary *CustomMetadata `json:"primary,omitempty"`

	// canary holds labels and annotations for the <name>-canary Service.
	// +optional
	Canary *CustomMetadata `json:"canary,omitempty"`

	// unmanagedMetadata lists label and annotation keys on generated objects
	// that Sluice leaves alone, so that other controllers can own them.
	// +optional
	UnmanagedMetadata *UnmanagedMetadata `json:"unmanagedMetadata,omitempty"`
}

// CustomMetadata is a set of labels and annotations to put on a generated object.
type CustomMetadata struct {
	// labels are added to the object's labels.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// annotations are added to the object's annotations.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// UnmanagedMetadata lists metadata keys that Sluice does not manage.
type UnmanagedMetadata struct {
	// annotations are annotation keys that Sluice neither sets nor removes.
	// +optional
	Annotations []string `json:"annotations,omitempty"`

	// labels are label keys that Sluice neither sets nor removes.
	// +optional
	Labels []string `json:"labels,omitempty"`
}

// ParentReference names a Gateway API parent resource (usually a Gateway)
// that a generated HTTPRoute attaches to.
type ParentReference struct {
	// group of the parent. Defaults to gateway.networking.k8s.io.
	// +kubebuilder:default=gateway.networking.k8s.io
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	Group *string `json:"group,omitempty"`

	// kind of the parent. Defaults to Gateway.
	// +kubebuilder:default=Gateway
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$`
	// +optional
	Kind *string `json:"kind,omitempty"`

	// namespace of the parent. Unset means the Canary's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace *string `json:"namespace,omitempty"`

	// name of the parent.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// sectionName selects one listener of the parent Gateway. Unset means
	// every listener that allows the route.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	SectionName *string `json:"sectionName,omitempty"`

	// port selects the listeners of the parent Gateway by port number.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port *int32 `json:"port,omitempty"`
}

// HTTPRequestMirrorFilter sends a copy of each request to another backend
// (Gateway API request mirror filter).
type HTTPRequestMirrorFilter struct {
	// backendRef is the backend that receives the mirrored requests.
	// +required
	BackendRef BackendObjectReference `json:"backendRef"`
}

// BackendObjectReference names a Gateway API backend, usually a Service.
//
// +kubebuilder:validation:XValidation:message="Must have port for Service reference",rule="(size(self.group) == 0 && self.kind == 'Service') ? has(self.port) : true"
type BackendObjectReference struct {
	// group of the backend; empty for the core group. Defaults to "".
	// +kubebuilder:default=""
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	Group *string `json:"group,omitempty"`

	// kind of the backend. Defaults to Service.
	// +kubebuilder:default=Service
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$`
	// +optional
	Kind *string `json:"kind,omitempty"`

	// name of the backend.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// namespace of the backend. Unset means the route's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace *string `json:"namespace,omitempty"`

	// port of the backend; required when the backend is a Service.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port *int32 `json:"port,omitempty"`
}

// HTTPRetry is a retry policy for HTTP requests.
type HTTPRetry struct {
	// attempts is the number of retries for a request.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`

	// perTryTimeout is the timeout of each attempt, as a duration such as 2s.
	// +optional
	PerTryTimeout string `json:"perTryTimeout,omitempty"`

	// retryOn lists the conditions that cause a retry, comma separated, for
	// example gateway-error,connect-failure,refused-stream.
	// +optional
	RetryOn string `json:"retryOn,omitempty"`
}

// HTTPRewrite rewrites parts of a request before it is forwarded.
type HTTPRewrite struct {
	// uri replaces the path (or the matched prefix) of the request.
	// +optional
	URI string `json:"uri,omitempty"`

	// authority replaces the Host/Authority header of the request.
	// +optional
	Authority string `json:"authority,omitempty"`

	// type is the Gateway API path modifier: ReplaceFullPath or
	// ReplacePrefixMatch. Unset means ReplacePrefixMatch.
	// +optional
	Type string `json:"type,omitempty"`
}

// Headers are header operations for requests and responses.
type Headers struct {
	// request operations apply to requests before they reach the backends.
	// +optional
	Request *HeaderOperations `json:"request,omitempty"`

	// response operations apply to responses before they reach the client.
	// +optional
	Response *HeaderOperations `json:"response,omitempty"`
}

// HeaderOperations set, add and remove HTTP headers.
type HeaderOperations struct {
	// set overwrites the named headers with the given values.
	// +optional
	Set map[string]string `json:"set,omitempty"`

	// add appends the given values to the named headers.
	// +optional
	Add map[string]string `json:"add,omitempty"`

	// remove deletes the named headers.
	// +optional
	Remove []string `json:"remove,omitempty"`
}

// CorsPolicy is a cross-origin resource sharing policy.
type CorsPolicy struct {
	// allowOrigin lists the origins allowed to make CORS requests, matched
	// exactly. Deprecated by Istio in favour of allowOrigins.
	// +optional
	AllowOrigin []string `json:"allowOrigin,omitempty"`

	// allowOrigins lists string matches for the origins allowed to make CORS
	// requests.
	// +optional
	AllowOrigins []StringMatch `json:"allowOrigins,omitempty"`

	// allowMethods lists the HTTP methods allowed in CORS requests.
	// +optional
	AllowMethods []string `json:"allowMethods,omitempty"`

	// allowHeaders lists the request headers allowed in CORS requests.
	// +optional
	AllowHeaders []string `json:"allowHeaders,omitempty"`

	// exposeHeaders lists the response headers browsers may read.
	// +optional
	ExposeHeaders []string `json:"exposeHeaders,omitempty"`

	// maxAge is how long browsers may cache a preflight answer, as a
	// duration such as 24h.
	// +optional
	MaxAge string `json:"maxAge,omitempty"`

	// allowCredentials allows requests with credentials (cookies, HTTP
	// authentication). Unset means the provider's default.
	// +optional
	AllowCredentials *bool `json:"allowCredentials,omitempty"`
}
