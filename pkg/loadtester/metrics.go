package loadtester

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the load tester's Prometheus metrics, in a registry of its own.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	latency  *prometheus.GaugeVec
	commands *prometheus.CounterVec
	running  prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_loadtester_requests_total",
			Help: "Requests sent by in-process hey load tests, by canary and status code (\"error\" when no answer came).",
		}, []string{"canary", "namespace", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_loadtester_request_duration_seconds",
			Help:    "Latency of the answered requests of in-process hey load tests, by canary.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"canary", "namespace"}),
		latency: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_loadtester_last_run_latency_seconds",
			Help: "Latency percentiles (quantile 0.5, 0.9, 0.99) of the last finished hey load test of a canary.",
		}, []string{"canary", "namespace", "quantile"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_loadtester_commands_total",
			Help: "Commands run, by canary, type (hey for in-process load tests) and result (succeeded, failed, stopped, refused).",
		}, []string{"canary", "namespace", "type", "result"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_loadtester_commands_running",
			Help: "Commands running now.",
		}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.latency, m.commands, m.running,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observer returns an Observer recording a canary's requests.
func (m *metrics) observer(canary, namespace string) Observer {
	hist := m.duration.WithLabelValues(canary, namespace)
	return func(code int, err error, latency time.Duration) {
		if err != nil {
			m.requests.WithLabelValues(canary, namespace, "error").Inc()
			return
		}
		m.requests.WithLabelValues(canary, namespace, strconv.Itoa(code)).Inc()
		hist.Observe(latency.Seconds())
	}
}

// finished records the end of a hey run.
func (m *metrics) finished(canary, namespace string, res Result) {
	for q, v := range map[string]time.Duration{"0.5": res.P50, "0.9": res.P90, "0.99": res.P99} {
		m.latency.WithLabelValues(canary, namespace, q).Set(v.Seconds())
	}
}
