// Package v1 holds the Service and Revision of serving.knative.dev/v1, as
// used by provider knative and by Knative Service targets: the traffic
// targets of a Service's spec and status, the names of its latest
// revisions and the conditions of Services and Revisions.
//
// +kubebuilder:object:generate=true
// +groupName=serving.knative.dev
package v1
