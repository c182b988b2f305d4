package main

import (
	"context"
	"fmt"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// queueStats is what a controller-runtime controller's own workqueue
// metrics say about a phase: whether steps came late because reconciles
// waited in the queue (too few workers) or because they took long.
// Controllers without those metrics (Flagger) leave it empty.
type queueStats struct {
	Available bool `json:"available"`
	// Reconciles is how many items left the queue.
	Reconciles int `json:"reconciles"`
	// QueueMeanSeconds is the mean wait in the queue, WorkMeanSeconds the
	// mean time of a reconcile.
	QueueMeanSeconds float64 `json:"queueMeanSeconds"`
	WorkMeanSeconds  float64 `json:"workMeanSeconds"`
	// QueuedOver1s counts the items that waited more than a second.
	QueuedOver1s int `json:"queuedOver1s"`
}

// The workqueue metrics of the Canary controller.
const (
	queueDuration = "workqueue_queue_duration_seconds"
	workDuration  = "workqueue_work_duration_seconds"
	queueName     = "canary"
)

// histogram is one cumulative Prometheus histogram.
type histogram struct {
	count uint64
	sum   float64
	// upTo1s is the count of observations of at most a second.
	upTo1s uint64
}

// scrapeQueue reads the Canary controller's workqueue histograms from the
// controller's /metrics; found is false when it has none.
func scrapeQueue(ctx context.Context, url string) (queue, work histogram, found bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return queue, work, false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return queue, work, false, fmt.Errorf("reading %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return queue, work, false, nil
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return queue, work, false, fmt.Errorf("reading %s: %w", url, err)
	}
	q, qok := histogramOf(fams[queueDuration])
	w, wok := histogramOf(fams[workDuration])
	return q, w, qok && wok, nil
}

// histogramOf finds the Canary controller's series in a family.
func histogramOf(f *dto.MetricFamily) (histogram, bool) {
	if f == nil {
		return histogram{}, false
	}
	for _, m := range f.GetMetric() {
		named := false
		for _, l := range m.GetLabel() {
			if l.GetName() == "name" && l.GetValue() == queueName {
				named = true
			}
		}
		h := m.GetHistogram()
		if !named || h == nil {
			continue
		}
		out := histogram{count: h.GetSampleCount(), sum: h.GetSampleSum()}
		for _, b := range h.GetBucket() {
			if b.GetUpperBound() == 1 {
				out.upTo1s = b.GetCumulativeCount()
			}
		}
		return out, true
	}
	return histogram{}, false
}

// queueDelta is what happened between two scrapes.
func queueDelta(q0, w0, q1, w1 histogram) queueStats {
	s := queueStats{Available: true, Reconciles: int(q1.count - q0.count)}
	if s.Reconciles > 0 {
		s.QueueMeanSeconds = (q1.sum - q0.sum) / float64(s.Reconciles)
		s.QueuedOver1s = s.Reconciles - int(q1.upTo1s-q0.upTo1s)
	}
	if n := w1.count - w0.count; n > 0 {
		s.WorkMeanSeconds = (w1.sum - w0.sum) / float64(n)
	}
	return s
}
