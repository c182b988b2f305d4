// Package v1beta1 holds the flagger.app/v1beta1 API that Sluice serves:
// Canary, MetricTemplate and AlertProvider.
//
// The field names, types and enum values are those Flagger users already
// write, so existing manifests are accepted unchanged. The documentation and
// validation are Sluice's own.
//
// +kubebuilder:object:generate=true
// +groupName=flagger.app
package v1beta1
