// Package v1beta2 holds the VirtualNode, VirtualRouter and VirtualService
// of appmesh.k8s.aws/v1beta2, as used by provider appmesh:v1beta2.
//
// +kubebuilder:object:generate=true
// +groupName=appmesh.k8s.aws
package v1beta2
