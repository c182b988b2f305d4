// Package keda holds minimal Go types for KEDA's ScaledObject (API group
// keda.sh), as Sluice copies it for a Canary's primary. They carry the
// fields of the ScaledObject spec that KEDA documents, and no status;
// KEDA's own Go module pulls in its whole operator, so Sluice does not
// depend on it.
//
// The packages under pkg are not a stable Go API.
package keda
