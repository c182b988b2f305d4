package controller

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/controller/statemachine"
)

// admission is the one place that decides which Canaries may start an
// analysis under -max-concurrent-canaries. The cache shows the phases
// persisted so far; a slot handed out by this process may not be visible
// there yet (its status write is on its way), so slots are also counted
// here, and handed out under one lock: two reconciles running at once
// never both take the last slot. Only the leader reconciles, so this
// process is the only one handing out slots.
type admission struct {
	mu sync.Mutex
	// held are the Canaries this process admitted or decided into a
	// running phase, until it decides them out of it.
	held map[types.NamespacedName]bool
}

// decided records the phase a reconcile decided for a Canary: a running
// phase holds a slot, any other gives it back.
func (a *admission) decided(key types.NamespacedName, phase flaggerv1beta1.CanaryPhase) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if statemachine.Running(phase) {
		if a.held == nil {
			a.held = map[types.NamespacedName]bool{}
		}
		a.held[key] = true
		return
	}
	delete(a.held, key)
}

// release gives back the slot of a Canary that is gone.
func (a *admission) release(key types.NamespacedName) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.held, key)
}

// admitted reports whether the Canary may start an analysis now, and
// reserves its slot when it may. With a cap of N, at most N Canaries
// analyse at once, and the ones waiting for a slot get them in the order
// they started waiting, so that a change shared by many workloads (a
// common ConfigMap) rolls out a few at a time.
func (r *CanaryReconciler) admitted(ctx context.Context, cd *flaggerv1beta1.Canary) (bool, string, error) {
	if r.MaxConcurrentCanaries <= 0 || statemachine.Running(cd.Status.Phase) {
		return true, "", nil
	}
	var list flaggerv1beta1.CanaryList
	if err := r.List(ctx, &list); err != nil {
		return false, "", fmt.Errorf("listing canaries for the concurrency cap: %w", err)
	}
	self := client.ObjectKeyFromObject(cd)
	a := &r.admission
	a.mu.Lock()
	defer a.mu.Unlock()
	busy := map[types.NamespacedName]bool{}
	for k := range a.held {
		if k != self {
			busy[k] = true
		}
	}
	var queue []flaggerv1beta1.Canary
	for _, c := range list.Items {
		key := client.ObjectKeyFromObject(&c)
		switch {
		case key == self:
		case statemachine.Running(c.Status.Phase):
			busy[key] = true
		case c.Status.Phase == flaggerv1beta1.CanaryPhaseWaiting && c.Status.WaitingSince != nil && !busy[key]:
			queue = append(queue, c)
		}
	}
	free := r.MaxConcurrentCanaries - len(busy)
	if free <= 0 {
		return false, fmt.Sprintf("%d of %d analyses are running (-max-concurrent-canaries)", len(busy), r.MaxConcurrentCanaries), nil
	}
	// Canaries that started waiting earlier go first; a Canary that is not
	// waiting yet queues behind all of them.
	ahead := 0
	for _, c := range queue {
		if cd.Status.WaitingSince == nil || waitedLonger(&c, cd) {
			ahead++
		}
	}
	if ahead >= free {
		return false, fmt.Sprintf("%d Canaries waited longer for the %d free analysis slots (-max-concurrent-canaries)", ahead, free), nil
	}
	if a.held == nil {
		a.held = map[types.NamespacedName]bool{}
	}
	a.held[self] = true
	return true, "", nil
}

// waitedLonger orders waiting Canaries: earlier waitingSince first, then by
// namespace and name.
func waitedLonger(a, b *flaggerv1beta1.Canary) bool {
	ta, tb := a.Status.WaitingSince, b.Status.WaitingSince
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}
