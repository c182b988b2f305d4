package v1alpha2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of the kinds in this package.
	GroupVersion = schema.GroupVersion{Group: "split.smi-spec.io", Version: "v1alpha2"}

	schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = schemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &TrafficSplit{}, &TrafficSplitList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// TrafficSplit splits the traffic sent to a root Service between backend
// Services by weight.
//
// +kubebuilder:object:root=true
type TrafficSplit struct {
	metav1.TypeMeta `json:",inline"`
	// ObjectMeta is the standard object metadata.
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the split.
	Spec TrafficSplitSpec `json:"spec"`
}

// TrafficSplitSpec is the desired split of a TrafficSplit.
type TrafficSplitSpec struct {
	// Service is the name of the root Service whose traffic is split.
	Service string `json:"service"`
	// Backends are the Services that receive the traffic and their weights.
	Backends []TrafficSplitBackend `json:"backends"`
}

// TrafficSplitBackend is a Service that receives a share of the traffic.
type TrafficSplitBackend struct {
	// Service is the name of the backend Service.
	Service string `json:"service"`
	// Weight is the backend's share of the traffic, relative to the sum
	// of the weights of all backends. In this version it is an integer.
	Weight int `json:"weight"`
}

// TrafficSplitList is a list of TrafficSplits.
//
// +kubebuilder:object:root=true
type TrafficSplitList struct {
	metav1.TypeMeta `json:",inline"`
	// ListMeta is the standard list metadata.
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the TrafficSplits in the list.
	Items []TrafficSplit `json:"items"`
}
