// Package canary operates the targets of a Canary behind the Workload
// interface, one file per kind: a Deployment or DaemonSet is copied to
// <name>-primary with the ConfigMaps and Secrets it uses tracked, and
// promoted, scaled and judged ready; a Kubernetes Service is copied to
// <name>-primary and <name>-canary (service.go); a Knative Service's
// revisions are the primary and the canary (knative.go).
//
// The kind-independent work on Deployments and DaemonSets lives in
// engine.go; deployment.go and daemonset.go hold what differs per kind
// (the spec fields copied, the readiness rules, how the target is parked).
// The copy rules are in primary.go, config tracking in configs.go, the
// revision in revision.go and readiness in ready.go. Autoscalers are one
// file per kind behind the autoscaler interface (autoscaler.go): the HPA
// (hpa.go) and KEDA's ScaledObject (scaledobject.go). The checks of the
// spec that Sluice cannot run are in spec.go.
//
// Workloads and autoscalers are read through Deps.Client (the cache);
// ConfigMaps and Secrets through Deps.Reader (the API server). Every write
// is a create or a merge patch sent only when the object differs, so an
// idle reconcile writes nothing.
//
// It is not a stable Go API: Sluice's packages under pkg/ may change
// without notice.
package canary
