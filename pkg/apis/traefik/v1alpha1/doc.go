// Package v1alpha1 holds the TraefikService of traefik.io/v1alpha1, as
// used by provider traefik: a weighted round robin over Services, or a
// Service whose requests are mirrored to others.
//
// +kubebuilder:object:generate=true
// +groupName=traefik.io
package v1alpha1
