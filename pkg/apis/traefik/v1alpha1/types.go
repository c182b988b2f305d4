package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of the kinds in this package.
	GroupVersion = schema.GroupVersion{Group: "traefik.io", Version: "v1alpha1"}

	schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = schemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &TraefikService{}, &TraefikServiceList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// TraefikService is a virtual Service that Traefik's IngressRoutes send
// requests to: it spreads them over Kubernetes Services by weight, or
// sends them to one Service and copies them to others.
//
// +kubebuilder:object:root=true
type TraefikService struct {
	metav1.TypeMeta `json:",inline"`
	// ObjectMeta is the standard object metadata.
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the spreading; exactly one of its fields is set.
	Spec TraefikServiceSpec `json:"spec"`
}

// TraefikServiceSpec is the desired spreading of a TraefikService.
type TraefikServiceSpec struct {
	// Weighted spreads the requests over Services by weight.
	Weighted *WeightedRoundRobin `json:"weighted,omitempty"`
	// Mirroring sends the requests to one Service and copies them to others.
	Mirroring *Mirroring `json:"mirroring,omitempty"`
}

// WeightedRoundRobin spreads requests over Services by weight.
type WeightedRoundRobin struct {
	// Services are the Services and their weights.
	Services []WeightedService `json:"services"`
}

// WeightedService is a Kubernetes Service with its share of the requests.
type WeightedService struct {
	// Name is the Service's name, in the TraefikService's namespace.
	Name string `json:"name"`
	// Port is the Service's port number.
	Port int32 `json:"port"`
	// Weight is the Service's share of the requests, relative to the sum
	// of the weights of all Services. Traefik's default is 1, so Sluice
	// always writes it.
	Weight int `json:"weight"`
}

// Mirroring sends the requests to the Service it names and copies them to
// its mirrors, whose answers are discarded.
type Mirroring struct {
	// Name is the name of the Service that answers the requests.
	Name string `json:"name"`
	// Port is that Service's port number.
	Port int32 `json:"port"`
	// Mirrors are the Services that receive copies of the requests.
	Mirrors []MirrorService `json:"mirrors,omitempty"`
}

// MirrorService is a Kubernetes Service that receives copies of requests.
type MirrorService struct {
	// Name is the Service's name, in the TraefikService's namespace.
	Name string `json:"name"`
	// Port is the Service's port number.
	Port int32 `json:"port"`
	// Percent is the percentage of the requests copied to the Service,
	// from 0 to 100.
	Percent int `json:"percent"`
}

// TraefikServiceList is a list of TraefikServices.
//
// +kubebuilder:object:root=true
type TraefikServiceList struct {
	metav1.TypeMeta `json:",inline"`
	// ListMeta is the standard list metadata.
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the TraefikServices in the list.
	Items []TraefikService `json:"items"`
}
