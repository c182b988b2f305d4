// Package v1alpha1 holds the TrafficRoute of kuma.io/v1alpha1, as used by
// provider kuma: a cluster-scoped policy of a mesh that splits the traffic
// to a Kuma service between other services by weight.
//
// +kubebuilder:object:generate=true
// +groupName=kuma.io
package v1alpha1
