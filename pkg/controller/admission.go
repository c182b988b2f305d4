package controller

import (
	"context"
	"fmt"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// running reports whether a phase holds one of the analysis slots that
// -max-concurrent-canaries caps.
func running(phase flaggerv1beta1.CanaryPhase) bool {
	switch phase {
	case flaggerv1beta1.CanaryPhaseProgressing, flaggerv1beta1.CanaryPhaseWaitingPromotion,
		flaggerv1beta1.CanaryPhasePromoting, flaggerv1beta1.CanaryPhaseFinalising:
		return true
	}
	return false
}

// admitted reports whether the Canary may start an analysis now. With a cap
// of N, at most N Canaries analyse at once, and the ones waiting for a slot
// get them in the order they started waiting, so that a change shared by
// many workloads (a common ConfigMap) rolls out a few at a time.
func (r *CanaryReconciler) admitted(ctx context.Context, cd *flaggerv1beta1.Canary) (bool, string, error) {
	if r.MaxConcurrentCanaries <= 0 || running(cd.Status.Phase) {
		return true, "", nil
	}
	var list flaggerv1beta1.CanaryList
	if err := r.List(ctx, &list); err != nil {
		return false, "", fmt.Errorf("listing canaries for the concurrency cap: %w", err)
	}
	busy := 0
	var queue []flaggerv1beta1.Canary
	for _, c := range list.Items {
		switch {
		case c.UID == cd.UID:
		case running(c.Status.Phase):
			busy++
		case c.Status.Phase == flaggerv1beta1.CanaryPhaseWaiting && c.Status.WaitingSince != nil:
			queue = append(queue, c)
		}
	}
	free := r.MaxConcurrentCanaries - busy
	if free <= 0 {
		return false, fmt.Sprintf("%d of %d analyses are running (-max-concurrent-canaries)", busy, r.MaxConcurrentCanaries), nil
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
