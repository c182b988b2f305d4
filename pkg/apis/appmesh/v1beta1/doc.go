// Package v1beta1 holds the VirtualNode and VirtualService of
// appmesh.k8s.aws/v1beta1, as used by provider appmesh. A v1beta1
// VirtualService carries its virtual router and routes.
//
// +kubebuilder:object:generate=true
// +groupName=appmesh.k8s.aws
package v1beta1
