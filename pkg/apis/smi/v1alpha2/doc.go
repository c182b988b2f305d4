// Package v1alpha2 holds the TrafficSplit of split.smi-spec.io/v1alpha2, as used by
// Open Service Mesh (provider osm) and provider smi:v1alpha2.
//
// +kubebuilder:object:generate=true
// +groupName=split.smi-spec.io
package v1alpha2
