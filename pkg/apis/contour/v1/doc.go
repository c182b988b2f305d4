// Package v1 holds the HTTPProxy of projectcontour.io/v1, as used by
// provider contour: routes with path-prefix and header conditions,
// weighted and mirror Services, timeout, retry and header policies.
//
// +kubebuilder:object:generate=true
// +groupName=projectcontour.io
package v1
