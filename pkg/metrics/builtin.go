package metrics

import (
	"fmt"
	"sort"
	"strings"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// The builtin metrics every Canary may name without a templateRef.
const (
	// BuiltinRequestSuccessRate is the percentage (0 to 100) of the
	// canary's requests that did not fail with a server error.
	BuiltinRequestSuccessRate = "request-success-rate"
	// BuiltinRequestDuration is the 99th percentile of the canary's request
	// duration, in milliseconds.
	BuiltinRequestDuration = "request-duration"
)

// meshMetrics says where a traffic provider's Prometheus metrics count the
// canary's requests and measure their duration. The builtin queries are the
// same two shapes for every provider, filled in from one of these rows.
type meshMetrics struct {
	// requests is the counter of requests (or, for Traefik, the +Inf
	// bucket of the duration histogram, which counts them too).
	requests string
	// selector is a query template of label matchers that keep only the
	// canary's requests.
	selector string
	// requestsOnly are extra matchers of the requests metric alone.
	requestsOnly string
	// ok is the matcher that keeps the requests that did not fail.
	ok string
	// duration is the histogram of request durations, without _bucket.
	duration string
	// durationOnly are extra matchers of the duration histogram alone.
	durationOnly string
	// toMillis is the factor from the histogram's unit to milliseconds.
	toMillis string
}

// podOf matches the pods of a Deployment named target but not those of
// target-primary: <target>-<replicaset hash>-<pod suffix>.
const podOf = `{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)`

// builtinMetrics are the metrics of each traffic provider, by the provider
// name without its API version (gatewayapi:v1 reads gatewayapi). Providers
// missing here (skipper, smi) have no builtin metrics: their Canaries use
// MetricTemplates.
var builtinMetrics = map[string]meshMetrics{
	flaggerv1beta1.ProviderIstio: {
		requests: "istio_requests_total",
		selector: `reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}"`,
		ok:       `response_code!~"5.*"`,
		duration: "istio_request_duration_milliseconds",
	},
	flaggerv1beta1.ProviderLinkerd: {
		requests: "response_total",
		selector: `namespace="{{ namespace }}", deployment=~"{{ target }}", direction="inbound"`,
		ok:       `classification!="failure"`,
		duration: "response_latency_ms",
	},
	flaggerv1beta1.ProviderNGINX: {
		requests: "nginx_ingress_controller_requests",
		selector: `namespace="{{ namespace }}", ingress="{{ ingress }}", canary!=""`,
		ok:       `status!~"5.*"`,
		duration: "nginx_ingress_controller_request_duration_seconds",
		toMillis: "1000",
	},
	flaggerv1beta1.ProviderContour: {
		requests: "envoy_cluster_upstream_rq",
		selector: `envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+"`,
		ok:       `envoy_response_code!~"5.*"`,
		duration: "envoy_cluster_upstream_rq_time",
	},
	flaggerv1beta1.ProviderGloo: {
		requests: "envoy_cluster_upstream_rq",
		selector: `envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"`,
		ok:       `envoy_response_code!~"5.*"`,
		duration: "envoy_cluster_upstream_rq_time",
	},
	flaggerv1beta1.ProviderAppMesh: {
		requests: "envoy_cluster_upstream_rq",
		selector: `kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"` + podOf + `"`,
		ok:       `envoy_response_code!~"5.*"`,
		duration: "envoy_cluster_upstream_rq_time",
	},
	// Knative's Envoy names its clusters <namespace>/<revision>: {{ route }}
	// is the latest created revision of the Knative Service.
	flaggerv1beta1.ProviderKnative: {
		requests: "envoy_cluster_upstream_rq",
		selector: `envoy_cluster_name=~"{{ namespace }}/{{ route }}"`,
		ok:       `envoy_response_code!~"5.*"`,
		duration: "envoy_cluster_upstream_rq_time",
	},
	flaggerv1beta1.ProviderKuma: {
		requests: "envoy_cluster_upstream_rq",
		selector: `service=~"{{ target }}-canary_{{ namespace }}_svc_[0-9]+"`,
		ok:       `envoy_response_code!~"5.*"`,
		duration: "envoy_cluster_upstream_rq_time",
	},
	flaggerv1beta1.ProviderOSM: {
		requests: "osm_request_total",
		selector: `destination_namespace="{{ namespace }}", destination_kind="Deployment", destination_name="{{ target }}"`,
		ok:       `response_code!~"5.*"`,
		duration: "osm_request_duration_ms",
	},
	flaggerv1beta1.ProviderTraefik: {
		requests:     "traefik_service_request_duration_seconds_bucket",
		selector:     `service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd"`,
		requestsOnly: `le="+Inf"`,
		ok:           `code!~"5.."`,
		duration:     "traefik_service_request_duration_seconds",
		toMillis:     "1000",
	},
	flaggerv1beta1.ProviderAPISIX: {
		requests:     "apisix_http_status",
		selector:     `route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+"`,
		ok:           `code!~"5.."`,
		duration:     "apisix_http_latency",
		durationOnly: `type="request"`,
	},
	// Gateway API implementations share no metric names, and the plain
	// Kubernetes provider has no proxy at all: both read the
	// http_request_duration_seconds histogram the application exports,
	// scraped with the kubernetes_namespace and kubernetes_pod_name labels.
	"gatewayapi":                      httpMetrics,
	flaggerv1beta1.ProviderKubernetes: httpMetrics,
}

// httpMetrics are the application's own request metrics.
var httpMetrics = meshMetrics{
	requests: "http_request_duration_seconds_count",
	selector: `kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"` + podOf + `"`,
	ok:       `status!~"5.*"`,
	duration: "http_request_duration_seconds",
	toMillis: "1000",
}

// builtinQuery returns the query template of the builtin metric name for a
// traffic provider, or an error saying that there is none. The success
// rate counts a window without a single successful request as 0 rather
// than as missing data; a window without any request stays empty (no
// values) or NaN (series without increase).
func builtinQuery(provider, name string) (string, error) {
	mm, ok := builtinMetrics[meshOf(provider)]
	switch {
	case name != BuiltinRequestSuccessRate && name != BuiltinRequestDuration:
		return "", fmt.Errorf("metric %q is neither builtin for provider %q nor backed by a templateRef (the builtin metrics are %s and %s)",
			name, provider, BuiltinRequestSuccessRate, BuiltinRequestDuration)
	case !ok:
		return "", fmt.Errorf("metric %q is neither builtin for provider %q nor backed by a templateRef: Sluice has builtin queries only for %s; write a MetricTemplate for this provider's metrics and refer to it with templateRef",
			name, provider, strings.Join(builtinProviders(), ", "))
	}
	if name == BuiltinRequestSuccessRate {
		all := mm.selector
		if mm.requestsOnly != "" {
			all += ", " + mm.requestsOnly
		}
		return fmt.Sprintf(`100 * (sum(rate(%[1]s{%[2]s, %[3]s}[{{ interval }}])) or on() vector(0)) / sum(rate(%[1]s{%[2]s}[{{ interval }}]))`,
			mm.requests, all, mm.ok), nil
	}
	sel := mm.selector
	if mm.durationOnly != "" {
		sel += ", " + mm.durationOnly
	}
	q := fmt.Sprintf(`histogram_quantile(0.99, sum(rate(%s_bucket{%s}[{{ interval }}])) by (le))`, mm.duration, sel)
	if mm.toMillis != "" {
		q += " * " + mm.toMillis
	}
	return q, nil
}

// meshOf strips the API version from a provider name: gatewayapi:v1 is
// gatewayapi, appmesh:v1beta2 is appmesh.
//
// An SMI provider that names its mesh, smi:v1alpha3:linkerd, reads that
// mesh's metrics.
func meshOf(provider string) string {
	mesh, rest, _ := strings.Cut(provider, ":")
	if mesh == "smi" {
		if _, named, ok := strings.Cut(rest, ":"); ok {
			return named
		}
	}
	return mesh
}

// builtinProviders lists the providers with builtin metrics, sorted.
func builtinProviders() []string {
	out := make([]string, 0, len(builtinMetrics))
	for p := range builtinMetrics {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
