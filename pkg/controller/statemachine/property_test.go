package statemachine

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// fuzzWorld is a model cluster driven the way the reconciler drives the
// real one (claim, checks, decide, persist, act), with faults injected at
// random: conflicting writes, crashes between the write and the actions,
// restarts, new revisions and spec edits. It keeps the record the
// invariants are checked against.
type fuzzWorld struct {
	rng *rand.Rand
	// bad holds the revisions whose metrics always fail.
	bad map[string]bool

	targetRev  string
	primaryRev string
	target     int32
	routes     Routes
	// baseline is the revision the baseline was started for, or "" when
	// there is none.
	baseline string

	// promotedTo counts how often the primary received each revision.
	promotedTo map[string]int
	// hookCalls counts the webhook calls of each claimed step.
	hookCalls map[time.Time]int
	log       []string
}

func (w *fuzzWorld) observe() Observation {
	routes := w.routes
	o := Observation{
		Revision: w.targetRev,
		Target:   Workload{Exists: true, Ready: w.target > 0, Replicas: w.target, Message: "scaled to zero"},
		Primary:  Workload{Exists: true, Ready: true, Replicas: 2, Revision: w.primaryRev},
		Admitted: true, Routes: &routes, Routable: true,
	}
	if w.baseline != "" {
		o.Baseline = Workload{Exists: true, Ready: true, Replicas: 2, Revision: w.baseline}
	}
	return o
}

// apply carries out a prefix of the actions: all of them, unless the
// controller crashes in the middle.
func (w *fuzzWorld) apply(actions []Action, crashAt int) {
	for i, a := range actions {
		if i == crashAt {
			w.log = append(w.log, "crash")
			return
		}
		switch a.Kind {
		case ScaleTargetUp:
			if w.target == 0 {
				w.target = 2
			}
		case ScaleTargetToZero:
			w.target = 0
		case Promote:
			if a.Revision != w.targetRev {
				continue // the workload refuses: the target changed
			}
			if w.primaryRev != a.Revision {
				w.promotedTo[a.Revision]++
				w.primaryRev = a.Revision
				w.log = append(w.log, "promoted "+a.Revision)
			}
		case SetRoutes:
			w.routes = a.Routes
		case EnsureBaseline:
			w.baseline = a.Revision
		case RemoveBaseline:
			w.baseline = ""
		}
		if w.routes.Baseline > 0 && w.baseline == "" {
			w.log = append(w.log, "traffic to a baseline that does not exist")
		}
	}
}

func (w *fuzzWorld) results(due Due, claim time.Time) Results {
	var r Results
	if due.PreRollout || due.Analysis {
		if due.Claim {
			w.hookCalls[claim]++
		}
		r.Checks = []flaggerv1beta1.CanaryCheckResult{{Kind: flaggerv1beta1.CheckMetric, Name: "m", Passed: !w.bad[w.targetRev]}}
	}
	return r
}

// checkRoutes asserts that every split a decision sets is legal: all the
// traffic, and never more on the canary than the spec's maxWeight of the
// moment; a baseline gets traffic only in an analysis, as much as the
// canary. (A spec edit that lowers maxWeight reaches the routes with the
// next decision that is carried out.)
func checkRoutes(t *testing.T, w *fuzzWorld, spec flaggerv1beta1.CanarySpec, d Decision) {
	t.Helper()
	maxWeight := int(ptr.Deref(spec.Analysis.MaxWeight, 100))
	for _, a := range d.Actions {
		if a.Kind != SetRoutes {
			continue
		}
		r := a.Routes
		analysing := d.Status.Phase == flaggerv1beta1.CanaryPhaseProgressing || d.Status.Phase == flaggerv1beta1.CanaryPhaseWaitingPromotion
		if r.Primary+r.Canary+r.Baseline != 100 || r.Canary > maxWeight || r.Primary < 0 ||
			(r.Baseline != 0 && (!spec.Analysis.Baseline || !analysing || r.Baseline != r.Canary)) ||
			(spec.Analysis.Baseline && analysing && r.Baseline != r.Canary) {
			t.Fatalf("routes %+v with maxWeight %d in phase %s\n%s", r, maxWeight, d.Status.Phase, strings.Join(w.log, "\n"))
		}
	}
}

func TestProperty_RandomFaultsNeverPromoteUnanalysedAndEveryReleaseEnds(t *testing.T) {
	fuzzReleases(t, false)
}

// fuzzReleases plays 300 random histories of releases with faults, with
// or without a baseline, and checks the invariants of each.
func fuzzReleases(t *testing.T, baseline bool) {
	for seed := uint64(1); seed <= 300; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed*7919))
			w := &fuzzWorld{rng: rng, bad: map[string]bool{}, targetRev: "r0", primaryRev: "r0", target: 0,
				routes: Routes{Primary: 100}, promotedTo: map[string]int{}, hookCalls: map[time.Time]int{}}
			spec := canarySpec(withHook(flaggerv1beta1.RolloutHook)) // 20% steps, maxWeight 40, threshold 2
			spec.Analysis.Baseline = baseline
			maxWeights := 10 // 10% to 100%; with a baseline the canary can have 50% at most
			if baseline {
				maxWeights = 5
			}
			cfg := Config{MinInterval: 10 * time.Second, SplitsTraffic: true}
			status := flaggerv1beta1.CanaryStatus{Phase: flaggerv1beta1.CanaryPhaseSucceeded, LastAppliedSpec: "r0", LastPromotedSpec: "r0"}
			now := t0
			revs := 0
			// Phase 1: faults and changes at random. Phase 2: none, until
			// the release in flight ends.
			for round := 0; round < 400; round++ {
				faults := round < 250
				if faults {
					switch rng.IntN(12) {
					case 0: // a new revision, healthy or not
						revs++
						w.targetRev = fmt.Sprintf("r%d", revs)
						w.bad[w.targetRev] = rng.IntN(3) == 0
						w.log = append(w.log, fmt.Sprintf("new revision %s bad=%v", w.targetRev, w.bad[w.targetRev]))
					case 1: // a spec edit: another step and maximum weight
						spec.Analysis.StepWeight = ptr.To(int32(10 * (1 + rng.IntN(5))))
						spec.Analysis.MaxWeight = ptr.To(int32(10 * (1 + rng.IntN(maxWeights))))
						w.log = append(w.log, fmt.Sprintf("spec step %d max %d", *spec.Analysis.StepWeight, *spec.Analysis.MaxWeight))
					}
				}
				in := Input{Spec: spec, Status: status, Obs: w.observe(), Config: cfg, Now: now, Generation: 1}
				due := Plan(in)
				conflict := func() bool { return faults && rng.IntN(10) == 0 }
				if due.Claim {
					if conflict() {
						w.log = append(w.log, "claim conflicted")
						now = now.Add(time.Second)
						continue
					}
					status = Claim(in)
					in.Status = status
				}
				in.Results = w.results(due, now)
				d := Decide(in)
				if conflict() {
					w.log = append(w.log, "outcome conflicted")
					now = now.Add(time.Second)
					continue
				}
				status = d.Status // persisted before any action (write-ahead)
				checkRoutes(t, w, spec, d)
				crashAt := -1
				if faults && rng.IntN(8) == 0 {
					crashAt = rng.IntN(len(d.Actions) + 1)
				}
				w.apply(d.Actions, crashAt)
				w.log = append(w.log, fmt.Sprintf("%s w=%d it=%d f=%d routes=%+v", status.Phase, status.CanaryWeight, status.Iterations, status.FailedChecks, w.routes))
				if !faults && !running(status.Phase) && status.Phase != flaggerv1beta1.CanaryPhaseWaiting &&
					(status.LastAppliedSpec == w.targetRev || status.LastPromotedSpec == w.targetRev) {
					break
				}
				wait := d.RequeueAfter
				if wait == 0 || wait > time.Minute || rng.IntN(4) == 0 {
					wait = time.Second // woken early by a watch event
				}
				now = now.Add(wait)
			}
			history := strings.Join(w.log, "\n")
			if strings.Contains(history, "traffic to a baseline that does not exist") {
				t.Fatalf("traffic went to a baseline that did not exist\n%s", history)
			}
			if w.baseline != "" {
				t.Fatalf("the baseline for %s outlived the release: %+v\n%s", w.baseline, status, history)
			}
			if running(status.Phase) || status.Phase == flaggerv1beta1.CanaryPhaseWaiting {
				t.Fatalf("the release did not end: %+v\n%s", status, history)
			}
			for rev, n := range w.promotedTo {
				if w.bad[rev] {
					t.Fatalf("revision %s, whose checks always fail, was promoted\n%s", rev, history)
				}
				if n > 1 {
					t.Fatalf("revision %s was promoted %d times\n%s", rev, n, history)
				}
			}
			for at, n := range w.hookCalls {
				if n > 1 {
					t.Fatalf("the step claimed at %s called its webhooks %d times\n%s", at, n, history)
				}
			}
			if w.targetRev == status.LastPromotedSpec && !w.bad[w.targetRev] && w.primaryRev != w.targetRev {
				t.Fatalf("status says %s is promoted but the primary runs %s\n%s", w.targetRev, w.primaryRev, history)
			}
		})
	}
}
