package statemachine

import (
	"testing"
	"time"

	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// world is a tiny model of the cluster that applies the actions of each
// decision, so that whole lives of a Canary can be played through Plan and
// Decide without I/O.
type world struct {
	targetRev, primaryRev string
	targetReplicas        int32
	primaryExists         bool
	routes                Routes
	promotions            int
	// failMetricsFrom makes every analysis check fail from this step on.
	failMetricsFrom int32
	steps           []Routes
	// onDecision, when set, sees every decision.
	onDecision func(Decision)
}

func (w *world) observe() Observation {
	routes := w.routes
	return Observation{
		Revision: w.targetRev,
		Target:   Workload{Exists: true, Ready: true, Replicas: w.targetReplicas},
		Primary:  Workload{Exists: w.primaryExists, Ready: w.primaryExists, Replicas: 2, Revision: w.primaryRev},
		Admitted: true,
		Routes:   &routes,
	}
}

func (w *world) results(due Due, s flaggerv1beta1.CanaryStatus) Results {
	var r Results
	if due.PreRollout || due.Analysis {
		w.steps = append(w.steps, w.routes)
		ok := w.failMetricsFrom == 0 || s.Iterations < w.failMetricsFrom
		r.Checks = []flaggerv1beta1.CanaryCheckResult{{Kind: flaggerv1beta1.CheckMetric, Name: "request-success-rate", Passed: ok, Message: "scripted"}}
	}
	return r
}

// apply carries out actions and reports whether a workload changed, which
// in a cluster wakes the reconciler through its watches.
func (w *world) apply(actions []Action) bool {
	changed := false
	for _, a := range actions {
		switch a.Kind {
		case EnsurePrimary:
			if !w.primaryExists {
				w.primaryExists, w.primaryRev, changed = true, w.targetRev, true
			}
		case ScaleTargetUp:
			changed = changed || w.targetReplicas != 2
			w.targetReplicas = 2
		case ScaleTargetToZero:
			changed = changed || w.targetReplicas != 0
			w.targetReplicas = 0
		case Promote:
			if a.Revision != w.targetRev {
				continue // the workload refuses to copy a revision the target no longer holds
			}
			if w.primaryRev != w.targetRev {
				w.promotions++
				changed = true
			}
			w.primaryRev = w.targetRev
		case SetRoutes:
			changed = changed || w.routes != a.Routes
			w.routes = a.Routes
		}
	}
	return changed
}

// live runs reconciles until the Canary rests in phase stop (or 200 rounds),
// returning the final status and the simulated time spent.
func live(t *testing.T, spec flaggerv1beta1.CanarySpec, cfg Config, w *world, status flaggerv1beta1.CanaryStatus, stop func(flaggerv1beta1.CanaryStatus) bool) (flaggerv1beta1.CanaryStatus, time.Duration) {
	t.Helper()
	now := t0
	for round := 0; round < 200; round++ {
		in := Input{Spec: spec, Status: status, Obs: w.observe(), Config: cfg, Now: now, Generation: 1}
		due := Plan(in)
		in.Results = w.results(due, status)
		d := Decide(in)
		if w.onDecision != nil {
			w.onDecision(d)
		}
		changed := w.apply(d.Actions)
		status = d.Status
		if stop(status) {
			return status, now.Sub(t0)
		}
		if changed || d.RequeueAfter == 0 {
			now = now.Add(time.Second) // woken by a watch event
		} else {
			now = now.Add(d.RequeueAfter)
		}
	}
	t.Fatalf("the Canary did not come to rest: %+v", status)
	return status, 0
}

func rests(s flaggerv1beta1.CanaryStatus) bool {
	return s.LastAppliedSpec == "rev2" &&
		(s.Phase == flaggerv1beta1.CanaryPhaseSucceeded || s.Phase == flaggerv1beta1.CanaryPhaseFailed)
}

func TestLifecycle_StrategiesPromoteInTheTimeTheUserWrote(t *testing.T) {
	tests := []struct {
		name      string
		spec      flaggerv1beta1.CanarySpec
		splits    bool
		steps     []Routes
		wantTotal time.Duration
	}{
		{"canary 20% steps to 60%", canarySpec(func(s *flaggerv1beta1.CanarySpec) { s.Analysis.MaxWeight = ptr.To[int32](60) }), true,
			[]Routes{{Primary: 100}, {Primary: 80, Canary: 20}, {Primary: 60, Canary: 40}, {Primary: 40, Canary: 60}}, 3 * time.Minute},
		{"blue/green 3 iterations on a router that splits", canarySpec(blueGreen(3)), true,
			[]Routes{{Primary: 100}, {Primary: 100}, {Primary: 100}, {Primary: 100}, {Canary: 100}}, 4 * time.Minute},
		// Plain Services never send the apex's traffic to the canary: the
		// primary's rolling update is the switch, as in Flagger.
		{"blue/green on plain Kubernetes", canarySpec(blueGreen(2)), false,
			[]Routes{{Primary: 100}, {Primary: 100}, {Primary: 100}}, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &world{targetRev: "rev1", targetReplicas: 2}
			cfg := Config{MinInterval: 10 * time.Second, SplitsTraffic: tt.splits}
			status, _ := live(t, tt.spec, cfg, w, flaggerv1beta1.CanaryStatus{}, func(s flaggerv1beta1.CanaryStatus) bool {
				return s.Phase == flaggerv1beta1.CanaryPhaseInitialized
			})
			if w.targetReplicas != 0 || w.routes != (Routes{Primary: 100}) {
				t.Fatalf("after initialization: target replicas %d, routes %+v", w.targetReplicas, w.routes)
			}
			w.targetRev = "rev2"
			w.steps = nil
			status, took := live(t, tt.spec, cfg, w, status, rests)
			if status.Phase != flaggerv1beta1.CanaryPhaseSucceeded || w.primaryRev != "rev2" || w.promotions != 1 {
				t.Fatalf("phase %s, primary %s, promotions %d: want Succeeded, rev2, 1", status.Phase, w.primaryRev, w.promotions)
			}
			if w.targetReplicas != 0 || w.routes != (Routes{Primary: 100}) {
				t.Errorf("after promotion: target replicas %d, routes %+v", w.targetReplicas, w.routes)
			}
			if len(w.steps) != len(tt.steps) {
				t.Fatalf("steps ran with routes %+v, want %+v", w.steps, tt.steps)
			}
			for i := range tt.steps {
				if w.steps[i] != tt.steps[i] {
					t.Errorf("step %d ran with routes %+v, want %+v", i, w.steps[i], tt.steps[i])
				}
			}
			// Every step after the first waits one interval; besides, only the
			// drain before the canary is scaled down waits.
			if took < tt.wantTotal || took > tt.wantTotal+maxDrain+5*time.Second {
				t.Errorf("the analysis took %s of simulated time, want about %s", took, tt.wantTotal)
			}
		})
	}
}

func TestLifecycle_FailingMetricsRollBackAfterThreshold(t *testing.T) {
	w := &world{targetRev: "rev2", primaryRev: "rev1", primaryExists: true, failMetricsFrom: 1}
	spec := canarySpec() // threshold 2
	cfg := Config{MinInterval: 10 * time.Second, SplitsTraffic: true}
	status, _ := live(t, spec, cfg, w, idle(flaggerv1beta1.CanaryPhaseSucceeded), rests)
	if status.Phase != flaggerv1beta1.CanaryPhaseFailed || w.promotions != 0 {
		t.Fatalf("phase %s after %d promotions, want Failed and none", status.Phase, w.promotions)
	}
	if w.routes != (Routes{Primary: 100}) || w.targetReplicas != 0 {
		t.Errorf("after rollback: routes %+v, target replicas %d", w.routes, w.targetReplicas)
	}
	if n := len(status.Analysis); n != 3 {
		t.Errorf("analysis history holds %d checks, want 3 (pre-rollout step and two failures)", n)
	}
	// A new revision after the failure starts again.
	w.targetRev, w.failMetricsFrom = "rev3", 0
	in := Input{Spec: spec, Status: status, Obs: w.observe(), Config: cfg, Now: t0, Generation: 1}
	if d := Decide(in); d.Status.Phase != flaggerv1beta1.CanaryPhaseProgressing {
		t.Errorf("a new revision after Failed gives phase %s, want Progressing", d.Status.Phase)
	}
}
