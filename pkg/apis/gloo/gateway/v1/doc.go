// Package v1 holds the RouteTable of gateway.solo.io/v1, as used by
// provider gloo: routes with header, query and method matchers whose
// action splits the requests between upstreams by weight.
//
// +kubebuilder:object:generate=true
// +groupName=gateway.solo.io
package v1
