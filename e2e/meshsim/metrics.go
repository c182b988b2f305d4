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

// orUnknown returns s, or "unknown" when s is empty, as Istio labels
// what it does not know.
func orUnknown(s string) string {
	if s == "" {
		return unknown
	}
	return s
}
