package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/controller/statemachine"
)

// defaultCheckConcurrency bounds the gates and checks running at once when
// CanaryReconciler.CheckConcurrency is not set.
const defaultCheckConcurrency = 64

// checkDeadline bounds one run of a step's gates and checks, whatever the
// webhooks' timeouts and retries add up to.
const checkDeadline = 10 * time.Minute

// checkRunner runs the gates and checks of analysis steps away from the
// reconcile workers, so that a slow webhook or metrics server holds back
// only its own Canary. A run is keyed by the Canary and by the step it
// belongs to (stepKey); when it ends, its results wait for the next
// reconcile of that Canary, which the runner triggers. Results of a step
// the Canary has left are dropped.
type checkRunner struct {
	mu      sync.Mutex
	running map[types.NamespacedName]string
	done    map[types.NamespacedName]finishedRun
	sem     chan struct{}
	// events wakes the Canary whose checks finished.
	events chan event.GenericEvent
}

type finishedRun struct {
	step    string
	results statemachine.Results
}

func newCheckRunner(concurrency int) *checkRunner {
	if concurrency <= 0 {
		concurrency = defaultCheckConcurrency
	}
	return &checkRunner{
		running: map[types.NamespacedName]string{},
		done:    map[types.NamespacedName]finishedRun{},
		sem:     make(chan struct{}, concurrency),
		events:  make(chan event.GenericEvent, 1024),
	}
}

// take returns the results of a finished run of step, once.
func (c *checkRunner) take(key types.NamespacedName, step string) (statemachine.Results, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.done[key]
	if !ok || f.step != step {
		return statemachine.Results{}, false
	}
	delete(c.done, key)
	return f.results, true
}

// busy reports whether a run of step is under way.
func (c *checkRunner) busy(key types.NamespacedName, step string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running[key] == step
}

// start runs fn for step in the background, unless a run of step is under
// way already, and wakes the Canary when it ends.
func (c *checkRunner) start(ctx context.Context, key types.NamespacedName, step string, wake *flaggerv1beta1.Canary, fn func(context.Context) statemachine.Results) {
	c.mu.Lock()
	if c.running[key] == step {
		c.mu.Unlock()
		return
	}
	c.running[key] = step
	delete(c.done, key)
	c.mu.Unlock()
	go func() {
		c.sem <- struct{}{}
		defer func() { <-c.sem }()
		runCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), checkDeadline)
		results := fn(runCtx)
		cancel()
		c.mu.Lock()
		if c.running[key] == step {
			delete(c.running, key)
			c.done[key] = finishedRun{step: step, results: results}
		}
		c.mu.Unlock()
		c.events <- event.GenericEvent{Object: wake}
	}()
}

// forget drops what is known of a Canary that is gone.
func (c *checkRunner) forget(key types.NamespacedName) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.running, key)
	delete(c.done, key)
}

// stepKey identifies the step a run of gates and checks belongs to: the
// revision, the phase and the counters, and the claim of a step that calls
// webhooks. Results are used only while the Canary is still at that step.
func stepKey(in statemachine.Input) string {
	s := in.Status
	last, claim := "-", "-"
	if s.LastAnalysisTime != nil {
		last = fmt.Sprint(s.LastAnalysisTime.UnixNano())
	}
	if s.StepStartedAt != nil {
		claim = fmt.Sprint(s.StepStartedAt.UnixNano())
	}
	return fmt.Sprintf("%s|%s|%s|%d|%d|%s|%s", s.Phase, in.Obs.Revision, s.LastAppliedSpec, s.Iterations, s.CanaryWeight, last, claim)
}

// results returns the results of the gates and checks the state machine
// needs now. They run in the background: the first reconcile of a step
// starts them and reports wait; the reconcile their end triggers takes
// them. A step whose webhooks are called is claimed (status.stepStartedAt)
// before they start. A claim that no run in this process holds was
// interrupted (a restart): no results, and Decide records it.
func (r *CanaryReconciler) results(ctx context.Context, sc *scope, cd *flaggerv1beta1.Canary) (res statemachine.Results, wait bool, err error) {
	key := sc.key()
	if r.checks == nil {
		// Without SetupWithManager nothing would wake the Canary: run the
		// checks in line.
		if sc.in.Status.StepStartedAt != nil {
			return statemachine.Results{}, false, nil
		}
		due := statemachine.Plan(sc.in)
		if due.Claim {
			if err := r.persist(ctx, cd, statemachine.Claim(sc.in)); err != nil {
				return statemachine.Results{}, false, err
			}
			sc.in.Status = *cd.Status.DeepCopy()
		}
		return r.runDue(ctx, sc, due), false, nil
	}
	if sc.in.Status.StepStartedAt != nil {
		step := stepKey(sc.in)
		if res, ok := r.checks.take(key, step); ok {
			return res, false, nil
		}
		return statemachine.Results{}, r.checks.busy(key, step), nil
	}
	due := statemachine.Plan(sc.in)
	if !due.Any() {
		return statemachine.Results{}, false, nil
	}
	if step := stepKey(sc.in); !due.Claim {
		if res, ok := r.checks.take(key, step); ok {
			return res, false, nil
		}
		if r.checks.busy(key, step) {
			return statemachine.Results{}, true, nil
		}
	}
	if due.Claim {
		// The step's webhooks are called at most once: the step is marked
		// as started before they are.
		if err := r.persist(ctx, cd, statemachine.Claim(sc.in)); err != nil {
			return statemachine.Results{}, false, err
		}
		sc.in.Status = *cd.Status.DeepCopy()
	}
	frozen := *sc
	frozen.cd = cd.DeepCopy()
	r.checks.start(ctx, key, stepKey(sc.in), frozen.cd, func(ctx context.Context) statemachine.Results {
		return r.runDue(ctx, &frozen, due)
	})
	return statemachine.Results{}, true, nil
}
