package controller

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/controller/statemachine"
	"github.com/sluicedev/sluice/pkg/recorder"
)

// TestExport_ObservesTheDurationOfEveryAnalysisRun checks that
// flagger_canary_duration_seconds gets a sample for every analysis run, as
// Flagger observes one, also when the run checked no metric and no webhook
// (an analysis of iterations alone), and none between runs or when idle.
func TestExport_ObservesTheDurationOfEveryAnalysisRun(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	recent := metav1.NewTime(now.Add(-200 * time.Millisecond))
	cases := []struct {
		name   string
		status flaggerv1beta1.CanaryStatus
		checks []flaggerv1beta1.CanaryCheckResult
		want   uint64
	}{
		{"first run (pre-rollout) without webhooks", flaggerv1beta1.CanaryStatus{Phase: flaggerv1beta1.CanaryPhaseProgressing, LastAppliedSpec: "rev"}, nil, 1},
		{"later run without metrics or webhooks", flaggerv1beta1.CanaryStatus{Phase: flaggerv1beta1.CanaryPhaseProgressing, LastAppliedSpec: "rev", Iterations: 1}, nil, 1},
		{"run with a webhook check", flaggerv1beta1.CanaryStatus{Phase: flaggerv1beta1.CanaryPhaseProgressing, LastAppliedSpec: "rev", Iterations: 1},
			[]flaggerv1beta1.CanaryCheckResult{{Kind: flaggerv1beta1.CheckWebhook, Name: "load-test", Passed: true}}, 1},
		{"between two runs", flaggerv1beta1.CanaryStatus{Phase: flaggerv1beta1.CanaryPhaseProgressing, LastAppliedSpec: "rev", Iterations: 1, LastAnalysisTime: &recent}, nil, 0},
		{"idle after promotion", flaggerv1beta1.CanaryStatus{Phase: flaggerv1beta1.CanaryPhaseSucceeded, LastAppliedSpec: "rev", LastPromotedSpec: "rev"}, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			rec, err := recorder.New(reg, "test", flaggerv1beta1.ProviderKubernetes)
			if err != nil {
				t.Fatal(err)
			}
			cd := newCanary("podinfo")
			cd.Namespace = "shop"
			cd.Status = tc.status
			r := &CanaryReconciler{Metrics: rec}
			sc := &scope{cd: cd, in: statemachine.Input{
				Spec: cd.Spec, Status: cd.Status, Name: cd.Name, Namespace: cd.Namespace, Now: now,
				Config:  statemachine.Config{MinInterval: time.Second},
				Obs:     statemachine.Observation{Revision: "rev", Target: statemachine.Workload{Ready: true}, Primary: statemachine.Workload{Ready: true}, Admitted: true},
				Results: statemachine.Results{Checks: tc.checks},
			}}
			r.export(sc, 1500*time.Millisecond)
			if got := durationSamples(t, reg); got != tc.want {
				t.Errorf("flagger_canary_duration_seconds has %d samples, want %d", got, tc.want)
			}
		})
	}
}

// durationSamples counts the observations of flagger_canary_duration_seconds.
func durationSamples(t *testing.T, g prometheus.Gatherer) uint64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range families {
		if f.GetName() != "flagger_canary_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			n += m.GetHistogram().GetSampleCount()
		}
	}
	return n
}
