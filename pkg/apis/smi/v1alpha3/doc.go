// Package v1alpha3 holds the TrafficSplit of split.smi-spec.io/v1alpha3, as used by
// provider smi:v1alpha3. Its matches (references to HTTPRouteGroups) are left out: Sluice does not route A/B tests through SMI.
//
// +kubebuilder:object:generate=true
// +groupName=split.smi-spec.io
package v1alpha3
