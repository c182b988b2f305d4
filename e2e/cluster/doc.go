// Package cluster starts a local Kubernetes control plane in which
// Deployments really roll out, for Sluice's end-to-end tests and `make demo`.
//
// It runs etcd and kube-apiserver (through controller-runtime envtest, with
// Sluice's, Istio's and Gateway API's CRDs installed), kube-controller-manager
// and kube-scheduler, and KWOK, which plays the kubelet of a few fake Nodes:
// Pods are scheduled on them and become Running and Ready without a container
// runtime. Every process listens on 127.0.0.1 on a free port and writes its
// log to a file in the cluster's directory.
//
// The binaries come from the repository's bin/ directory: `make tools` builds
// etcd and kube-apiserver, `make tools-e2e` builds the rest. Nothing is
// downloaded at run time except the KWOK module's Stage files, which the Go
// module cache usually holds already.
//
// This is test-support code, not a stable Go API.
package cluster
