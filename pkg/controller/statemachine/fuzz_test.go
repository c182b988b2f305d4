package statemachine

import (
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
)

// fuzzBytes reads the fuzzer's input as a stream of small choices; past
// its end every choice is zero.
type fuzzBytes struct{ b []byte }

func (f *fuzzBytes) byte() byte {
	if len(f.b) == 0 {
		return 0
	}
	v := f.b[0]
	f.b = f.b[1:]
	return v
}

func (f *fuzzBytes) bool() bool { return f.byte()&1 == 1 }

// intn returns a value in [0, n).
func (f *fuzzBytes) intn(n int) int { return int(f.byte()) % n }

// weight returns a weight within the bounds Sluice's CRD enforces (0 to
// 100). Flagger's CRD, which Sluice can run with, has no bounds; weights
// outside them are reported, not fuzzed here.
func (f *fuzzBytes) weight() int32 { return int32(f.byte()) % 101 }

func (f *fuzzBytes) duration() time.Duration {
	return time.Duration(int(f.byte())%130-10) * time.Second
}

func (f *fuzzBytes) time(now time.Time) *metav1.Time {
	if f.bool() {
		return nil
	}
	t := metav1.NewTime(now.Add(-f.duration() * 5))
	return &t
}

// The phases a status may hold.
var fuzzPhases = []flaggerv1beta1.CanaryPhase{"",
	flaggerv1beta1.CanaryPhaseInitializing, flaggerv1beta1.CanaryPhaseInitialized, flaggerv1beta1.CanaryPhaseWaiting,
	flaggerv1beta1.CanaryPhaseProgressing, flaggerv1beta1.CanaryPhaseWaitingPromotion, flaggerv1beta1.CanaryPhasePromoting,
	flaggerv1beta1.CanaryPhaseFinalising, flaggerv1beta1.CanaryPhaseSucceeded, flaggerv1beta1.CanaryPhaseFailed,
	flaggerv1beta1.CanaryPhaseTerminating, flaggerv1beta1.CanaryPhaseTerminated,
}

// fuzzInput builds a Decide input from the fuzzer's bytes: a spec with
// any analysis numbers, a status in any phase with any counters, and any
// observations and check results.
func fuzzInput(data []byte) Input {
	f := &fuzzBytes{b: data}
	now := t0
	a := &flaggerv1beta1.CanaryAnalysis{Threshold: int32(f.intn(8)) - 1}
	a.Interval = []string{"", "1s", "10s", "1m", "90s", "bogus", "0s", "-5s"}[f.intn(8)]
	switch f.intn(5) {
	case 0:
		a.StepWeight = ptr.To(f.weight())
	case 1:
		for n := f.intn(6); n > 0; n-- {
			a.StepWeights = append(a.StepWeights, f.weight())
		}
		if f.bool() {
			slices.Sort(a.StepWeights)
		}
	case 2:
		a.Iterations = ptr.To(int32(f.intn(8)) - 1)
	case 3: // none of them: Flagger's CRD allows it
	default:
		a.StepWeight, a.Iterations = ptr.To(f.weight()), ptr.To(int32(f.intn(5)))
	}
	if f.bool() {
		a.MaxWeight = ptr.To(f.weight())
	}
	if f.bool() {
		a.StepWeightPromotion = f.weight()
	}
	a.Mirror = f.bool()
	if f.bool() {
		a.Match = []flaggerv1beta1.HTTPMatchConditions{{Headers: map[string]flaggerv1beta1.HeaderMatch{"x-canary": {Exact: ptr.To("1")}}}}
	}
	hooks := []flaggerv1beta1.HookType{flaggerv1beta1.PreRolloutHook, flaggerv1beta1.RolloutHook, flaggerv1beta1.ConfirmRolloutHook,
		flaggerv1beta1.ConfirmTrafficIncreaseHook, flaggerv1beta1.ConfirmPromotionHook, flaggerv1beta1.RollbackHook}
	for i, h := range hooks {
		if f.byte()&(1<<(i%8)) != 0 {
			a.Webhooks = append(a.Webhooks, flaggerv1beta1.CanaryWebhook{Name: string(h), Type: h, URL: "http://hook/"})
		}
	}
	spec := flaggerv1beta1.CanarySpec{
		TargetRef:    flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
		Service:      flaggerv1beta1.CanaryService{Port: 9898},
		Analysis:     a,
		SkipAnalysis: f.intn(6) == 0,
	}
	if f.bool() {
		spec.ProgressDeadlineSeconds = ptr.To(int32(f.intn(200)) - 10)
	}
	// spec.analysis is required by Sluice's and Flagger's CRDs, so never nil.

	revs := []string{"", "rev1", "rev2", "rev3"}
	status := flaggerv1beta1.CanaryStatus{
		Phase:              fuzzPhases[f.intn(len(fuzzPhases))],
		CanaryWeight:       int32(f.intn(101)),
		Iterations:         int32(f.intn(10)) - 1,
		FailedChecks:       int32(f.intn(10)) - 1,
		LastAppliedSpec:    revs[f.intn(4)],
		LastPromotedSpec:   revs[f.intn(4)],
		LastAnalysisTime:   f.time(now),
		WaitingSince:       f.time(now),
		LastTransitionTime: metav1.NewTime(now.Add(-f.duration())),
	}
	if f.intn(4) == 0 {
		status.StepStartedAt = f.time(now)
	}
	if status.Phase == flaggerv1beta1.CanaryPhaseWaiting && status.WaitingSince == nil {
		// Decide panics on Waiting without waitingSince (reported; a status
		// taken over from Flagger, whose CRD has no waitingSince, can be
		// such). Remove this line once it is fixed.
		status.WaitingSince = ptr.To(metav1.NewTime(now))
	}
	workload := func() Workload {
		b := f.byte()
		return Workload{Exists: b&1 == 0, Ready: b&2 != 0, Stalled: b&4 != 0 && b&8 != 0, Replicas: int32(b>>4) % 4, Revision: revs[f.intn(4)], Message: "m"}
	}
	obs := Observation{
		Revision: revs[f.intn(4)], Target: workload(), Primary: workload(),
		Admitted: f.intn(4) != 0, Routable: f.bool(), Deleting: f.intn(8) == 0,
		AutoscalerDesired: int32(f.intn(4)),
	}
	if f.intn(6) == 0 {
		obs.Invalid = &problem.Problem{Reason: "Fuzzed", Message: "fuzzed problem"}
	}
	if f.bool() {
		c := int(f.weight())
		obs.Routes = &Routes{Primary: 100 - c, Canary: c, Mirrored: f.bool()}
	}
	var results Results
	switch f.intn(4) {
	case 0: // no checks ran
	case 1:
		results.Checks = []flaggerv1beta1.CanaryCheckResult{}
	default:
		for n := 1 + f.intn(3); n > 0; n-- {
			b := f.byte()
			results.Checks = append(results.Checks, flaggerv1beta1.CanaryCheckResult{
				Time: metav1.NewTime(now), Kind: flaggerv1beta1.CheckMetric, Name: fmt.Sprint("m", n),
				Passed: b&1 == 0, NoData: b&2 != 0, Held: b&4 != 0 && b&2 != 0, DryRun: b&8 != 0, Critical: b&16 != 0,
			})
		}
	}
	results.Gates = map[flaggerv1beta1.HookType]Gate{}
	for i, h := range hooks {
		if b := f.byte(); b&1 == 1 {
			results.Gates[h] = Gate{Open: b&2 != 0, Message: fmt.Sprint("gate ", i)}
		}
	}
	var req *Request
	if f.intn(6) == 0 {
		kinds := []string{RequestPromote, RequestPromoteFull, RequestAbort, RequestRetry, "bogus"}
		req = &Request{Kind: kinds[f.intn(len(kinds))], ID: fmt.Sprint("id", f.intn(3))}
	}
	return Input{
		Spec: spec, Status: status, Name: "podinfo", Namespace: "test", Generation: 1, Obs: obs,
		Results: results, Request: req, Now: now,
		Config: Config{MinInterval: time.Duration(f.intn(3)) * 5 * time.Second, SplitsTraffic: f.intn(4) != 0},
	}
}

// diagram is the phase diagram of the README ("How a canary moves"): the
// phases each phase may move to. One decision may take several of these
// edges (a request to abort then a new revision waiting, a promote-full
// request that promotes and finalises at once), so a decision is legal when
// its phase is reachable in at most maxEdges edges. Deletion moves any
// phase to Terminating or Terminated.
var diagram = map[flaggerv1beta1.CanaryPhase][]flaggerv1beta1.CanaryPhase{
	"":                                         {flaggerv1beta1.CanaryPhaseInitializing},
	flaggerv1beta1.CanaryPhaseInitializing:     {flaggerv1beta1.CanaryPhaseInitialized},
	flaggerv1beta1.CanaryPhaseInitialized:      {flaggerv1beta1.CanaryPhaseProgressing, flaggerv1beta1.CanaryPhaseWaiting},
	flaggerv1beta1.CanaryPhaseSucceeded:        {flaggerv1beta1.CanaryPhaseProgressing, flaggerv1beta1.CanaryPhaseWaiting, flaggerv1beta1.CanaryPhaseTerminating},
	flaggerv1beta1.CanaryPhaseFailed:           {flaggerv1beta1.CanaryPhaseProgressing, flaggerv1beta1.CanaryPhaseWaiting, flaggerv1beta1.CanaryPhaseSucceeded},
	flaggerv1beta1.CanaryPhaseWaiting:          {flaggerv1beta1.CanaryPhaseProgressing, flaggerv1beta1.CanaryPhaseSucceeded},
	flaggerv1beta1.CanaryPhaseProgressing:      {flaggerv1beta1.CanaryPhaseWaitingPromotion, flaggerv1beta1.CanaryPhasePromoting, flaggerv1beta1.CanaryPhaseFailed},
	flaggerv1beta1.CanaryPhaseWaitingPromotion: {flaggerv1beta1.CanaryPhasePromoting, flaggerv1beta1.CanaryPhaseProgressing, flaggerv1beta1.CanaryPhaseFailed},
	flaggerv1beta1.CanaryPhasePromoting:        {flaggerv1beta1.CanaryPhaseFinalising, flaggerv1beta1.CanaryPhaseProgressing, flaggerv1beta1.CanaryPhaseFailed},
	flaggerv1beta1.CanaryPhaseFinalising:       {flaggerv1beta1.CanaryPhaseSucceeded, flaggerv1beta1.CanaryPhaseFailed},
	flaggerv1beta1.CanaryPhaseTerminating:      {flaggerv1beta1.CanaryPhaseTerminated},
}

// maxEdges is the most diagram edges one decision takes.
const maxEdges = 3

// reachable reports whether to is at most n edges of the diagram away
// from from.
func reachable(from, to flaggerv1beta1.CanaryPhase, n int) bool {
	if from == to {
		return true
	}
	if n == 0 {
		return false
	}
	for _, next := range diagram[from] {
		if reachable(next, to, n-1) {
			return true
		}
	}
	return false
}

// FuzzDecide feeds Decide any spec, status, observations and check
// results, and checks that it does not panic and that what it decides is
// legal: traffic splits within 0..100 that add up to 100, the canary's
// share never above maxWeight in a weighted release (except the whole of
// it when a failed promotion leaves the traffic on the canary), only the
// phase transitions of the documented diagram, a failed-checks count that
// never passes the threshold without a rollback, and a promotion only of
// the analysed revision, while Promoting.
func FuzzDecide(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 2, 0, 20, 1, 40, 0, 0, 0, 0, 0, 0, 4, 20, 1, 0, 2, 1, 2, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzInput(data)
		d := Decide(in)
		if msg := illegal(in, d); msg != "" {
			t.Fatalf("%s\ninput: spec.analysis %+v skip=%v\nstatus %+v\nobs %+v\nresults %+v request %+v\ndecision: status %+v\nactions %+v",
				msg, deref(in.Spec.Analysis), in.Spec.SkipAnalysis, in.Status, in.Obs, in.Results, in.Request, d.Status, d.Actions)
		}
	})
}

func deref(a *flaggerv1beta1.CanaryAnalysis) flaggerv1beta1.CanaryAnalysis {
	if a == nil {
		return flaggerv1beta1.CanaryAnalysis{}
	}
	return *a
}

// illegal says what is wrong with decision d for input in, or "".
func illegal(in Input, d Decision) string {
	from, to := in.Status.Phase, d.Status.Phase
	deleted := in.Obs.Deleting && (to == flaggerv1beta1.CanaryPhaseTerminating || to == flaggerv1beta1.CanaryPhaseTerminated)
	if !deleted && !reachable(from, to, maxEdges) {
		return fmt.Sprintf("phase %q moved to %q, which the phase diagram does not allow", from, to)
	}
	if d.RequeueAfter < 0 {
		return fmt.Sprintf("negative requeue %s", d.RequeueAfter)
	}
	p := planOf(in.Spec, in.Config)
	for _, a := range d.Actions {
		switch a.Kind {
		case SetRoutes:
			r := a.Routes
			if r.Primary < 0 || r.Canary < 0 || r.Primary > 100 || r.Canary > 100 || r.Primary+r.Canary != 100 {
				return fmt.Sprintf("routes %+v are not a split of 100%%", r)
			}
			failedPromotion := to == flaggerv1beta1.CanaryPhaseFailed && d.Status.CanaryWeight == 100 && r.Canary == 100
			if p.strategy == CanaryRelease && !failedPromotion && r.Canary > int(min(100, max(p.maxWeight, 0))) {
				return fmt.Sprintf("routes %+v give the canary more than maxWeight %d", r, p.maxWeight)
			}
		case Promote:
			if to != flaggerv1beta1.CanaryPhasePromoting || a.Revision != d.Status.LastAppliedSpec {
				return fmt.Sprintf("promotes revision %q in phase %s with lastAppliedSpec %q", a.Revision, to, d.Status.LastAppliedSpec)
			}
		}
	}
	threshold := p.threshold
	if to != flaggerv1beta1.CanaryPhaseFailed && d.Status.FailedChecks > in.Status.FailedChecks && d.Status.FailedChecks >= threshold {
		return fmt.Sprintf("failedChecks reached %d (threshold %d) without a rollback", d.Status.FailedChecks, threshold)
	}
	if in.Status.FailedChecks <= threshold && d.Status.FailedChecks > threshold {
		return fmt.Sprintf("failedChecks %d above the threshold %d", d.Status.FailedChecks, threshold)
	}
	return ""
}
