// Package v1alpha1 holds the ScaledObject of keda.sh/v1alpha1, as used by
// Canaries whose spec.autoscalerRef is a ScaledObject: the scale target,
// the replica bounds, the triggers and the advanced and fallback settings.
//
// +kubebuilder:object:generate=true
// +groupName=keda.sh
package v1alpha1
