package statemachine

import (
	"slices"
	"strings"
	"testing"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
)

// withBaseline asks for a baseline beside the canary (stepWeight 20 up to
// maxWeight 40).
func withBaseline(s *flaggerv1beta1.CanarySpec) { s.Analysis.Baseline = true }

// withBaselineFor observes a ready baseline started for revision rev.
func withBaselineFor(rev string, o Observation) Observation {
	o.Baseline = Workload{Exists: true, Ready: true, Replicas: 2, Revision: rev}
	return o
}

// The actions of a release with a baseline.
var (
	baselineRunActs      = []ActionKind{EnsureServices, ReconcileRoutes, ScaleTargetUp, EnsureBaseline, SetRoutes}
	baselineRollbackActs = []ActionKind{EnsureServices, ReconcileRoutes, SetRoutes, ScaleTargetToZero, RemoveBaseline, RunPostRollout}
	baselineIdleActs     = []ActionKind{EnsureServices, ReconcileRoutes, SetRoutes, ScaleTargetToZero, RemoveBaseline}
)

func TestDecide_Baseline(t *testing.T) {
	type baselineWant struct {
		want
		// baselineFor is the revision of the EnsureBaseline action.
		baselineFor string
		// condition is a substring of the Promoted condition's message.
		condition string
	}
	step := func(in Input, r Results) Input { in.Results = r; return in }
	tests := []struct {
		name string
		in   Input
		want baselineWant
	}{
		{"a new revision starts the baseline with the canary, before any traffic",
			input(canarySpec(withBaseline), idle(flaggerv1beta1.CanaryPhaseSucceeded), obs("rev2")),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhaseProgressing, actions: baselineRunActs, routes: &Routes{Primary: 100},
				event: "Starting podinfo-baseline, a fresh copy of podinfo-primary, beside the canary"}, baselineFor: "rev2"}},
		{"the first step waits for the baseline to exist",
			input(canarySpec(withBaseline), progressing(0, 0, func(s *flaggerv1beta1.CanaryStatus) { s.WaitingSince = ago(time.Minute) }), obs("rev2")),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhaseProgressing, actions: baselineRunActs, routes: &Routes{Primary: 100}, requeue: time.Minute},
				baselineFor: "rev2", condition: "Waiting for the baseline to become ready: it does not exist yet"}},
		{"the first step waits for the baseline's pods",
			input(canarySpec(withBaseline), progressing(0, 0, func(s *flaggerv1beta1.CanaryStatus) { s.WaitingSince = ago(time.Minute) }),
				func() Observation {
					o := obs("rev2")
					o.Baseline = Workload{Exists: true, Replicas: 2, Revision: "rev2", Message: "waiting for rollout: 0 of 2 updated replicas available"}
					return o
				}()),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhaseProgressing, actions: baselineRunActs, requeue: time.Minute},
				baselineFor: "rev2", condition: "Waiting for the baseline to become ready: waiting for rollout: 0 of 2 updated replicas available"}},
		{"a baseline started for an earlier revision is not ready for this one",
			input(canarySpec(withBaseline), progressing(0, 0, func(s *flaggerv1beta1.CanaryStatus) { s.WaitingSince = ago(time.Minute) }), withBaselineFor("rev1", obs("rev2"))),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhaseProgressing, actions: baselineRunActs, requeue: time.Minute},
				baselineFor: "rev2", condition: "Waiting for the baseline to become ready: restarting it for revision rev2"}},
		{"the first step with a ready baseline gives it the canary's weight",
			step(input(canarySpec(withBaseline), progressing(0, 0), withBaselineFor("rev2", obs("rev2"))), passed("pre")),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhaseProgressing, weight: 20, iterations: 1, actions: baselineRunActs,
				routes: &Routes{Primary: 60, Canary: 20, Baseline: 20}, event: "Advance podinfo canary weight 20", requeue: time.Minute}, baselineFor: "rev2"}},
		{"the next step moves both to the maximum weight",
			step(input(canarySpec(withBaseline), progressing(20, 1), withBaselineFor("rev2", obs("rev2"))), passed("m")),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhaseProgressing, weight: 40, iterations: 2, actions: baselineRunActs,
				routes: &Routes{Primary: 20, Canary: 40, Baseline: 40}, requeue: time.Minute}, baselineFor: "rev2"}},
		{"a baseline that stops being ready holds the analysis",
			input(canarySpec(withBaseline), progressing(20, 1), func() Observation {
				o := obs("rev2")
				o.Baseline = Workload{Exists: true, Replicas: 2, Revision: "rev2", Message: "waiting for rollout: 1 of 2 updated replicas available"}
				return o
			}()),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhaseProgressing, weight: 20, iterations: 1, actions: baselineRunActs,
				routes: &Routes{Primary: 60, Canary: 20, Baseline: 20}, requeue: time.Minute}, baselineFor: "rev2", condition: "Waiting for the baseline"}},
		{"a baseline not ready by the progress deadline rolls the release back and is removed",
			input(canarySpec(withBaseline), progressing(20, 1, func(s *flaggerv1beta1.CanaryStatus) { s.WaitingSince = ago(11 * time.Minute) }), func() Observation {
				o := obs("rev2")
				o.Baseline = Workload{Exists: true, Replicas: 2, Revision: "rev2", Message: "ImagePullBackOff"}
				return o
			}()),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhaseFailed, actions: baselineRollbackActs, routes: &Routes{Primary: 100},
				event: "Rolling back podinfo: the baseline is not ready after 10m0s: ImagePullBackOff"}}},
		{"failed checks reaching the threshold remove the baseline with the rollback",
			step(input(canarySpec(withBaseline), progressing(20, 1, func(s *flaggerv1beta1.CanaryStatus) { s.FailedChecks = 1 }), withBaselineFor("rev2", obs("rev2"))),
				failing("latency-vs-baseline", "High against the baseline")),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhaseFailed, actions: baselineRollbackActs, routes: &Routes{Primary: 100},
				event: "failed checks threshold reached 2"}}},
		{"an abort removes the baseline with the rollback",
			withRequest(input(canarySpec(withBaseline), progressing(40, 2, func(s *flaggerv1beta1.CanaryStatus) { s.LastAnalysisTime = ago(0) }),
				withBaselineFor("rev2", obs("rev2"))), RequestAbort, "r1"),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhaseFailed, actions: baselineRollbackActs, routes: &Routes{Primary: 100}, event: "aborted by alice"}}},
		{"a closed confirm-promotion gate keeps the baseline and its share",
			step(input(canarySpec(withBaseline, withHook(flaggerv1beta1.ConfirmPromotionHook)), progressing(40, 2), withBaselineFor("rev2", obs("rev2"))),
				gates(flaggerv1beta1.ConfirmPromotionHook, false)),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhaseWaitingPromotion, weight: 40, iterations: 2, actions: baselineRunActs,
				routes: &Routes{Primary: 20, Canary: 40, Baseline: 40}, requeue: time.Minute}, baselineFor: "rev2"}},
		{"promotion gives the baseline's share back to the primary and keeps the baseline idle",
			step(input(canarySpec(withBaseline), progressing(40, 2), withBaselineFor("rev2", obs("rev2"))), passed("m")),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhasePromoting, weight: 40, iterations: 2, actions: promoteActs,
				routes: &Routes{Primary: 60, Canary: 40}, event: "Copying podinfo template spec"}}},
		{"finalising keeps the drained baseline until the release ends",
			input(canarySpec(withBaseline), progressing(0, 2, func(s *flaggerv1beta1.CanaryStatus) {
				s.Phase, s.LastTransitionTime = flaggerv1beta1.CanaryPhaseFinalising, *ago(2 * time.Second)
			}), withBaselineFor("rev2", promoted(obs("rev2")))),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhaseFinalising, iterations: 2, actions: waitActs, routes: &Routes{Primary: 100}, requeue: 3 * time.Second}}},
		{"the end of a promotion removes the baseline",
			input(canarySpec(withBaseline), progressing(0, 2, func(s *flaggerv1beta1.CanaryStatus) {
				s.Phase, s.LastTransitionTime = flaggerv1beta1.CanaryPhaseFinalising, *ago(time.Minute)
			}), withBaselineFor("rev2", promoted(obs("rev2")))),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhaseSucceeded,
				actions: []ActionKind{EnsureServices, ReconcileRoutes, SetRoutes, ScaleTargetToZero, RemoveBaseline, SyncAutoscaler, RunPostRollout},
				routes:  &Routes{Primary: 100}, applied: "rev2", promoted: "rev2", event: "Promotion completed"}}},
		{"a new revision during the analysis restarts the baseline for it",
			input(canarySpec(withBaseline), progressing(20, 1), withBaselineFor("rev2", obs("rev3"))),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhaseProgressing, actions: baselineRunActs, routes: &Routes{Primary: 100}, applied: "rev3",
				event: "Restarting the analysis"}, baselineFor: "rev3"}},
		{"an idle Canary with a baseline keeps removing any baseline",
			input(canarySpec(withBaseline), idle(flaggerv1beta1.CanaryPhaseSucceeded), obs("rev1")),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhaseSucceeded, actions: baselineIdleActs, applied: "rev1"}}},
		{"a baseline left after the spec dropped it is removed",
			input(canarySpec(), idle(flaggerv1beta1.CanaryPhaseFailed), withBaselineFor("rev1", obs("rev1"))),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhaseFailed, actions: baselineIdleActs, applied: "rev1"}}},
		{"a release that drops its baseline sends its share back and removes it",
			input(canarySpec(), progressing(20, 1, func(s *flaggerv1beta1.CanaryStatus) { s.LastAnalysisTime = ago(0) }), withBaselineFor("rev2", obs("rev2"))),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhaseProgressing, weight: 20, iterations: 1,
				actions: []ActionKind{EnsureServices, ReconcileRoutes, ScaleTargetUp, SetRoutes, RemoveBaseline}, routes: &Routes{Primary: 80, Canary: 20}, requeue: time.Minute}}},
		{"skipAnalysis promotes without a baseline",
			input(canarySpec(withBaseline, func(s *flaggerv1beta1.CanarySpec) { s.SkipAnalysis = true }), progressing(0, 0), obs("rev2")),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhasePromoting, actions: append(slices.Clone(promoteActs), RemoveBaseline), event: "Analysis skipped"}}},
		{"a release that becomes invalid removes its baseline with the rollback",
			func() Input {
				o := withBaselineFor("rev2", obs("rev2"))
				o.Invalid, o.Routable = &problem.Problem{Reason: problem.InvalidSpec, Message: "spec.analysis.baseline: maxWeight is 60"}, true
				return input(canarySpec(withBaseline), progressing(20, 1), o)
			}(),
			baselineWant{want: want{phase: flaggerv1beta1.CanaryPhaseFailed, actions: []ActionKind{SetRoutes, ScaleTargetToZero, RemoveBaseline, RunPostRollout},
				routes: &Routes{Primary: 100}, event: "maxWeight is 60", applied: "-"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.in)
			s, w := got.Status, tt.want
			if w.applied == "" {
				w.applied = "rev2"
			}
			if w.applied == "-" {
				w.applied = ""
			}
			if w.promoted == "" {
				w.promoted = "rev1"
			}
			if s.Phase != w.phase || s.CanaryWeight != w.weight || s.Iterations != w.iterations || s.FailedChecks != w.failed {
				t.Errorf("phase/weight/iterations/failed = %s/%d/%d/%d, want %s/%d/%d/%d",
					s.Phase, s.CanaryWeight, s.Iterations, s.FailedChecks, w.phase, w.weight, w.iterations, w.failed)
			}
			if !slices.Equal(kinds(got.Actions), w.actions) {
				t.Errorf("actions = %v, want %v", kinds(got.Actions), w.actions)
			}
			if w.routes != nil {
				if r := routesOf(got.Actions); r == nil || *r != *w.routes {
					t.Errorf("routes = %+v, want %+v", r, *w.routes)
				}
			}
			for _, a := range got.Actions {
				if a.Kind == EnsureBaseline && a.Revision != w.baselineFor {
					t.Errorf("EnsureBaseline for %q, want %q", a.Revision, w.baselineFor)
				}
			}
			if w.event != "" && !slices.ContainsFunc(got.Events, func(e Event) bool { return strings.Contains(e.Message, w.event) }) {
				t.Errorf("no event contains %q: %+v", w.event, got.Events)
			}
			if w.condition != "" {
				if c := findCondition(s.Conditions, flaggerv1beta1.PromotedType); c == nil || !strings.Contains(c.Message, w.condition) {
					t.Errorf("Promoted condition %+v, want it to say %q", c, w.condition)
				}
			}
			if w.requeue != 0 && got.RequeueAfter != w.requeue {
				t.Errorf("requeue = %s, want %s", got.RequeueAfter, w.requeue)
			}
			if s.LastAppliedSpec != w.applied || s.LastPromotedSpec != w.promoted {
				t.Errorf("applied/promoted = %s/%s, want %s/%s", s.LastAppliedSpec, s.LastPromotedSpec, w.applied, w.promoted)
			}
		})
	}
}

// TestPlan_NoStepRunsBeforeTheBaselineIsReady: the checks of a step, which
// compare against the baseline, are not run while it is missing, not
// ready, or still running for another revision.
func TestPlan_NoStepRunsBeforeTheBaselineIsReady(t *testing.T) {
	notReadyBaseline := obs("rev2")
	notReadyBaseline.Baseline = Workload{Exists: true, Replicas: 2, Revision: "rev2"}
	for _, tc := range []struct {
		name string
		obs  Observation
		due  bool
	}{
		{"no baseline", obs("rev2"), false},
		{"a baseline that is not ready", notReadyBaseline, false},
		{"a baseline for the last revision", withBaselineFor("rev1", obs("rev2")), false},
		{"a ready baseline for this revision", withBaselineFor("rev2", obs("rev2")), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			due := Plan(input(canarySpec(withBaseline), progressing(20, 1), tc.obs))
			if due.Analysis != tc.due {
				t.Errorf("Plan says the analysis is due: %t, want %t", due.Analysis, tc.due)
			}
		})
	}
}

// TestProperty_BaselineRunsOnlyBesideAnAnalysedCanary plays random
// histories of releases with a baseline, with crashes, conflicts, restarts,
// new revisions and spec edits: besides the invariants of every release,
// the baseline gets traffic only while it exists and the analysis runs,
// always as much as the canary, and it never outlives the release.
func TestProperty_BaselineRunsOnlyBesideAnAnalysedCanary(t *testing.T) {
	fuzzReleases(t, true)
}
