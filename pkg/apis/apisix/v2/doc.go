// Package v2 holds the ApisixRoute of apisix.apache.org/v2, as used by
// provider apisix: HTTP routes whose backends are weighted Services.
//
// +kubebuilder:object:generate=true
// +groupName=apisix.apache.org
package v2
