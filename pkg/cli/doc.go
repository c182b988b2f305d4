// Package cli is kubectl-sluice, Sluice's command-line client: it lists
// Canaries, shows one as a tree (workloads, Services, the routing object's
// weights, webhooks and the analysis history), explains in plain words why a
// Canary is where it is and what happens next, and steers a release: promote,
// abort and retry requests written as annotations that the controller
// honours, pause and resume through spec.suspend, and the load tester's
// manual gates.
//
// It is built on cobra and k8s.io/cli-runtime, so it takes kubectl's
// connection flags (--kubeconfig, --context, -n, ...) and works as
// `kubectl sluice` when kubectl-sluice is on PATH.
//
// It is not a stable Go API: Sluice's packages under pkg/ may change
// without notice.
package cli
