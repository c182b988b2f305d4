package statemachine

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// withHistory fills status.analysis with the 20 check results a Canary
// keeps, as a running analysis has them after a few steps.
func withHistory(s *flaggerv1beta1.CanaryStatus) {
	for i := range maxHistory {
		v := 99.0 + float64(i%10)/10
		s.Analysis = append(s.Analysis, flaggerv1beta1.CanaryCheckResult{
			Time: metav1.NewTime(t0.Add(-time.Duration(maxHistory-i) * time.Minute)), Kind: flaggerv1beta1.CheckMetric,
			Name: fmt.Sprintf("metric-%d", i%2), Passed: true, Value: &v, Min: ptr.To(99.0),
			Query: `sum(rate(istio_requests_total{destination_workload="podinfo",response_code!~"5.*"}[1m]))`,
		})
	}
}

// BenchmarkDecide measures the pure decision of one reconcile for the
// situations a controller meets most: an idle Canary, a new revision, a
// passing weight step, a failing step that rolls back, and the end of a
// promotion. The running analyses carry a full check history.
func BenchmarkDecide(b *testing.B) {
	metricsPassed := passed("request-success-rate", "request-duration")
	for _, bc := range []struct {
		name string
		in   Input
		// phase and weight are what the decision must say, so that the
		// benchmark measures the situation its name gives.
		phase  flaggerv1beta1.CanaryPhase
		weight int32
	}{
		{"idle", input(canarySpec(), idle(flaggerv1beta1.CanaryPhaseSucceeded), obs("rev1")), flaggerv1beta1.CanaryPhaseSucceeded, 0},
		{"new-revision", input(canarySpec(), idle(flaggerv1beta1.CanaryPhaseSucceeded), obs("rev2")), flaggerv1beta1.CanaryPhaseProgressing, 0},
		{"weight-step-passing", func() Input {
			in := input(canarySpec(), progressing(20, 1, withHistory), obs("rev2"))
			in.Results = metricsPassed
			return in
		}(), flaggerv1beta1.CanaryPhaseProgressing, 40},
		{"step-not-due", input(canarySpec(), progressing(20, 1, withHistory, func(s *flaggerv1beta1.CanaryStatus) {
			s.LastAnalysisTime = ago(20 * time.Second)
		}), obs("rev2")), flaggerv1beta1.CanaryPhaseProgressing, 20},
		{"rollback", func() Input {
			in := input(canarySpec(), progressing(20, 1, withHistory, func(s *flaggerv1beta1.CanaryStatus) { s.FailedChecks = 1 }), obs("rev2"))
			in.Results = failing("request-duration", "612ms > 500ms")
			return in
		}(), flaggerv1beta1.CanaryPhaseFailed, 0},
		{"promotion-done", input(canarySpec(), progressing(40, 2, withHistory, func(s *flaggerv1beta1.CanaryStatus) {
			s.Phase, s.WaitingSince = flaggerv1beta1.CanaryPhasePromoting, ago(time.Minute)
		}), obs("rev2")), flaggerv1beta1.CanaryPhaseSucceeded, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if s := Decide(bc.in).Status; s.Phase != bc.phase || s.CanaryWeight != bc.weight {
				b.Fatalf("decision is %s at weight %d, want %s at %d", s.Phase, s.CanaryWeight, bc.phase, bc.weight)
			}
			b.ReportAllocs()
			for b.Loop() {
				Decide(bc.in)
			}
		})
	}
}

// BenchmarkPlan measures the pure decision of which gates and checks a
// reconcile must run, for a step that is due and one that is not.
func BenchmarkPlan(b *testing.B) {
	spec := canarySpec(withHook(flaggerv1beta1.ConfirmPromotionHook), withHook(flaggerv1beta1.RollbackHook))
	for _, bc := range []struct {
		name string
		in   Input
	}{
		{"step-due", input(spec, progressing(20, 1, withHistory), obs("rev2"))},
		{"step-not-due", input(spec, progressing(20, 1, withHistory, func(s *flaggerv1beta1.CanaryStatus) {
			s.LastAnalysisTime = ago(20 * time.Second)
		}), obs("rev2"))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Plan(bc.in)
			}
		})
	}
}
