// Package canary operates the workloads of a Canary: it copies the target
// Deployment or DaemonSet to <name>-primary, tracks the ConfigMaps and
// Secrets the target uses, computes the revision hash, judges readiness,
// promotes, and scales.
//
// It is not a stable Go API: Sluice's packages under pkg/ may change
// without notice.
package canary
