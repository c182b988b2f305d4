package statemachine

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) *metav1.Time { t := metav1.NewTime(t0.Add(-d)); return &t }

func ready(replicas int32) Workload { return Workload{Exists: true, Ready: true, Replicas: replicas} }

func notReady(msg string) Workload {
	return Workload{Exists: true, Replicas: 2, Message: msg}
}

func canarySpec(mutate ...func(*flaggerv1beta1.CanarySpec)) flaggerv1beta1.CanarySpec {
	s := flaggerv1beta1.CanarySpec{
		TargetRef: flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
		Service:   flaggerv1beta1.CanaryService{Port: 9898},
		Analysis: &flaggerv1beta1.CanaryAnalysis{
			Interval: "1m", Threshold: 2, StepWeight: ptr.To[int32](20), MaxWeight: ptr.To[int32](40),
		},
		ProgressDeadlineSeconds: ptr.To[int32](600),
	}
	for _, m := range mutate {
		m(&s)
	}
	return s
}

func withHook(t flaggerv1beta1.HookType) func(*flaggerv1beta1.CanarySpec) {
	return func(s *flaggerv1beta1.CanarySpec) {
		s.Analysis.Webhooks = append(s.Analysis.Webhooks, flaggerv1beta1.CanaryWebhook{Name: string(t), Type: t, URL: "http://gate/"})
	}
}

func blueGreen(iterations int32) func(*flaggerv1beta1.CanarySpec) {
	return func(s *flaggerv1beta1.CanarySpec) {
		s.Analysis.StepWeight, s.Analysis.MaxWeight, s.Analysis.Iterations = nil, nil, ptr.To(iterations)
	}
}

// progressing is the status of a canary in its analysis of revision "rev2".
func progressing(weight, iterations int32, mutate ...func(*flaggerv1beta1.CanaryStatus)) flaggerv1beta1.CanaryStatus {
	s := flaggerv1beta1.CanaryStatus{
		Phase: flaggerv1beta1.CanaryPhaseProgressing, CanaryWeight: weight, Iterations: iterations,
		LastAppliedSpec: "rev2", LastPromotedSpec: "rev1", LastAnalysisTime: ago(2 * time.Minute),
		LastTransitionTime: *ago(10 * time.Minute),
	}
	if iterations == 0 {
		s.LastAnalysisTime = nil
	}
	for _, m := range mutate {
		m(&s)
	}
	return s
}

func idle(phase flaggerv1beta1.CanaryPhase) flaggerv1beta1.CanaryStatus {
	return flaggerv1beta1.CanaryStatus{Phase: phase, LastAppliedSpec: "rev1", LastPromotedSpec: "rev1"}
}

func input(spec flaggerv1beta1.CanarySpec, status flaggerv1beta1.CanaryStatus, obs Observation) Input {
	return Input{Spec: spec, Status: status, Obs: obs, Now: t0, Generation: 1,
		Config: Config{MinInterval: 10 * time.Second, SplitsTraffic: true}}
}

// obs observes target revision rev with both workloads ready, the primary
// running rev1 and all traffic on it.
func obs(rev string) Observation {
	return Observation{Revision: rev, Target: ready(2), Primary: primaryAt("rev1"), Admitted: true, Routes: &Routes{Primary: 100}}
}

// primaryAt is a ready primary that runs a revision.
func primaryAt(rev string) Workload {
	w := ready(2)
	w.Revision = rev
	return w
}

// promoted observes a primary that runs rev2, the analysed revision.
func promoted(o Observation) Observation {
	o.Primary = primaryAt("rev2")
	return o
}

// The actions that hold the cluster where a status says it is.
var (
	idleActs     = []ActionKind{EnsureServices, ReconcileRoutes, SetRoutes, ScaleTargetToZero}
	waitActs     = []ActionKind{EnsureServices, ReconcileRoutes, SetRoutes}
	runActs      = []ActionKind{EnsureServices, ReconcileRoutes, ScaleTargetUp, SetRoutes}
	promoteActs  = []ActionKind{EnsureServices, ReconcileRoutes, ScaleTargetUp, Promote, ScalePrimaryAtLeast, SetRoutes}
	rollbackActs = []ActionKind{EnsureServices, ReconcileRoutes, SetRoutes, ScaleTargetToZero, RunPostRollout}
)

func passed(names ...string) Results {
	var r Results
	for _, n := range names {
		r.Checks = append(r.Checks, flaggerv1beta1.CanaryCheckResult{Kind: flaggerv1beta1.CheckMetric, Name: n, Passed: true})
	}
	return r
}

func failing(name, msg string) Results {
	return Results{Checks: []flaggerv1beta1.CanaryCheckResult{{Kind: flaggerv1beta1.CheckMetric, Name: name, Message: msg}}}
}

// gates is the answer of a gate, with a step whose checks ran and found
// nothing to check.
func gates(t flaggerv1beta1.HookType, open bool) Results {
	return Results{Gates: map[flaggerv1beta1.HookType]Gate{t: {Open: open, Message: "answered 403"}}, Checks: []flaggerv1beta1.CanaryCheckResult{}}
}

func kinds(actions []Action) []ActionKind {
	var out []ActionKind
	for _, a := range actions {
		out = append(out, a.Kind)
	}
	return out
}

func routesOf(actions []Action) *Routes {
	for _, a := range actions {
		if a.Kind == SetRoutes {
			r := a.Routes
			return &r
		}
	}
	return nil
}

type want struct {
	phase      flaggerv1beta1.CanaryPhase
	weight     int32
	iterations int32
	failed     int32
	actions    []ActionKind
	routes     *Routes
	event      string // a substring of one event
	requeue    time.Duration
	applied    string // status.lastAppliedSpec
	promoted   string // status.lastPromotedSpec
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		want want
	}{
		{"a new Canary starts initializing and creates the primary",
			input(canarySpec(), flaggerv1beta1.CanaryStatus{}, Observation{Revision: "rev1", Target: ready(2), Admitted: true}),
			want{phase: flaggerv1beta1.CanaryPhaseInitializing, actions: []ActionKind{EnsurePrimary}, event: "New Canary detected", requeue: time.Minute}},
		{"initialization completes when the primary is ready",
			input(canarySpec(), flaggerv1beta1.CanaryStatus{Phase: flaggerv1beta1.CanaryPhaseInitializing, WaitingSince: ago(time.Minute)}, obs("rev1")),
			want{phase: flaggerv1beta1.CanaryPhaseInitialized, actions: []ActionKind{EnsurePrimary, EnsureServices, ReconcileRoutes, SetRoutes, ScaleTargetToZero},
				routes: &Routes{Primary: 100}, applied: "rev1", promoted: "rev1", event: "Initialization done"}},
		{"a primary that is not ready past the deadline is reported and still awaited",
			input(canarySpec(), flaggerv1beta1.CanaryStatus{Phase: flaggerv1beta1.CanaryPhaseInitializing, WaitingSince: ago(11 * time.Minute)},
				Observation{Revision: "rev1", Target: ready(2), Primary: notReady("0 of 2 available"), Admitted: true}),
			want{phase: flaggerv1beta1.CanaryPhaseInitializing, actions: []ActionKind{EnsurePrimary, EnsureServices}, event: "not ready after 10m0s: 0 of 2 available"}},
		{"an idle canary with no new revision only keeps its Services and routes",
			input(canarySpec(), idle(flaggerv1beta1.CanaryPhaseSucceeded), obs("rev1")),
			want{phase: flaggerv1beta1.CanaryPhaseSucceeded, actions: idleActs, applied: "rev1"}},
		{"a manual revert to the promoted revision starts nothing",
			input(canarySpec(), flaggerv1beta1.CanaryStatus{Phase: flaggerv1beta1.CanaryPhaseFailed, LastAppliedSpec: "bad", LastPromotedSpec: "rev1"}, obs("rev1")),
			want{phase: flaggerv1beta1.CanaryPhaseFailed, actions: idleActs, applied: "bad"}},
		{"a new revision starts the analysis and scales the canary up",
			input(canarySpec(), idle(flaggerv1beta1.CanaryPhaseSucceeded), obs("rev2")),
			want{phase: flaggerv1beta1.CanaryPhaseProgressing, actions: runActs,
				applied: "rev2", promoted: "rev1", event: "New revision detected! Scaling up podinfo"}},
		{"a new revision after a failed one starts a new analysis",
			input(canarySpec(), flaggerv1beta1.CanaryStatus{Phase: flaggerv1beta1.CanaryPhaseFailed, LastAppliedSpec: "bad", LastPromotedSpec: "rev1"}, obs("rev3")),
			want{phase: flaggerv1beta1.CanaryPhaseProgressing, actions: runActs, applied: "rev3"}},
		{"a new revision waits for a slot when the concurrency cap is reached",
			input(canarySpec(), idle(flaggerv1beta1.CanaryPhaseSucceeded), Observation{Revision: "rev2", Target: ready(0), Primary: ready(2), AdmissionMessage: "2 of 2 analyses running"}),
			want{phase: flaggerv1beta1.CanaryPhaseWaiting, actions: waitActs, event: "2 of 2 analyses running", requeue: time.Minute, applied: "rev1"}},
		{"a closed confirm-rollout gate keeps the revision waiting",
			func() Input {
				in := input(canarySpec(withHook(flaggerv1beta1.ConfirmRolloutHook)), idle(flaggerv1beta1.CanaryPhaseSucceeded), obs("rev2"))
				in.Results = gates(flaggerv1beta1.ConfirmRolloutHook, false)
				return in
			}(),
			want{phase: flaggerv1beta1.CanaryPhaseWaiting, actions: waitActs, event: "confirm-rollout", requeue: time.Minute, applied: "rev1"}},
		{"an open confirm-rollout gate starts the analysis",
			func() Input {
				in := input(canarySpec(withHook(flaggerv1beta1.ConfirmRolloutHook)), idle(flaggerv1beta1.CanaryPhaseWaiting), obs("rev2"))
				in.Status.WaitingSince = ago(3 * time.Minute)
				in.Results = gates(flaggerv1beta1.ConfirmRolloutHook, true)
				return in
			}(),
			want{phase: flaggerv1beta1.CanaryPhaseProgressing, actions: runActs, applied: "rev2"}},
		{"the analysis waits for canary pods until the deadline",
			input(canarySpec(), progressing(0, 0, func(s *flaggerv1beta1.CanaryStatus) { s.WaitingSince = ago(time.Minute) }),
				Observation{Revision: "rev2", Target: notReady("1 of 2 available"), Primary: ready(2), Admitted: true}),
			want{phase: flaggerv1beta1.CanaryPhaseProgressing, actions: runActs, requeue: time.Minute, applied: "rev2"}},
		{"canary pods not ready past the deadline roll back",
			input(canarySpec(), progressing(20, 1, func(s *flaggerv1beta1.CanaryStatus) { s.WaitingSince = ago(11 * time.Minute) }),
				Observation{Revision: "rev2", Target: notReady("CrashLoopBackOff"), Primary: ready(2), Admitted: true}),
			want{phase: flaggerv1beta1.CanaryPhaseFailed, actions: rollbackActs,
				routes: &Routes{Primary: 100}, event: "canary is not ready after 10m0s: CrashLoopBackOff", applied: "rev2", promoted: "rev1"}},
		{"a stalled canary rollout rolls back at once",
			input(canarySpec(), progressing(20, 1), Observation{Revision: "rev2", Target: Workload{Exists: true, Stalled: true, Message: "ProgressDeadlineExceeded"}, Primary: ready(2), Admitted: true}),
			want{phase: flaggerv1beta1.CanaryPhaseFailed, actions: rollbackActs, routes: &Routes{Primary: 100}}},
		{"the first step runs the pre-rollout checks and shifts the first weight",
			func() Input {
				in := input(canarySpec(), progressing(0, 0), obs("rev2"))
				in.Results = passed("pre")
				return in
			}(),
			want{phase: flaggerv1beta1.CanaryPhaseProgressing, weight: 20, iterations: 1, actions: runActs,
				routes: &Routes{Primary: 80, Canary: 20}, event: "Advance podinfo canary weight 20", requeue: time.Minute}},
		{"a step that is not due yet waits for the interval",
			input(canarySpec(), progressing(20, 1, func(s *flaggerv1beta1.CanaryStatus) { s.LastAnalysisTime = ago(20 * time.Second) }), obs("rev2")),
			want{phase: flaggerv1beta1.CanaryPhaseProgressing, weight: 20, iterations: 1, actions: runActs, requeue: 40 * time.Second}},
		{"a passing step at the maximum weight promotes after scaling the primary up",
			func() Input {
				in := input(canarySpec(), progressing(40, 2), Observation{Revision: "rev2", Target: ready(5), Primary: ready(2), AutoscalerDesired: 7, Admitted: true})
				in.Results = passed("request-success-rate")
				return in
			}(),
			want{phase: flaggerv1beta1.CanaryPhasePromoting, weight: 40, iterations: 2, actions: promoteActs, event: "Copying podinfo template spec"}},
		{"a failed check counts and halts advancement",
			func() Input {
				in := input(canarySpec(), progressing(20, 1), obs("rev2"))
				in.Results = failing("request-duration", "612ms > 500ms")
				return in
			}(),
			want{phase: flaggerv1beta1.CanaryPhaseProgressing, weight: 20, iterations: 1, failed: 1, actions: runActs, event: "Halt advancement of podinfo: metric request-duration failed: 612ms > 500ms", requeue: time.Minute}},
		{"failed checks reaching the threshold roll back",
			func() Input {
				in := input(canarySpec(), progressing(20, 1, func(s *flaggerv1beta1.CanaryStatus) { s.FailedChecks = 1 }), obs("rev2"))
				in.Results = failing("request-duration", "too slow")
				return in
			}(),
			want{phase: flaggerv1beta1.CanaryPhaseFailed, actions: rollbackActs, routes: &Routes{Primary: 100}, event: "failed checks threshold reached 2"}},
		{"a new revision during the analysis restarts it",
			input(canarySpec(), progressing(20, 1), obs("rev3")),
			want{phase: flaggerv1beta1.CanaryPhaseProgressing, actions: runActs, routes: &Routes{Primary: 100}, applied: "rev3", event: "Restarting the analysis"}},
		{"an open rollback gate rolls back",
			func() Input {
				in := input(canarySpec(withHook(flaggerv1beta1.RollbackHook)), progressing(20, 1), obs("rev2"))
				in.Results = gates(flaggerv1beta1.RollbackHook, true)
				return in
			}(),
			want{phase: flaggerv1beta1.CanaryPhaseFailed, actions: rollbackActs, event: "a rollback webhook asked for it"}},
		{"a closed confirm-promotion gate waits in WaitingPromotion",
			func() Input {
				in := input(canarySpec(withHook(flaggerv1beta1.ConfirmPromotionHook)), progressing(40, 2), obs("rev2"))
				in.Results = gates(flaggerv1beta1.ConfirmPromotionHook, false)
				return in
			}(),
			want{phase: flaggerv1beta1.CanaryPhaseWaitingPromotion, weight: 40, iterations: 2, actions: runActs, event: "Waiting for approval of the promotion", requeue: time.Minute}},
		{"an open confirm-promotion gate promotes",
			func() Input {
				in := input(canarySpec(withHook(flaggerv1beta1.ConfirmPromotionHook)), progressing(40, 2, func(s *flaggerv1beta1.CanaryStatus) {
					s.Phase = flaggerv1beta1.CanaryPhaseWaitingPromotion
				}), obs("rev2"))
				in.Results = gates(flaggerv1beta1.ConfirmPromotionHook, true)
				return in
			}(),
			want{phase: flaggerv1beta1.CanaryPhasePromoting, weight: 40, iterations: 2, actions: promoteActs}},
		{"a closed confirm-traffic-increase gate keeps the weight",
			func() Input {
				in := input(canarySpec(withHook(flaggerv1beta1.ConfirmTrafficIncreaseHook)), progressing(20, 1), obs("rev2"))
				in.Results = gates(flaggerv1beta1.ConfirmTrafficIncreaseHook, false)
				return in
			}(),
			want{phase: flaggerv1beta1.CanaryPhaseProgressing, weight: 20, iterations: 1, actions: runActs, event: "traffic increase", requeue: time.Minute}},
		{"a primary that runs the analysed revision and is ready takes all traffic back",
			input(canarySpec(), progressing(40, 2, func(s *flaggerv1beta1.CanaryStatus) {
				s.Phase, s.WaitingSince = flaggerv1beta1.CanaryPhasePromoting, ago(time.Minute)
			}), promoted(obs("rev2"))),
			want{phase: flaggerv1beta1.CanaryPhaseFinalising, iterations: 2, actions: waitActs, routes: &Routes{Primary: 100},
				event: "Routing all traffic to podinfo-primary", requeue: 5 * time.Second}},
		{"a primary that does not run the analysed revision yet is promoted again, idempotently",
			input(canarySpec(), progressing(40, 2, func(s *flaggerv1beta1.CanaryStatus) {
				s.Phase, s.WaitingSince = flaggerv1beta1.CanaryPhasePromoting, ago(time.Minute)
			}), obs("rev2")),
			want{phase: flaggerv1beta1.CanaryPhasePromoting, weight: 40, iterations: 2, actions: promoteActs, routes: &Routes{Primary: 60, Canary: 40}}},
		{"a target that changed before the promotion is analysed anew, never copied",
			input(canarySpec(), progressing(40, 2, func(s *flaggerv1beta1.CanaryStatus) {
				s.Phase, s.WaitingSince = flaggerv1beta1.CanaryPhasePromoting, ago(time.Minute)
			}), obs("rev3")),
			want{phase: flaggerv1beta1.CanaryPhaseProgressing, actions: runActs, routes: &Routes{Primary: 100}, applied: "rev3", event: "Restarting the analysis"}},
		{"finalising waits for the router to report all traffic on the primary",
			input(canarySpec(), progressing(0, 2, func(s *flaggerv1beta1.CanaryStatus) {
				s.Phase, s.LastTransitionTime = flaggerv1beta1.CanaryPhaseFinalising, *ago(time.Minute)
			}), func() Observation { o := promoted(obs("rev2")); o.Routes = &Routes{Primary: 60, Canary: 40}; return o }()),
			want{phase: flaggerv1beta1.CanaryPhaseFinalising, iterations: 2, actions: waitActs, routes: &Routes{Primary: 100}, requeue: time.Second}},
		{"finalising keeps the canary up while requests drain",
			input(canarySpec(), progressing(0, 2, func(s *flaggerv1beta1.CanaryStatus) {
				s.Phase, s.LastTransitionTime = flaggerv1beta1.CanaryPhaseFinalising, *ago(2 * time.Second)
			}), promoted(obs("rev2"))),
			want{phase: flaggerv1beta1.CanaryPhaseFinalising, iterations: 2, actions: waitActs, requeue: 3 * time.Second}},
		{"plain Services never sent the canary the apex's traffic: finalising scales it down without a drain",
			func() Input {
				in := input(canarySpec(), progressing(0, 2, func(s *flaggerv1beta1.CanaryStatus) {
					s.Phase, s.LastTransitionTime = flaggerv1beta1.CanaryPhaseFinalising, *ago(0)
				}), promoted(obs("rev2")))
				in.Config.SplitsTraffic = false
				return in
			}(),
			want{phase: flaggerv1beta1.CanaryPhaseSucceeded, actions: []ActionKind{EnsureServices, ReconcileRoutes, SetRoutes, ScaleTargetToZero, SyncAutoscaler, RunPostRollout},
				routes: &Routes{Primary: 100}, applied: "rev2", promoted: "rev2", event: "Promotion completed! Scaling down podinfo"}},
		{"finalising scales the canary down once traffic is on the ready primary",
			input(canarySpec(), progressing(0, 2, func(s *flaggerv1beta1.CanaryStatus) {
				s.Phase, s.LastTransitionTime = flaggerv1beta1.CanaryPhaseFinalising, *ago(time.Minute)
			}), promoted(obs("rev2"))),
			want{phase: flaggerv1beta1.CanaryPhaseSucceeded, actions: []ActionKind{EnsureServices, ReconcileRoutes, SetRoutes, ScaleTargetToZero, SyncAutoscaler, RunPostRollout},
				routes: &Routes{Primary: 100}, applied: "rev2", promoted: "rev2", event: "Promotion completed! Scaling down podinfo"}},
		{"a promotion stuck past the deadline fails and leaves traffic on the canary",
			input(canarySpec(), progressing(40, 2, func(s *flaggerv1beta1.CanaryStatus) {
				s.Phase, s.WaitingSince = flaggerv1beta1.CanaryPhasePromoting, ago(11*time.Minute)
			}), Observation{Revision: "rev2", Target: ready(2), Primary: notReady("ImagePullBackOff"), Admitted: true}),
			want{phase: flaggerv1beta1.CanaryPhaseFailed, weight: 100, iterations: 2, actions: waitActs, routes: &Routes{Canary: 100}, event: "Promotion of podinfo failed"}},
		{"stepWeightPromotion moves traffic back gradually",
			input(canarySpec(func(s *flaggerv1beta1.CanarySpec) { s.Analysis.StepWeightPromotion = 15 }), progressing(40, 2, func(s *flaggerv1beta1.CanaryStatus) {
				s.Phase = flaggerv1beta1.CanaryPhasePromoting
			}), promoted(obs("rev2"))),
			want{phase: flaggerv1beta1.CanaryPhasePromoting, weight: 25, iterations: 2, actions: runActs, routes: &Routes{Primary: 75, Canary: 25}, requeue: time.Minute}},
		{"the weight never exceeds maxWeight",
			func() Input {
				in := input(canarySpec(func(s *flaggerv1beta1.CanarySpec) {
					s.Analysis.StepWeight, s.Analysis.MaxWeight = ptr.To[int32](30), ptr.To[int32](50)
				}),
					progressing(30, 1), obs("rev2"))
				in.Results = passed("m")
				return in
			}(),
			want{phase: flaggerv1beta1.CanaryPhaseProgressing, weight: 50, iterations: 2, actions: runActs, routes: &Routes{Primary: 50, Canary: 50}}},
		{"stepWeights are followed and capped by maxWeight",
			func() Input {
				in := input(canarySpec(func(s *flaggerv1beta1.CanarySpec) {
					s.Analysis.StepWeight, s.Analysis.StepWeights, s.Analysis.MaxWeight = nil, []int32{5, 10, 80}, ptr.To[int32](50)
				}), progressing(10, 2), obs("rev2"))
				in.Results = passed("m")
				return in
			}(),
			want{phase: flaggerv1beta1.CanaryPhaseProgressing, weight: 50, iterations: 3, actions: runActs, routes: &Routes{Primary: 50, Canary: 50}}},
		{"with mirroring the first step only mirrors",
			func() Input {
				in := input(canarySpec(func(s *flaggerv1beta1.CanarySpec) { s.Analysis.Mirror = true }), progressing(0, 0), obs("rev2"))
				in.Results = passed("pre")
				return in
			}(),
			want{phase: flaggerv1beta1.CanaryPhaseProgressing, iterations: 1, actions: runActs, routes: &Routes{Primary: 100, Mirrored: true}}},
		{"A/B testing routes matching requests to the canary from the first step",
			func() Input {
				in := input(canarySpec(blueGreen(3), func(s *flaggerv1beta1.CanarySpec) {
					s.Analysis.Match = []flaggerv1beta1.HTTPMatchConditions{{Headers: map[string]flaggerv1beta1.HeaderMatch{"x-canary": {Exact: ptr.To("1")}}}}
				}), progressing(0, 0), obs("rev2"))
				in.Results = passed("pre")
				return in
			}(),
			want{phase: flaggerv1beta1.CanaryPhaseProgressing, iterations: 1, actions: runActs, routes: &Routes{Canary: 100}, event: "A/B testing iteration 0/3"}},
		{"blue/green switches all traffic to the canary after its iterations",
			func() Input {
				in := input(canarySpec(blueGreen(3)), progressing(0, 3), obs("rev2"))
				in.Results = passed("m")
				return in
			}(),
			want{phase: flaggerv1beta1.CanaryPhaseProgressing, weight: 100, iterations: 4, actions: runActs, routes: &Routes{Canary: 100}, event: "switching all traffic"}},
		{"blue/green promotes after a passing step on the canary",
			func() Input {
				in := input(canarySpec(blueGreen(3)), progressing(100, 4), obs("rev2"))
				in.Results = passed("m")
				return in
			}(),
			want{phase: flaggerv1beta1.CanaryPhasePromoting, weight: 100, iterations: 4, actions: promoteActs}},
		{"a router that cannot split traffic runs canary specs as blue/green",
			func() Input {
				in := input(canarySpec(), idle(flaggerv1beta1.CanaryPhaseSucceeded), obs("rev2"))
				in.Config.SplitsTraffic = false
				return in
			}(),
			want{phase: flaggerv1beta1.CanaryPhaseProgressing, actions: runActs, applied: "rev2", event: "blue/green analysis of 10 iterations"}},
		{"skipAnalysis promotes once the canary is ready",
			input(canarySpec(func(s *flaggerv1beta1.CanarySpec) { s.SkipAnalysis = true }), progressing(0, 0), obs("rev2")),
			want{phase: flaggerv1beta1.CanaryPhasePromoting, actions: promoteActs, event: "Analysis skipped"}},
		{"after a restart the analysis resumes at the persisted step time",
			input(canarySpec(), progressing(20, 1, func(s *flaggerv1beta1.CanaryStatus) { s.LastAnalysisTime = ago(30 * time.Second) }), obs("rev2")),
			want{phase: flaggerv1beta1.CanaryPhaseProgressing, weight: 20, iterations: 1, actions: runActs, requeue: 30 * time.Second}},
		{"deleting with revertOnDeletion scales the target up first",
			func() Input {
				in := input(canarySpec(), idle(flaggerv1beta1.CanaryPhaseSucceeded), Observation{Revision: "rev1", Target: notReady("0 of 2"), Primary: ready(2), Deleting: true})
				return in
			}(),
			want{phase: flaggerv1beta1.CanaryPhaseTerminating, actions: []ActionKind{RestoreTarget}, event: "Terminating", requeue: time.Minute, applied: "rev1", promoted: "rev1"}},
		{"deletion completes when the target is ready again",
			func() Input {
				st := idle(flaggerv1beta1.CanaryPhaseTerminating)
				st.WaitingSince = ago(time.Minute)
				return input(canarySpec(), st, Observation{Revision: "rev1", Target: ready(2), Primary: ready(2), Deleting: true})
			}(),
			want{phase: flaggerv1beta1.CanaryPhaseTerminated, actions: []ActionKind{RestoreTarget, FinalizeRoutes, ReleaseServices, RemoveFinalizer}, event: "Terminated canary", applied: "rev1", promoted: "rev1"}},
		{"an invalid Canary is reported and nothing is touched",
			input(canarySpec(), idle(flaggerv1beta1.CanaryPhaseSucceeded), Observation{Invalid: &problem.Problem{Reason: problem.TargetNotFound, Message: "Deployment podinfo not found"}}),
			want{phase: flaggerv1beta1.CanaryPhaseSucceeded, event: "Deployment podinfo not found", applied: "rev1", promoted: "rev1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.in)
			s := got.Status
			w := tt.want
			if w.applied == "" {
				w.applied = "rev2"
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
			if w.event != "" && !slices.ContainsFunc(got.Events, func(e Event) bool { return strings.Contains(e.Message, w.event) }) {
				t.Errorf("no event contains %q; events: %+v", w.event, got.Events)
			}
			if w.requeue != 0 && got.RequeueAfter != w.requeue {
				t.Errorf("RequeueAfter = %s, want %s", got.RequeueAfter, w.requeue)
			}
			if tt.in.Status.LastPromotedSpec != "" && (s.LastAppliedSpec != w.applied || s.LastPromotedSpec != w.promoted) && w.phase != flaggerv1beta1.CanaryPhaseInitialized {
				t.Errorf("lastAppliedSpec/lastPromotedSpec = %s/%s, want %s/%s", s.LastAppliedSpec, s.LastPromotedSpec, w.applied, w.promoted)
			}
			if s.ObservedGeneration != 1 {
				t.Errorf("observedGeneration = %d, want 1", s.ObservedGeneration)
			}
			if s.Phase != tt.in.Status.Phase {
				assertPromotedCondition(t, s)
			}
		})
	}
}

// assertPromotedCondition checks Flagger's condition shape: type Promoted,
// reason the phase, status by phase.
func assertPromotedCondition(t *testing.T, s flaggerv1beta1.CanaryStatus) {
	t.Helper()
	c := findCondition(s.Conditions, flaggerv1beta1.PromotedType)
	if s.Phase == "" {
		return
	}
	if c == nil {
		t.Fatalf("no Promoted condition in %+v", s.Conditions)
	}
	if c.Reason != string(s.Phase) || c.Status != promotedStatus(s.Phase) {
		t.Errorf("Promoted condition = %s/%s, want %s/%s", c.Status, c.Reason, promotedStatus(s.Phase), s.Phase)
	}
}

func TestDecide_InvalidCanaryEmitsOneEventUntilTheProblemChanges(t *testing.T) {
	in := input(canarySpec(), idle(flaggerv1beta1.CanaryPhaseSucceeded), Observation{Invalid: &problem.Problem{Reason: problem.TargetNotFound, Message: "Deployment podinfo not found"}})
	first := Decide(in)
	if len(first.Events) != 1 || first.Events[0].Type != Warning {
		t.Fatalf("first decision events = %+v, want one warning", first.Events)
	}
	c := findCondition(first.Status.Conditions, flaggerv1beta1.ValidType)
	if c == nil || c.Status != corev1.ConditionFalse || c.Reason != "TargetNotFound" {
		t.Fatalf("Valid condition = %+v", c)
	}
	in.Status = first.Status
	if again := Decide(in); len(again.Events) != 0 || len(again.Actions) != 0 {
		t.Errorf("second decision = %+v, want no events and no actions", again)
	}
}

func TestDecide_HumanGatesSayHowLongTheyWaitedAndNeverFail(t *testing.T) {
	in := input(canarySpec(withHook(flaggerv1beta1.ConfirmPromotionHook)), progressing(40, 2, func(s *flaggerv1beta1.CanaryStatus) {
		s.Phase = flaggerv1beta1.CanaryPhaseWaitingPromotion
		s.LastTransitionTime = *ago(3 * time.Hour)
	}), obs("rev2"))
	in.Results = gates(flaggerv1beta1.ConfirmPromotionHook, false)
	d := Decide(in)
	if d.Status.Phase != flaggerv1beta1.CanaryPhaseWaitingPromotion {
		t.Fatalf("phase = %s, want WaitingPromotion however long the gate stays closed", d.Status.Phase)
	}
	c := findCondition(d.Status.Conditions, flaggerv1beta1.PromotedType)
	if c == nil || !strings.Contains(c.Message, "waiting for 3h0m0s") || !strings.Contains(c.Message, "answered 403") {
		t.Errorf("condition = %+v, want how long and why", c)
	}

	w := input(canarySpec(withHook(flaggerv1beta1.ConfirmRolloutHook)), idle(flaggerv1beta1.CanaryPhaseWaiting), obs("rev2"))
	w.Status.WaitingSince = ago(90 * time.Minute)
	w.Results = gates(flaggerv1beta1.ConfirmRolloutHook, false)
	d = Decide(w)
	c = findCondition(d.Status.Conditions, flaggerv1beta1.PromotedType)
	if d.Status.Phase != flaggerv1beta1.CanaryPhaseWaiting || c == nil || !strings.Contains(c.Message, "waiting for 1h30m0s") {
		t.Errorf("phase %s, condition %+v", d.Status.Phase, c)
	}
}

func TestDecide_HeldAndDryRunChecksDoNotFailTheStep(t *testing.T) {
	held := input(canarySpec(), progressing(20, 1), obs("rev2"))
	held.Results = Results{Checks: []flaggerv1beta1.CanaryCheckResult{{Kind: flaggerv1beta1.CheckMetric, Name: "rps", NoData: true, Held: true}}}
	d := Decide(held)
	if r := routesOf(d.Actions); d.Status.CanaryWeight != 20 || d.Status.Iterations != 1 || d.Status.FailedChecks != 0 || r == nil || *r != (Routes{Primary: 80, Canary: 20}) {
		t.Errorf("a held step gave weight %d, iterations %d, failed %d, routes %+v; want it unchanged",
			d.Status.CanaryWeight, d.Status.Iterations, d.Status.FailedChecks, r)
	}
	if d.RequeueAfter != time.Minute {
		t.Errorf("a held step requeues after %s, want the interval", d.RequeueAfter)
	}

	dry := input(canarySpec(), progressing(20, 1), obs("rev2"))
	dry.Results = Results{Checks: []flaggerv1beta1.CanaryCheckResult{{Kind: flaggerv1beta1.CheckMetric, Name: "new-check", DryRun: true, Message: "50 is below the minimum 99"}}}
	d = Decide(dry)
	if d.Status.CanaryWeight != 40 || d.Status.FailedChecks != 0 {
		t.Errorf("a failing dry-run check gave weight %d, failed %d; want the step to advance", d.Status.CanaryWeight, d.Status.FailedChecks)
	}
	if n := len(d.Status.Analysis); n != 1 || d.Status.Analysis[0].Passed {
		t.Errorf("the dry-run failure is not recorded: %+v", d.Status.Analysis)
	}
}

func TestDecide_ClosedGatesSayHowToOpenThemAndHonourMuteAlert(t *testing.T) {
	spec := canarySpec(func(s *flaggerv1beta1.CanarySpec) {
		s.Analysis.Webhooks = []flaggerv1beta1.CanaryWebhook{{
			Name: "approve", Type: flaggerv1beta1.ConfirmPromotionHook, URL: "http://loadtester.test/gate/check", MuteAlert: true,
		}}
	})
	in := input(spec, progressing(40, 2), obs("rev2"))
	in.Name, in.Namespace = "podinfo", "test"
	in.Results = gates(flaggerv1beta1.ConfirmPromotionHook, false)
	d := Decide(in)
	if len(d.Events) != 1 || d.Events[0].Alert != nil {
		t.Fatalf("events = %+v, want one muted event", d.Events)
	}
	want := `open it with: curl -d '{"name": "podinfo", "namespace": "test"}' http://loadtester.test/gate/open`
	if !strings.Contains(d.Events[0].Message, want) {
		t.Errorf("event %q does not say %q", d.Events[0].Message, want)
	}

	in.Spec.Analysis.Webhooks[0].MuteAlert = false
	if d := Decide(in); len(d.Events) != 1 || d.Events[0].Alert == nil {
		t.Errorf("events = %+v, want one event that alerts", d.Events)
	}
}

func TestDecide_DeletingACanaryThatCannotBeOperatedReleasesIt(t *testing.T) {
	in := input(canarySpec(), idle(flaggerv1beta1.CanaryPhaseSucceeded), Observation{Deleting: true,
		Invalid: &problem.Problem{Reason: problem.TargetNotFound, Message: "Deployment podinfo not found"}})
	d := Decide(in)
	if !slices.Equal(kinds(d.Actions), []ActionKind{RemoveFinalizer}) || d.Status.Phase != flaggerv1beta1.CanaryPhaseTerminated {
		t.Errorf("actions %v, phase %s; want only RemoveFinalizer and Terminated", kinds(d.Actions), d.Status.Phase)
	}
	if len(d.Events) != 1 || !strings.Contains(d.Events[0].Message, "without restoring") {
		t.Errorf("events = %+v", d.Events)
	}
}

func TestDecide_AProblemOutsideTheClusterIsRetried(t *testing.T) {
	in := input(canarySpec(), idle(flaggerv1beta1.CanaryPhaseSucceeded), Observation{
		Invalid: &problem.Problem{Reason: problem.MetricUnavailable, Message: "metric error-rate: its provider does not answer", RetryAfter: 30 * time.Second}})
	if d := Decide(in); d.RequeueAfter != 30*time.Second {
		t.Errorf("RequeueAfter = %s, want 30s", d.RequeueAfter)
	}
}
