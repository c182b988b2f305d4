package controller

import (
	"maps"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

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

// TestExport_WeightsGiveTheBaselineItsShare checks flagger_canary_weight
// when a baseline (analysis.baseline) runs beside the canary: the
// primary's series is its true share (not 100 minus the canary's), the
// baseline has a series of its own while it takes traffic, and that series
// goes away when the release is over.
func TestExport_WeightsGiveTheBaselineItsShare(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec, err := recorder.New(reg, "test", flaggerv1beta1.ProviderIstio)
	if err != nil {
		t.Fatal(err)
	}
	r := &CanaryReconciler{Metrics: rec}
	cd := newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Namespace = "shop"
		cd.Spec.Provider = flaggerv1beta1.ProviderIstio
		cd.Spec.Analysis.Iterations = nil
		cd.Spec.Analysis.StepWeight, cd.Spec.Analysis.MaxWeight = ptr.To[int32](20), ptr.To[int32](40)
		cd.Spec.Analysis.Baseline = true
	})
	steps := []struct {
		name   string
		status flaggerv1beta1.CanaryStatus
		want   map[string]float64 // by workload; absent means no series
	}{
		{"analysing at 20%", flaggerv1beta1.CanaryStatus{Phase: flaggerv1beta1.CanaryPhaseProgressing, CanaryWeight: 20},
			map[string]float64{"podinfo-primary": 60, "podinfo": 20, "podinfo-baseline": 20}},
		{"promoted", flaggerv1beta1.CanaryStatus{Phase: flaggerv1beta1.CanaryPhaseSucceeded},
			map[string]float64{"podinfo-primary": 100, "podinfo": 0}},
	}
	for _, step := range steps {
		cd.Status = step.status
		r.export(&scope{cd: cd, in: statemachine.Input{Spec: cd.Spec, Status: cd.Status, Config: statemachine.Config{SplitsTraffic: true}}}, 0)
		got := map[string]float64{}
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() != "flagger_canary_weight" {
				continue
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "workload" {
						got[l.GetValue()] = m.GetGauge().GetValue()
					}
				}
			}
		}
		if !maps.Equal(got, step.want) {
			t.Errorf("%s: flagger_canary_weight by workload = %v, want %v", step.name, got, step.want)
		}
	}
}
