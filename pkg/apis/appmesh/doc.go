// Package appmesh holds minimal Go types for AWS App Mesh's Kubernetes
// objects (API group appmesh.k8s.aws), as the appmesh routers write them:
// v1beta1 for the first App Mesh controller, v1beta2 for the current one.
// They carry only the fields Sluice writes and reads; the Go module that
// ships App Mesh's types pulls in its whole controller, so Sluice does not
// depend on it.
//
// The packages under pkg are not a stable Go API.
package appmesh
