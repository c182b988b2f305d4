package promtest

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Tick is the unit of time of the Traffic exporter's rates: a Series says
// how many requests arrive per tick, so a rate of r per tick is 100r per
// second. Every counter of a Traffic advances once per tick, all together,
// so that ratios of rates (success rates, quantiles) are exact whatever the
// scrape timestamps.
const Tick = 10 * time.Millisecond

// Series is the traffic of one response code of a workload, per Tick: Fast
// requests take 40 ms (the (25 ms, 50 ms] bucket) and Slow ones 200 ms (the
// (100 ms, 250 ms] bucket).
type Series struct {
	// Code is the value of the mesh's response code label.
	Code string
	// Fast is how many fast requests arrive per tick.
	Fast uint64
	// Slow is how many slow requests arrive per tick.
	Slow uint64
}

// Mesh says how a traffic provider names and labels its request metrics.
type Mesh struct {
	// Name is the provider's name, also the scrape job and URL path.
	Name string
	// Requests is the counter of requests by code; empty when the
	// duration histogram's count is the only count (Traefik, http).
	Requests string
	// Duration is the request duration histogram, without _bucket.
	Duration string
	// Seconds is true when Duration is in seconds rather than milliseconds.
	Seconds bool
	// RouteDuration, when set, is a second duration histogram exported
	// with the same values (Skipper measures responses and routes apart).
	RouteDuration string
	// Code is the response code label.
	Code string
	// OK and Error are values of the Code label of a successful request
	// and of a server error.
	OK, Error string
	// Labels returns the labels (without Code) of the requests that the
	// workload named workload in namespace ns receives. Workloads named
	// <target>-primary are primaries, others are canaries.
	Labels func(ns, workload string) map[string]string
}

// serviceOf is the Service in front of a workload, as Sluice names them.
func serviceOf(workload string) string {
	if strings.HasSuffix(workload, "-primary") {
		return workload
	}
	return workload + "-canary"
}

// podOf is a pod name of a Deployment.
func podOf(workload string) string { return workload + "-7d9c6f5b8-x2x4z" }

// Meshes are the request metrics of the traffic providers that Sluice has
// builtin metrics for, with their real metric and label names.
var Meshes = []Mesh{
	{Name: "istio", Requests: "istio_requests_total", Duration: "istio_request_duration_milliseconds", Code: "response_code", OK: "200", Error: "503",
		Labels: func(ns, w string) map[string]string {
			return map[string]string{"reporter": "destination", "destination_workload_namespace": ns, "destination_workload": w, "destination_service_name": serviceOf(w)}
		}},
	{Name: "linkerd", Requests: "response_total", Duration: "response_latency_ms", Code: "classification", OK: "success", Error: "failure",
		Labels: func(ns, w string) map[string]string {
			return map[string]string{"namespace": ns, "deployment": w, "direction": "inbound", "pod": podOf(w)}
		}},
	{Name: "nginx", Requests: "nginx_ingress_controller_requests", Duration: "nginx_ingress_controller_request_duration_seconds", Seconds: true, Code: "status", OK: "200", Error: "503",
		Labels: func(ns, w string) map[string]string {
			canary := ""
			if !strings.HasSuffix(w, "-primary") {
				canary = ns + "-" + serviceOf(w) + "-80"
			}
			return map[string]string{"namespace": ns, "ingress": strings.TrimSuffix(w, "-primary"), "service": serviceOf(w), "canary": canary}
		}},
	{Name: "contour", Requests: "envoy_cluster_upstream_rq", Duration: "envoy_cluster_upstream_rq_time", Code: "envoy_response_code", OK: "200", Error: "503",
		Labels: func(ns, w string) map[string]string {
			return map[string]string{"envoy_cluster_name": ns + "_" + serviceOf(w) + "_9898"}
		}},
	{Name: "gloo", Requests: "envoy_cluster_upstream_rq", Duration: "envoy_cluster_upstream_rq_time", Code: "envoy_response_code", OK: "200", Error: "503",
		Labels: func(ns, w string) map[string]string {
			role := "canaryupstream"
			if strings.HasSuffix(w, "-primary") {
				role, w = "primaryupstream", strings.TrimSuffix(w, "-primary")
			}
			return map[string]string{"envoy_cluster_name": ns + "-" + w + "-" + role + "-9898_gloo-system"}
		}},
	{Name: "appmesh", Requests: "envoy_cluster_upstream_rq", Duration: "envoy_cluster_upstream_rq_time", Code: "envoy_response_code", OK: "200", Error: "503",
		Labels: func(ns, w string) map[string]string {
			return map[string]string{"kubernetes_namespace": ns, "kubernetes_pod_name": podOf(w)}
		}},
	{Name: "kuma", Requests: "envoy_cluster_upstream_rq", Duration: "envoy_cluster_upstream_rq_time", Code: "envoy_response_code", OK: "200", Error: "503",
		Labels: func(ns, w string) map[string]string {
			return map[string]string{"service": serviceOf(w) + "_" + ns + "_svc_9898"}
		}},
	{Name: "osm", Requests: "osm_request_total", Duration: "osm_request_duration_ms", Code: "response_code", OK: "200", Error: "503",
		Labels: func(ns, w string) map[string]string {
			return map[string]string{"destination_namespace": ns, "destination_kind": "Deployment", "destination_name": w}
		}},
	{Name: "traefik", Duration: "traefik_service_request_duration_seconds", Seconds: true, Code: "code", OK: "200", Error: "503",
		Labels: func(ns, w string) map[string]string {
			return map[string]string{"service": ns + "-" + serviceOf(w) + "-80@kubernetescrd", "method": "GET", "protocol": "http"}
		}},
	{Name: "apisix", Requests: "apisix_http_status", Duration: "apisix_http_latency", Code: "code", OK: "200", Error: "503",
		Labels: func(ns, w string) map[string]string {
			return map[string]string{"route": ns + "_" + strings.TrimSuffix(w, "-primary") + "-" + serviceOf(w) + "_1", "type": "request"}
		}},
	// Skipper's route names are its Ingress routes, with every non-word
	// character as "_"; the canary's come from the canary Ingress.
	{Name: "skipper", Duration: "skipper_response_duration_seconds", RouteDuration: "skipper_serve_route_duration_seconds", Seconds: true, Code: "code", OK: "200", Error: "503",
		Labels: func(ns, w string) map[string]string {
			word := strings.NewReplacer("-", "_", ".", "_")
			app := strings.TrimSuffix(w, "-primary")
			route := "kube_" + word.Replace(ns) + "__" + word.Replace(app) + "__app_example_com____" + word.Replace(w)
			if !strings.HasSuffix(w, "-primary") {
				route = "kube_" + word.Replace(ns) + "__" + word.Replace(app) + "_canary__app_example_com____" + word.Replace(w) + "_canary_0"
			}
			return map[string]string{"route": route, "method": "GET"}
		}},
	{Name: "http", Duration: "http_request_duration_seconds", Seconds: true, Code: "status", OK: "200", Error: "503",
		Labels: func(ns, w string) map[string]string {
			return map[string]string{"kubernetes_namespace": ns, "kubernetes_pod_name": podOf(w)}
		}},
}

// MeshByName returns the mesh called name, or false.
func MeshByName(name string) (Mesh, bool) {
	for _, m := range Meshes {
		if m.Name == name {
			return m, true
		}
	}
	return Mesh{}, false
}

// bucketsMillis are the upper bounds of the duration histograms, in ms.
var bucketsMillis = []float64{5, 10, 25, 50, 100, 250, 500, 1000, 2500}

// Traffic is a Prometheus exporter of mesh-shaped request metrics with
// known rates. Serve it with Handler and scrape /<mesh name> per mesh.
type Traffic struct {
	start time.Time
	mu    sync.Mutex
	flows map[string]*flow // by mesh name and label set
}

// flow is the traffic of one label set of one mesh.
type flow struct {
	mesh   Mesh
	labels map[string]string
	series []Series
	base   map[string][2]uint64 // fast and slow totals by code when series was set
	since  uint64               // the tick when series was set
}

// NewTraffic returns an exporter without traffic; its counters start now.
func NewTraffic() *Traffic {
	return &Traffic{start: time.Now(), flows: map[string]*flow{}}
}

// Set makes the requests with the given labels (see Mesh.Labels) arrive at
// the given rates from now on. Counters keep their totals, so a change of
// rates is seen as such by rate(). Series without requests keep their
// counters, at a rate of zero.
func (t *Traffic) Set(mesh Mesh, labels map[string]string, series ...Series) {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := mesh.Name + fmt.Sprint(sortedPairs(labels))
	now := t.ticks()
	f, ok := t.flows[key]
	if !ok {
		f = &flow{mesh: mesh, labels: labels, base: map[string][2]uint64{}}
		t.flows[key] = f
	}
	f.base = f.totals(now)
	f.series, f.since = series, now
}

// ticks is how many ticks passed since the exporter started.
func (t *Traffic) ticks() uint64 { return uint64(time.Since(t.start) / Tick) }

// totals returns the fast and slow totals of each code at tick now.
func (f *flow) totals(now uint64) map[string][2]uint64 {
	out := make(map[string][2]uint64, len(f.base)+len(f.series))
	for code, b := range f.base {
		out[code] = b
	}
	for _, s := range f.series {
		b := out[s.Code]
		out[s.Code] = [2]uint64{b[0] + s.Fast*(now-f.since), b[1] + s.Slow*(now-f.since)}
	}
	return out
}

// Handler serves the metrics of mesh m at /<m.Name> for every mesh.
func (t *Traffic) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, m := range Meshes {
		reg := prometheus.NewRegistry()
		reg.MustRegister(meshCollector{t: t, mesh: m.Name})
		mux.Handle("/"+m.Name, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	}
	return mux
}

// meshCollector collects the flows of one mesh. It describes nothing, so
// the registry takes it as unchecked.
type meshCollector struct {
	t    *Traffic
	mesh string
}

// Describe sends no descriptions: the label sets are only known at Collect.
func (meshCollector) Describe(chan<- *prometheus.Desc) {}

// Collect sends a counter and a histogram per flow and code.
func (c meshCollector) Collect(ch chan<- prometheus.Metric) {
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	now := c.t.ticks()
	for _, f := range c.t.flows {
		if f.mesh.Name != c.mesh {
			continue
		}
		names, values := sortedPairs(f.labels)
		names = append(names, f.mesh.Code)
		for code, tot := range f.totals(now) {
			lv := append(append([]string(nil), values...), code)
			if f.mesh.Requests != "" {
				d := prometheus.NewDesc(f.mesh.Requests, "Requests.", names, nil)
				ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(tot[0]+tot[1]), lv...)
			}
			unit := 1.0
			if f.mesh.Seconds {
				unit = 0.001
			}
			buckets := make(map[float64]uint64, len(bucketsMillis))
			for _, le := range bucketsMillis {
				var n uint64
				if le >= 50 {
					n += tot[0]
				}
				if le >= 250 {
					n += tot[1]
				}
				buckets[le*unit] = n
			}
			sum := (40*float64(tot[0]) + 200*float64(tot[1])) * unit
			for _, name := range []string{f.mesh.Duration, f.mesh.RouteDuration} {
				if name == "" {
					continue
				}
				d := prometheus.NewDesc(name, "Request duration.", names, nil)
				ch <- prometheus.MustNewConstHistogram(d, tot[0]+tot[1], sum, buckets, lv...)
			}
		}
	}
}

// sortedPairs returns the names and values of labels, sorted by name.
func sortedPairs(labels map[string]string) ([]string, []string) {
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)
	values := make([]string, len(names))
	for i, k := range names {
		values[i] = labels[k]
	}
	return names, values
}
