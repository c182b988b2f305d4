// Package v1alpha1 holds the TrafficSplit of split.smi-spec.io/v1alpha1, as used by
// Linkerd (provider linkerd, through its SMI extension) and provider smi:v1alpha1.
//
// +kubebuilder:object:generate=true
// +groupName=split.smi-spec.io
package v1alpha1
