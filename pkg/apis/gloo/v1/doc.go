// Package v1 holds the Upstream of gloo.solo.io/v1, as used by provider
// gloo: an upstream for a Kubernetes Service, with settings copied from
// the Upstream named in a Canary's spec.upstreamRef.
//
// +kubebuilder:object:generate=true
// +groupName=gloo.solo.io
package v1
