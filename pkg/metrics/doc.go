// Package metrics runs the metric checks of a Canary's analysis: it resolves
// each metric to a provider and a query, runs the query, and compares the
// value with the metric's thresholdRange in one shared place.
//
// It is not a stable Go API: Sluice's packages under pkg/ may change
// without notice.
package metrics
