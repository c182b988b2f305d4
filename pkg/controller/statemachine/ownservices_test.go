package statemachine

import (
	"slices"
	"testing"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// TestDecide_TargetsWithTheirOwnServicesGetNoneGenerated checks that a
// target that brings its Services (a Kubernetes or Knative Service) gets
// the same decisions as a Deployment, without the actions on the apex,
// primary and canary Services: generated Services would fight Knative's,
// or the target Service itself.
func TestDecide_TargetsWithTheirOwnServicesGetNoneGenerated(t *testing.T) {
	without := func(acts []ActionKind, drop ...ActionKind) []ActionKind {
		return slices.DeleteFunc(slices.Clone(acts), func(k ActionKind) bool { return slices.Contains(drop, k) })
	}
	own := func(o Observation) Observation {
		o.OwnServices = true
		return o
	}
	terminating := func() flaggerv1beta1.CanaryStatus {
		st := idle(flaggerv1beta1.CanaryPhaseTerminating)
		st.WaitingSince = ago(time.Minute)
		return st
	}
	deleting := Observation{Revision: "rev1", Target: ready(2), Primary: ready(2), Deleting: true}
	tests := []struct {
		name    string
		status  flaggerv1beta1.CanaryStatus
		obs     Observation
		results Results
		phase   flaggerv1beta1.CanaryPhase
		want    []ActionKind // with generated Services
	}{
		{"initializing creates the primary first", flaggerv1beta1.CanaryStatus{}, Observation{Revision: "rev1", Target: ready(2)}, Results{},
			flaggerv1beta1.CanaryPhaseInitializing, []ActionKind{EnsurePrimary}},
		{"initializing makes the Services while the primary starts",
			flaggerv1beta1.CanaryStatus{Phase: flaggerv1beta1.CanaryPhaseInitializing}, Observation{Revision: "rev1", Target: ready(2), Primary: notReady("0 of 2 available")}, Results{},
			flaggerv1beta1.CanaryPhaseInitializing, []ActionKind{EnsurePrimary, EnsureServices}},
		{"initialization done", flaggerv1beta1.CanaryStatus{Phase: flaggerv1beta1.CanaryPhaseInitializing}, obs("rev1"), Results{},
			flaggerv1beta1.CanaryPhaseInitialized, append([]ActionKind{EnsurePrimary}, idleActs...)},
		{"idle", idle(flaggerv1beta1.CanaryPhaseSucceeded), obs("rev1"), Results{}, flaggerv1beta1.CanaryPhaseSucceeded, idleActs},
		{"a new revision starts an analysis", idle(flaggerv1beta1.CanaryPhaseSucceeded), obs("rev2"), Results{}, flaggerv1beta1.CanaryPhaseProgressing, runActs},
		{"the last step promotes", progressing(40, 2), obs("rev2"), passed("m"), flaggerv1beta1.CanaryPhasePromoting, promoteActs},
		{"a failed step rolls back", progressing(20, 1, func(s *flaggerv1beta1.CanaryStatus) { s.FailedChecks = 1 }), obs("rev2"),
			failing("m", "too slow"), flaggerv1beta1.CanaryPhaseFailed, rollbackActs},
		{"deletion restores the routes", terminating(), deleting, Results{}, flaggerv1beta1.CanaryPhaseTerminated,
			[]ActionKind{RestoreTarget, FinalizeRoutes, ReleaseServices, RemoveFinalizer}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(canarySpec(), tt.status, tt.obs)
			in.Results = tt.results
			generated := Decide(in)
			if generated.Status.Phase != tt.phase || !slices.Equal(kinds(generated.Actions), tt.want) {
				t.Fatalf("with generated Services: phase %s, actions %v; want %s, %v", generated.Status.Phase, kinds(generated.Actions), tt.phase, tt.want)
			}
			in.Obs = own(in.Obs)
			got := Decide(in)
			want := without(tt.want, EnsureServices, ReleaseServices)
			if got.Status.Phase != tt.phase || !slices.Equal(kinds(got.Actions), want) {
				t.Errorf("with the target's own Services: phase %s, actions %v; want %s, %v", got.Status.Phase, kinds(got.Actions), tt.phase, want)
			}
		})
	}
}

// TestDecide_StartLooksAgainForTheFirstStep checks that starting an
// analysis asks to be looked at again at once: the first step is due when
// both workloads are ready, and a target that the start leaves unchanged
// (a Knative revision that is ready, a Deployment left running) sends no
// event that would wake the Canary.
func TestDecide_StartLooksAgainForTheFirstStep(t *testing.T) {
	for _, o := range []Observation{obs("rev2"), func() Observation { o := obs("rev2"); o.OwnServices = true; return o }()} {
		d := Decide(input(canarySpec(), idle(flaggerv1beta1.CanaryPhaseSucceeded), o))
		if d.Status.Phase != flaggerv1beta1.CanaryPhaseProgressing || d.RequeueAfter != time.Second {
			t.Errorf("own Services %t: phase %s, requeue after %s; want Progressing, 1s", o.OwnServices, d.Status.Phase, d.RequeueAfter)
		}
	}
}
