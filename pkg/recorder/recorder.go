// Package recorder exports Sluice's Prometheus metrics: Flagger's
// flagger_* metrics, with Flagger's names and labels so that existing
// dashboards and alerts keep working, and Sluice's own sluice_* latencies.
//
// It is not a stable Go API: Sluice's packages under pkg/ may change
// without notice.
package recorder

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// Values of flagger_canary_status, as Flagger's.
const (
	// StatusRunning is the status of a Progressing Canary.
	StatusRunning = 0
	// StatusSucceeded is the status of every phase but Progressing and
	// Failed: Flagger counts Initializing, Waiting, Promoting and the others
	// as 1 too.
	StatusSucceeded = 1
	// StatusFailed is the status of a Failed Canary.
	StatusFailed = 2
)

// Values of the analysis_status label.
const (
	// AnalysisCompleted labels a run whose analysis ran to its end.
	AnalysisCompleted = "completed"
	// AnalysisSkipped labels a run promoted with skipAnalysis.
	AnalysisSkipped = "skipped"
)

// Values of the result label of the sluice_* metrics.
const (
	// ResultSuccess labels an observation whose operation returned no error.
	ResultSuccess = "success"
	// ResultError labels an observation whose operation returned an error.
	ResultError = "error"
)

// Recorder holds the metrics. Its methods are safe for concurrent use.
type Recorder struct {
	info        *prometheus.GaugeVec
	total       *prometheus.GaugeVec
	status      *prometheus.GaugeVec
	weight      *prometheus.GaugeVec
	duration    *prometheus.HistogramVec
	analysis    *prometheus.GaugeVec
	successes   *prometheus.CounterVec
	failures    *prometheus.CounterVec
	reconcile   *prometheus.HistogramVec
	webhook     *prometheus.HistogramVec
	metricQuery *prometheus.HistogramVec
}

// New creates the metrics, registers them on reg (the manager passes
// controller-runtime's metrics.Registry) and sets flagger_info to 1 for the
// version and mesh provider.
func New(reg prometheus.Registerer, version, meshProvider string) (*Recorder, error) {
	canary := []string{"name", "namespace"}
	outcome := []string{"name", "namespace", "deployment_strategy", "analysis_status"}
	r := &Recorder{
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flagger_info", Help: "Always 1; the labels carry the running version and the mesh provider.",
		}, []string{"version", "mesh_provider"}),
		total: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flagger_canary_total", Help: "Number of Canaries per namespace.",
		}, []string{"namespace"}),
		status: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flagger_canary_status", Help: "State of each Canary: 0 while its analysis runs, 2 after a rollback, 1 otherwise.",
		}, canary),
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flagger_canary_weight", Help: "Share of traffic, in percent, routed to the primary (<target>-primary) and to the canary (<target>).",
		}, []string{"workload", "namespace"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flagger_canary_duration_seconds", Help: "Seconds one analysis run of a Canary took, observed at every run whatever it checked.",
			Buckets: prometheus.DefBuckets,
		}, canary),
		analysis: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flagger_canary_metric_analysis", Help: "Value a metric check of a Canary returned last.",
		}, []string{"name", "namespace", "metric"}),
		successes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flagger_canary_successes_total", Help: "Revisions promoted, by strategy and by whether the analysis ran or was skipped.",
		}, outcome),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flagger_canary_failures_total", Help: "Revisions rolled back, by strategy.",
		}, outcome),
		reconcile: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_reconcile_duration_seconds", Help: "Seconds one reconcile of a Canary took, by result.",
			Buckets: prometheus.DefBuckets,
		}, []string{"result"}),
		webhook: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_webhook_duration_seconds", Help: "Seconds one call of an analysis webhook took, by webhook type and result.",
			Buckets: prometheus.DefBuckets,
		}, []string{"type", "result"}),
		metricQuery: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_metric_query_duration_seconds", Help: "Seconds one metric query took, by metric provider and result.",
			Buckets: prometheus.DefBuckets,
		}, []string{"provider", "result"}),
	}
	if reg != nil {
		for _, c := range r.collectors() {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering the canary metrics: %w", err)
			}
		}
	}
	r.info.WithLabelValues(version, meshProvider).Set(1)
	return r, nil
}

func (r *Recorder) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		r.info, r.total, r.status, r.weight, r.duration, r.analysis,
		r.successes, r.failures, r.reconcile, r.webhook, r.metricQuery,
	}
}

// Collectors returns every metric, for callers that register them
// themselves.
func (r *Recorder) Collectors() []prometheus.Collector { return r.collectors() }

// target is the value of the name label: the Canary's targetRef name, as
// Flagger exports it, not the Canary's own name.
func target(cd *flaggerv1beta1.Canary) string {
	return cd.Spec.TargetRef.Name
}

// SetTotal sets flagger_canary_total: the number of Canaries in namespace.
func (r *Recorder) SetTotal(namespace string, n int) {
	r.total.WithLabelValues(namespace).Set(float64(n))
}

// Status maps a phase to the value of flagger_canary_status: Progressing
// is 0, Failed is 2, every other phase (Initializing and Initialized
// included) is 1, as in Flagger.
func Status(phase flaggerv1beta1.CanaryPhase) int {
	switch phase {
	case flaggerv1beta1.CanaryPhaseProgressing:
		return StatusRunning
	case flaggerv1beta1.CanaryPhaseFailed:
		return StatusFailed
	default:
		return StatusSucceeded
	}
}

// SetStatus sets flagger_canary_status from the Canary's status.phase.
func (r *Recorder) SetStatus(cd *flaggerv1beta1.Canary) {
	r.status.WithLabelValues(target(cd), cd.Namespace).Set(float64(Status(cd.Status.Phase)))
}

// SetWeight sets flagger_canary_weight of the primary (workload
// <target>-primary) and of the canary (workload <target>), in percent.
// A baseline share above zero (analysis.baseline) is a third series,
// workload <target>-baseline, which is removed when the baseline has no
// share left.
func (r *Recorder) SetWeight(cd *flaggerv1beta1.Canary, primary, canary, baseline int) {
	r.weight.WithLabelValues(target(cd)+"-primary", cd.Namespace).Set(float64(primary))
	r.weight.WithLabelValues(target(cd), cd.Namespace).Set(float64(canary))
	if baseline > 0 {
		r.weight.WithLabelValues(target(cd)+"-baseline", cd.Namespace).Set(float64(baseline))
	} else {
		r.weight.DeleteLabelValues(target(cd)+"-baseline", cd.Namespace)
	}
}

// ObserveDuration adds the duration of one analysis run to
// flagger_canary_duration_seconds. The controller calls it for every run
// of a Canary's analysis (the pre-rollout step included), whether the run
// checked metrics, webhooks or nothing, as Flagger does, so that every
// analysed Canary has a series.
func (r *Recorder) ObserveDuration(cd *flaggerv1beta1.Canary, d time.Duration) {
	r.duration.WithLabelValues(target(cd), cd.Namespace).Observe(d.Seconds())
}

// ObserveAnalysis sets flagger_canary_metric_analysis to the value of each
// metric check that returned one; webhook checks and metrics without a
// value are skipped.
func (r *Recorder) ObserveAnalysis(cd *flaggerv1beta1.Canary, results []flaggerv1beta1.CanaryCheckResult) {
	for _, res := range results {
		if res.Kind != flaggerv1beta1.CheckMetric || res.Value == nil {
			continue
		}
		r.analysis.WithLabelValues(target(cd), cd.Namespace, res.Name).Set(*res.Value)
	}
}

// IncSuccess counts a promotion in flagger_canary_successes_total. strategy
// is canary, blue-green or ab-testing; skipped says the analysis was
// skipped (skipAnalysis).
func (r *Recorder) IncSuccess(cd *flaggerv1beta1.Canary, strategy string, skipped bool) {
	status := AnalysisCompleted
	if skipped {
		status = AnalysisSkipped
	}
	r.successes.WithLabelValues(target(cd), cd.Namespace, strategy, status).Inc()
}

// IncFailure counts a rollback in flagger_canary_failures_total, with
// analysis_status completed: the analysis ran to its verdict.
func (r *Recorder) IncFailure(cd *flaggerv1beta1.Canary, strategy string) {
	r.failures.WithLabelValues(target(cd), cd.Namespace, strategy, AnalysisCompleted).Inc()
}

// Forget removes the gauges of a deleted Canary (status, weights, metric
// values), so that dashboards stop showing it. Counters and histograms
// stay: they are cumulative.
func (r *Recorder) Forget(cd *flaggerv1beta1.Canary) {
	name := target(cd)
	r.status.DeleteLabelValues(name, cd.Namespace)
	r.weight.DeleteLabelValues(name+"-primary", cd.Namespace)
	r.weight.DeleteLabelValues(name, cd.Namespace)
	r.weight.DeleteLabelValues(name+"-baseline", cd.Namespace)
	r.analysis.DeletePartialMatch(prometheus.Labels{"name": name, "namespace": cd.Namespace})
}

// result is the result label of an error.
func result(err error) string {
	if err != nil {
		return ResultError
	}
	return ResultSuccess
}

// ObserveReconcile adds one reconcile's duration to
// sluice_reconcile_duration_seconds; err is what the reconcile returned.
func (r *Recorder) ObserveReconcile(d time.Duration, err error) {
	r.reconcile.WithLabelValues(result(err)).Observe(d.Seconds())
}

// ObserveWebhook adds one webhook call's duration to
// sluice_webhook_duration_seconds; hookType is the webhook's type
// (pre-rollout, rollout, ...) and err its failure.
func (r *Recorder) ObserveWebhook(hookType flaggerv1beta1.HookType, d time.Duration, err error) {
	r.webhook.WithLabelValues(string(hookType), result(err)).Observe(d.Seconds())
}

// ObserveMetricQuery adds one metric query's duration to
// sluice_metric_query_duration_seconds; provider is the metric provider's
// type (prometheus, datadog, ...) and err the query's failure.
func (r *Recorder) ObserveMetricQuery(provider string, d time.Duration, err error) {
	r.metricQuery.WithLabelValues(provider, result(err)).Observe(d.Seconds())
}
