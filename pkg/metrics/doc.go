// Package metrics runs the metric checks of a Canary's analysis: it resolves
// each metric to a provider and a query, runs the query, and compares the
// value with the metric's thresholdRange in one shared place.
//
// ClusterResolver is the production Resolver: builtin metrics
// (request-success-rate, request-duration) come from a table of PromQL
// templates per traffic provider (builtin.go), templateRef metrics from
// MetricTemplates rendered with the variables Flagger's users write
// (template.go). A provider is one file (prometheus.go, ...) and one line in
// providerFactories (config.go). Everything that cannot be resolved is an
// error naming the metric, so that the check fails rather than passes.
//
// It is not a stable Go API: Sluice's packages under pkg/ may change
// without notice.
package metrics
