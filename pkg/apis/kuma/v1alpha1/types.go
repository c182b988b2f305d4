package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of the kinds in this package.
	GroupVersion = schema.GroupVersion{Group: "kuma.io", Version: "v1alpha1"}

	schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = schemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &TrafficRoute{}, &TrafficRouteList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// TrafficRoute routes the traffic from some Kuma services to another.
// It is cluster-scoped.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
type TrafficRoute struct {
	metav1.TypeMeta `json:",inline"`
	// ObjectMeta is the standard object metadata.
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Mesh is the name of the Kuma mesh the policy belongs to.
	Mesh string `json:"mesh,omitempty"`
	// Spec is the routing.
	Spec TrafficRouteSpec `json:"spec"`
}

// TrafficRouteSpec says which traffic is routed and where it goes.
type TrafficRouteSpec struct {
	// Sources select the data plane proxies whose outgoing traffic the
	// policy routes.
	Sources []Selector `json:"sources,omitempty"`
	// Destinations select the services whose traffic the policy routes.
	Destinations []Selector `json:"destinations,omitempty"`
	// Conf is where the traffic goes.
	Conf *TrafficRouteConf `json:"conf,omitempty"`
}

// Selector selects Kuma services by their tags.
type Selector struct {
	// Match maps tag names to values; "*" matches any value.
	Match map[string]string `json:"match,omitempty"`
}

// TrafficRouteConf is where the routed traffic goes.
type TrafficRouteConf struct {
	// Split spreads the traffic over services by weight.
	Split []TrafficRouteSplit `json:"split,omitempty"`
}

// TrafficRouteSplit is a destination with its share of the traffic.
type TrafficRouteSplit struct {
	// Weight is the destination's share, relative to the sum of the
	// weights of the split.
	Weight uint32 `json:"weight"`
	// Destination selects the destination service by its tags.
	Destination map[string]string `json:"destination,omitempty"`
}

// TrafficRouteList is a list of TrafficRoutes.
//
// +kubebuilder:object:root=true
type TrafficRouteList struct {
	metav1.TypeMeta `json:",inline"`
	// ListMeta is the standard list metadata.
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the TrafficRoutes in the list.
	Items []TrafficRoute `json:"items"`
}
