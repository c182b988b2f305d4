package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The controller's histograms are served by the real client library in
// the shape controller-runtime registers them (label name, exponential
// buckets from 10 ns to 1000 s).
func TestScrapeQueue_ReadsTheCanaryControllersWorkqueue(t *testing.T) {
	reg := prometheus.NewRegistry()
	buckets := prometheus.ExponentialBuckets(10e-9, 10, 12)
	queue := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: queueDuration, Buckets: buckets}, []string{"name"})
	work := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: workDuration, Buckets: buckets}, []string{"name"})
	reg.MustRegister(queue, work)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)

	if _, _, found, err := scrapeQueue(context.Background(), srv.URL); err != nil || found {
		t.Fatalf("before any observation: found %t, %v; want not found", found, err)
	}
	queue.WithLabelValues("other").Observe(50) // another controller's queue
	queue.WithLabelValues(queueName).Observe(0.5)
	work.WithLabelValues(queueName).Observe(0.02)
	q0, w0, found, err := scrapeQueue(context.Background(), srv.URL)
	if err != nil || !found {
		t.Fatalf("found %t, %v", found, err)
	}
	for _, d := range []float64{0.1, 2.5, 3.4} {
		queue.WithLabelValues(queueName).Observe(d)
		work.WithLabelValues(queueName).Observe(0.04)
	}
	q1, w1, _, err := scrapeQueue(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	got := queueDelta(q0, w0, q1, w1)
	want := queueStats{Available: true, Reconciles: 3, QueueMeanSeconds: 2, WorkMeanSeconds: 0.04, QueuedOver1s: 2}
	if got.Reconciles != want.Reconciles || got.QueuedOver1s != want.QueuedOver1s ||
		!near(got.QueueMeanSeconds, want.QueueMeanSeconds) || !near(got.WorkMeanSeconds, want.WorkMeanSeconds) {
		t.Errorf("queueDelta = %+v, want %+v", got, want)
	}
}

func TestScrapeQueue_AControllerWithoutMetricsHasNone(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	if _, _, found, err := scrapeQueue(context.Background(), srv.URL); err != nil || found {
		t.Errorf("found %t, %v; want not found and no error", found, err)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
