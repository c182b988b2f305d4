package meshsim

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// istioBuckets are Istio's default buckets of
// istio_request_duration_milliseconds.
var istioBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// istioLabels are the labels of Istio's standard request metrics that the
// sim fills in, in order.
var istioLabels = []string{
	"reporter",
	"source_workload", "source_workload_namespace",
	"destination_workload", "destination_workload_namespace",
	"destination_service", "destination_service_name", "destination_service_namespace",
	"destination_app", "destination_version",
	"destination_canonical_service", "destination_canonical_revision",
	"request_protocol", "response_code", "response_flags", "connection_security_policy",
}

// The source the front proxy reports requests from, as an ingress gateway.
const (
	sourceWorkload  = "istio-ingressgateway"
	sourceNamespace = "istio-system"
	unknown         = "unknown"
)

// recorder counts the requests the proxies see, in the metrics of one
// provider, and serves them from its registry.
type recorder interface {
	record(h hop)
	gatherer() prometheus.Gatherer
}

// istioMetrics are istio_requests_total and
// istio_request_duration_milliseconds in their own registry.
type istioMetrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newIstioMetrics registers Istio's request metrics in a new registry.
func newIstioMetrics() (*istioMetrics, error) {
	m := &istioMetrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_requests_total",
			Help: "Requests, as Istio's proxies count them.",
		}, istioLabels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "istio_request_duration_milliseconds",
			Help:    "Request durations in milliseconds, as Istio's proxies measure them.",
			Buckets: istioBuckets,
		}, istioLabels),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := m.registry.Register(c); err != nil {
			return nil, fmt.Errorf("registering Istio's request metrics: %w", err)
		}
	}
	return m, nil
}

// hop is what one proxy saw of one request.
type hop struct {
	// destination is true for the server-side proxy (the pod's sidecar),
	// false for the client side (the gateway).
	destination bool
	namespace   string
	// workload is the destination workload, empty when no pod was reached.
	workload string
	// service is the destination Service's short name, empty when no route
	// was found.
	service string
	// pod is the pod that answered, nil when none did.
	pod *pod
	// code is the HTTP status code of the response.
	code int
	// flags are Envoy's response flags ("-" for none, "UH", "NR", ...).
	flags   string
	elapsed time.Duration
}

// record counts one request seen by one proxy.
func (m *istioMetrics) record(h hop) {
	reporter, src, srcNS, mtls := "source", sourceWorkload, sourceNamespace, unknown
	if h.destination {
		reporter, mtls = "destination", "mutual_tls"
	}
	wl, wlNS := orUnknown(h.workload), unknown
	if h.workload != "" {
		wlNS = h.namespace
	}
	svc, svcName, svcNS := unknown, orUnknown(h.service), unknown
	if h.service != "" {
		svc, svcNS = h.service+"."+h.namespace+".svc.cluster.local", h.namespace
	}
	app, ver, rev := unknown, unknown, "latest"
	if h.pod != nil {
		app = orUnknown(h.pod.labels["app"])
		ver = orUnknown(h.pod.labels["version"])
		if v := h.pod.labels["version"]; v != "" {
			rev = v
		}
	}
	values := []string{
		reporter, src, srcNS, wl, wlNS, svc, svcName, svcNS, app, ver, app, rev,
		"http", strconv.Itoa(h.code), h.flags, mtls,
	}
	m.requests.WithLabelValues(values...).Inc()
	m.duration.WithLabelValues(values...).Observe(float64(h.elapsed) / float64(time.Millisecond))
}

// gatherer is the registry of Istio's metrics.
func (m *istioMetrics) gatherer() prometheus.Gatherer { return m.registry }

// httpLabels are the labels of the application's own request metrics
// that Sluice's builtin queries for Gateway API read: the namespace and
// pod (as Prometheus's Kubernetes pod discovery relabels them) and the
// status code.
var httpLabels = []string{"kubernetes_namespace", "kubernetes_pod_name", "status"}

// httpMetrics is http_request_duration_seconds, the histogram each pod of
// the application exports itself (podinfo does), as seen by a Prometheus
// scraping the pods. A Gateway API implementation has no standard request
// metrics, so Sluice's builtin queries for gatewayapi read these.
type httpMetrics struct {
	registry *prometheus.Registry
	duration *prometheus.HistogramVec
}

// newHTTPMetrics registers the application's request metrics in a new
// registry.
func newHTTPMetrics() (*httpMetrics, error) {
	m := &httpMetrics{
		registry: prometheus.NewRegistry(),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Request durations in seconds, as the application's pods measure them.",
			Buckets: prometheus.DefBuckets,
		}, httpLabels),
	}
	if err := m.registry.Register(m.duration); err != nil {
		return nil, fmt.Errorf("registering the application's request metrics: %w", err)
	}
	return m, nil
}

// record counts a request a pod answered; the gateway's side of a request,
// and requests no pod answered, are not the application's to count.
func (m *httpMetrics) record(h hop) {
	if !h.destination || h.pod == nil {
		return
	}
	m.duration.WithLabelValues(h.namespace, h.pod.name, strconv.Itoa(h.code)).Observe(h.elapsed.Seconds())
}

// gatherer is the registry of the application's metrics.
func (m *httpMetrics) gatherer() prometheus.Gatherer { return m.registry }

// orUnknown returns s, or "unknown" when s is empty, as Istio labels
// what it does not know.
func orUnknown(s string) string {
	if s == "" {
		return unknown
	}
	return s
}
