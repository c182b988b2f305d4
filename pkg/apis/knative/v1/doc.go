// Package v1 holds the Service of serving.knative.dev/v1, as used by
// provider knative: only the traffic targets of its spec and status and
// the names of its latest revisions.
//
// +kubebuilder:object:generate=true
// +groupName=serving.knative.dev
package v1
