package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of the kinds in this package.
	GroupVersion = schema.GroupVersion{Group: "gateway.solo.io", Version: "v1"}

	schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = schemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &RouteTable{}, &RouteTableList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// RouteTable is a list of routes that a Gloo VirtualService delegates
// requests to.
//
// +kubebuilder:object:root=true
type RouteTable struct {
	metav1.TypeMeta `json:",inline"`
	// ObjectMeta is the standard object metadata.
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec holds the routes.
	Spec RouteTableSpec `json:"spec"`
}

// RouteTableSpec holds the routes of a RouteTable, tried in order.
type RouteTableSpec struct {
	// Routes are the routes; the first whose matchers match a request
	// takes it.
	Routes []Route `json:"routes,omitempty"`
}

// Route sends the requests that match one of its matchers to its action's
// destinations.
type Route struct {
	// Matchers are alternatives: a request matches the route when it
	// matches one of them. None means every request.
	Matchers []Matcher `json:"matchers,omitempty"`
	// InheritablePathMatchers makes the route inherit the path matchers of
	// the route that delegates to the table.
	InheritablePathMatchers *bool `json:"inheritablePathMatchers,omitempty"`
	// RouteAction says where the matching requests go.
	RouteAction *RouteAction `json:"routeAction,omitempty"`
}

// Matcher is a set of conditions a request must all meet.
type Matcher struct {
	// Headers are conditions on request headers.
	Headers []HeaderMatcher `json:"headers,omitempty"`
	// QueryParameters are conditions on query parameters.
	QueryParameters []QueryParameterMatcher `json:"queryParameters,omitempty"`
	// Methods are the HTTP methods the request may have; none means any.
	Methods []string `json:"methods,omitempty"`
}

// HeaderMatcher is a condition on a request header.
type HeaderMatcher struct {
	// Name is the header's name.
	Name string `json:"name"`
	// Value is the value the header must have, or a regular expression.
	Value string `json:"value,omitempty"`
	// Regex makes Value a regular expression.
	Regex bool `json:"regex,omitempty"`
	// InvertMatch inverts the condition.
	InvertMatch bool `json:"invertMatch,omitempty"`
}

// QueryParameterMatcher is a condition on a query parameter.
type QueryParameterMatcher struct {
	// Name is the parameter's name.
	Name string `json:"name"`
	// Value is the value the parameter must have, or a regular expression.
	Value string `json:"value,omitempty"`
	// Regex makes Value a regular expression.
	Regex bool `json:"regex,omitempty"`
}

// RouteAction says where a route's requests go.
type RouteAction struct {
	// Multi spreads the requests over several destinations by weight.
	Multi *MultiDestination `json:"multi,omitempty"`
}

// MultiDestination spreads requests over destinations by weight.
type MultiDestination struct {
	// Destinations are the destinations and their weights.
	Destinations []WeightedDestination `json:"destinations"`
}

// WeightedDestination is a destination with its share of the requests.
type WeightedDestination struct {
	// Destination is where the requests go.
	Destination Destination `json:"destination"`
	// Weight is the destination's share of the requests, relative to the
	// sum of the weights of the route's destinations.
	Weight uint32 `json:"weight"`
}

// Destination is an upstream.
type Destination struct {
	// Upstream names the Upstream.
	Upstream ResourceRef `json:"upstream"`
}

// ResourceRef names an object in a namespace.
type ResourceRef struct {
	// Name is the object's name.
	Name string `json:"name"`
	// Namespace is the object's namespace.
	Namespace string `json:"namespace"`
}

// RouteTableList is a list of RouteTables.
//
// +kubebuilder:object:root=true
type RouteTableList struct {
	metav1.TypeMeta `json:",inline"`
	// ListMeta is the standard list metadata.
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the RouteTables in the list.
	Items []RouteTable `json:"items"`
}
