// Package canary operates the workloads of a Canary: it copies the target
// Deployment or DaemonSet to <name>-primary, tracks the ConfigMaps and
// Secrets the target uses, computes the revision hash, judges readiness,
// promotes, and scales.
//
// The kind-independent work lives in engine.go; deployment.go and
// daemonset.go hold what differs per kind (the spec fields copied, the
// readiness rules, how the target is parked). The copy rules are in
// primary.go, config tracking in configs.go, the revision in revision.go,
// readiness in ready.go and the autoscaler copy in hpa.go.
//
// Workloads are read through Deps.Client (the cache); ConfigMaps, Secrets
// and autoscalers through Deps.Reader (the API server). Every write is a
// create or a merge patch sent only when the object differs, so an idle
// reconcile writes nothing.
//
// It is not a stable Go API: Sluice's packages under pkg/ may change
// without notice.
package canary
