package recorder

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// canary is a Canary whose name differs from its target's, to show which
// one the name label carries.
func canary(phase flaggerv1beta1.CanaryPhase) *flaggerv1beta1.Canary {
	return &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "podinfo-release"},
		Spec:       flaggerv1beta1.CanarySpec{TargetRef: flaggerv1beta1.LocalObjectReference{Kind: "Deployment", Name: "podinfo"}},
		Status:     flaggerv1beta1.CanaryStatus{Phase: phase},
	}
}

func newRecorder(t *testing.T) (*Recorder, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	r, err := New(reg, "v1.2.3", "istio")
	if err != nil {
		t.Fatal(err)
	}
	return r, reg
}

func TestRecorder_ExportsFlaggersMetricNamesLabelsAndValues(t *testing.T) {
	t.Parallel()
	r, reg := newRecorder(t)
	cd := canary(flaggerv1beta1.CanaryPhaseProgressing)
	r.SetTotal("test", 2)
	r.SetStatus(cd)
	r.SetWeight(cd, 90, 10, 0)
	r.ObserveAnalysis(cd, []flaggerv1beta1.CanaryCheckResult{
		{Kind: flaggerv1beta1.CheckMetric, Name: "request-success-rate", Value: ptr.To(99.5), Passed: true},
		{Kind: flaggerv1beta1.CheckMetric, Name: "request-duration", Value: ptr.To(0.25), Passed: true},
		{Kind: flaggerv1beta1.CheckMetric, Name: "no-data", Message: "no values"},
		{Kind: flaggerv1beta1.CheckWebhook, Name: "load-test", Passed: true},
	})
	r.IncSuccess(cd, "canary", false)
	r.IncSuccess(cd, "canary", false)
	r.IncSuccess(cd, "blue-green", true)
	r.IncFailure(cd, "ab-testing")

	want := `
# HELP flagger_canary_failures_total Revisions rolled back, by strategy.
# TYPE flagger_canary_failures_total counter
flagger_canary_failures_total{analysis_status="completed",deployment_strategy="ab-testing",name="podinfo",namespace="test"} 1
# HELP flagger_canary_metric_analysis Value a metric check of a Canary returned last.
# TYPE flagger_canary_metric_analysis gauge
flagger_canary_metric_analysis{metric="request-duration",name="podinfo",namespace="test"} 0.25
flagger_canary_metric_analysis{metric="request-success-rate",name="podinfo",namespace="test"} 99.5
# HELP flagger_canary_status State of each Canary: 0 while its analysis runs, 2 after a rollback, 1 otherwise.
# TYPE flagger_canary_status gauge
flagger_canary_status{name="podinfo",namespace="test"} 0
# HELP flagger_canary_successes_total Revisions promoted, by strategy and by whether the analysis ran or was skipped.
# TYPE flagger_canary_successes_total counter
flagger_canary_successes_total{analysis_status="completed",deployment_strategy="canary",name="podinfo",namespace="test"} 2
flagger_canary_successes_total{analysis_status="skipped",deployment_strategy="blue-green",name="podinfo",namespace="test"} 1
# HELP flagger_canary_total Number of Canaries per namespace.
# TYPE flagger_canary_total gauge
flagger_canary_total{namespace="test"} 2
# HELP flagger_canary_weight Share of traffic, in percent, routed to the primary (<target>-primary) and to the canary (<target>).
# TYPE flagger_canary_weight gauge
flagger_canary_weight{namespace="test",workload="podinfo"} 10
flagger_canary_weight{namespace="test",workload="podinfo-primary"} 90
# HELP flagger_info Always 1; the labels carry the running version and the mesh provider.
# TYPE flagger_info gauge
flagger_info{mesh_provider="istio",version="v1.2.3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"flagger_info", "flagger_canary_total", "flagger_canary_status", "flagger_canary_weight",
		"flagger_canary_metric_analysis", "flagger_canary_successes_total", "flagger_canary_failures_total",
	); err != nil {
		t.Error(err)
	}
}

func TestStatus_MapsEveryPhaseAsFlaggerDoes(t *testing.T) {
	t.Parallel()
	cases := map[flaggerv1beta1.CanaryPhase]int{
		"":                                         StatusSucceeded,
		flaggerv1beta1.CanaryPhaseInitializing:     StatusSucceeded,
		flaggerv1beta1.CanaryPhaseInitialized:      StatusSucceeded,
		flaggerv1beta1.CanaryPhaseWaiting:          StatusSucceeded,
		flaggerv1beta1.CanaryPhaseProgressing:      StatusRunning,
		flaggerv1beta1.CanaryPhaseWaitingPromotion: StatusSucceeded,
		flaggerv1beta1.CanaryPhasePromoting:        StatusSucceeded,
		flaggerv1beta1.CanaryPhaseFinalising:       StatusSucceeded,
		flaggerv1beta1.CanaryPhaseSucceeded:        StatusSucceeded,
		flaggerv1beta1.CanaryPhaseFailed:           StatusFailed,
		flaggerv1beta1.CanaryPhaseTerminating:      StatusSucceeded,
		flaggerv1beta1.CanaryPhaseTerminated:       StatusSucceeded,
	}
	r, _ := newRecorder(t)
	for phase, want := range cases {
		if got := Status(phase); got != want {
			t.Errorf("Status(%q) = %d, want %d", phase, got, want)
		}
		r.SetStatus(canary(phase))
		if got := testutil.ToFloat64(r.status.WithLabelValues("podinfo", "test")); got != float64(want) {
			t.Errorf("after SetStatus(%q) flagger_canary_status = %v, want %d", phase, got, want)
		}
	}
	if n := testutil.CollectAndCount(r.status); n != 1 {
		t.Errorf("%d status series, want 1 per Canary", n)
	}
}

// histograms returns "labels count sum" per series of a histogram.
func histograms(t *testing.T, reg *prometheus.Registry, name string) []string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			h := m.GetHistogram()
			out = append(out, fmt.Sprintf("%s count=%d sum=%g buckets=%d",
				strings.Join(labels, ","), h.GetSampleCount(), h.GetSampleSum(), len(h.GetBucket())))
		}
	}
	sort.Strings(out)
	return out
}

func TestRecorder_ObservesDurationsWithTheirLabels(t *testing.T) {
	t.Parallel()
	r, reg := newRecorder(t)
	cd := canary(flaggerv1beta1.CanaryPhaseProgressing)
	failed := errors.New("boom")
	r.ObserveDuration(cd, 1500*time.Millisecond)
	r.ObserveDuration(cd, 500*time.Millisecond)
	r.ObserveReconcile(250*time.Millisecond, nil)
	r.ObserveReconcile(time.Second, failed)
	r.ObserveWebhook(flaggerv1beta1.HookType("pre-rollout"), 2*time.Second, failed)
	r.ObserveWebhook(flaggerv1beta1.RolloutHook, 125*time.Millisecond, nil)
	r.ObserveMetricQuery("prometheus", 50*time.Millisecond, nil)
	r.ObserveMetricQuery("datadog", 3*time.Second, failed)
	defBuckets := len(prometheus.DefBuckets)
	cases := map[string][]string{
		"flagger_canary_duration_seconds": {
			fmt.Sprintf("name=podinfo,namespace=test count=2 sum=2 buckets=%d", defBuckets),
		},
		"sluice_reconcile_duration_seconds": {
			fmt.Sprintf("result=error count=1 sum=1 buckets=%d", defBuckets),
			fmt.Sprintf("result=success count=1 sum=0.25 buckets=%d", defBuckets),
		},
		"sluice_webhook_duration_seconds": {
			fmt.Sprintf("result=error,type=pre-rollout count=1 sum=2 buckets=%d", defBuckets),
			fmt.Sprintf("result=success,type=rollout count=1 sum=0.125 buckets=%d", defBuckets),
		},
		"sluice_metric_query_duration_seconds": {
			fmt.Sprintf("provider=datadog,result=error count=1 sum=3 buckets=%d", defBuckets),
			fmt.Sprintf("provider=prometheus,result=success count=1 sum=0.05 buckets=%d", defBuckets),
		},
	}
	for name, want := range cases {
		if got := histograms(t, reg, name); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", name, got, want)
		}
	}
}

func TestRecorder_ForgetDropsTheGaugesOfADeletedCanary(t *testing.T) {
	t.Parallel()
	r, reg := newRecorder(t)
	cd := canary(flaggerv1beta1.CanaryPhaseFailed)
	other := canary(flaggerv1beta1.CanaryPhaseSucceeded)
	other.Spec.TargetRef.Name = "backend"
	for _, c := range []*flaggerv1beta1.Canary{cd, other} {
		r.SetStatus(c)
		r.SetWeight(c, 100, 0, 0)
		r.ObserveAnalysis(c, []flaggerv1beta1.CanaryCheckResult{{Kind: flaggerv1beta1.CheckMetric, Name: "errors", Value: ptr.To(1.0)}})
	}
	r.IncFailure(cd, "canary")
	r.Forget(cd)
	want := `
# HELP flagger_canary_failures_total Revisions rolled back, by strategy.
# TYPE flagger_canary_failures_total counter
flagger_canary_failures_total{analysis_status="completed",deployment_strategy="canary",name="podinfo",namespace="test"} 1
# HELP flagger_canary_metric_analysis Value a metric check of a Canary returned last.
# TYPE flagger_canary_metric_analysis gauge
flagger_canary_metric_analysis{metric="errors",name="backend",namespace="test"} 1
# HELP flagger_canary_status State of each Canary: 0 while its analysis runs, 2 after a rollback, 1 otherwise.
# TYPE flagger_canary_status gauge
flagger_canary_status{name="backend",namespace="test"} 1
# HELP flagger_canary_weight Share of traffic, in percent, routed to the primary (<target>-primary) and to the canary (<target>).
# TYPE flagger_canary_weight gauge
flagger_canary_weight{namespace="test",workload="backend"} 0
flagger_canary_weight{namespace="test",workload="backend-primary"} 100
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"flagger_canary_status", "flagger_canary_weight", "flagger_canary_metric_analysis", "flagger_canary_failures_total"); err != nil {
		t.Error(err)
	}
}

func TestNew_RefusesARegistryThatHasTheMetricsAlready(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	if _, err := New(reg, "v1", "istio"); err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg, "v1", "istio"); err == nil || !strings.Contains(err.Error(), "registering the canary metrics") {
		t.Errorf("second New = %v, want a registration error", err)
	}
	r, err := New(nil, "v1", "linkerd")
	if err != nil {
		t.Fatalf("New without a registry = %v", err)
	}
	if n := len(r.Collectors()); n != 11 {
		t.Errorf("%d collectors, want 11", n)
	}
}
