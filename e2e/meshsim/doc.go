// Package meshsim is the simulated data plane of Sluice's end-to-end runs,
// where no container runtime exists: it plays an Istio mesh for one Canary.
//
// It watches the Canary's VirtualService and the Pods of the canary and
// primary workloads, and of the baseline that Sluice runs beside the canary
// with analysis.baseline (<workload>-baseline, host <apex>-baseline, whose
// pods copy the primary's annotations), runs one in-process HTTP backend
// per version whose
// answers follow annotations of the version's ready pods (error rate,
// latency), serves a front proxy that splits real HTTP requests between the
// versions as the VirtualService's HTTP routes say (A/B matches first, then
// weights; each destination's response header operations, such as the
// Set-Cookie of session affinity, apply to its answers), and exports
// Istio's own request metrics for those requests on /metrics, for
// Prometheus to scrape. With Options.Provider gatewayapi it plays a Gateway
// API implementation instead: it routes by the Canary's HTTPRoute (first
// matching rule, weighted backendRefs and their ResponseHeaderModifier
// filters, RequestMirror) and exports the application's own
// http_request_duration_seconds, which Sluice's builtin queries for Gateway
// API read. The canary analysis then runs its real PromQL against real
// data.
//
// It is test code, not shipped, and not a stable Go API.
package meshsim
