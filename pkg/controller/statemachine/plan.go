package statemachine

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// Due says which gates and checks the reconciler must run, and hand to
// Decide in Input.Results, before it decides. Gates and checks are I/O
// (webhook calls, metric queries), so the reconciler runs them; Plan and
// Decide share the predicates that say when they are due.
type Due struct {
	// ConfirmRollout asks the confirm-rollout gate before a new revision starts.
	ConfirmRollout bool
	// PreRollout runs the pre-rollout webhooks as the checks of the first step.
	PreRollout bool
	// Analysis runs the rollout webhooks and the metrics as the checks of a step.
	Analysis bool
	// Rollback asks the rollback webhooks whether to roll back.
	Rollback bool
	// ConfirmTrafficIncrease asks the gate before the canary weight grows.
	ConfirmTrafficIncrease bool
	// ConfirmPromotion asks the gate before promotion (or, for blue/green,
	// before all traffic switches to the canary).
	ConfirmPromotion bool
	// Claim is true when the checks of the step call webhooks: the
	// reconciler must persist Claim(in) before it runs them, so that a
	// webhook is called at most once per step.
	Claim bool
}

// Any reports whether anything is due.
func (d Due) Any() bool { return d != Due{} }

// Plan returns what the reconciler must run before calling Decide.
func Plan(in Input) Due {
	var due Due
	if in.Obs.Invalid != nil || in.Obs.Deleting {
		return due
	}
	p := planOf(in.Spec, in.Config)
	switch in.Status.Phase {
	case flaggerv1beta1.CanaryPhaseInitialized, flaggerv1beta1.CanaryPhaseSucceeded,
		flaggerv1beta1.CanaryPhaseFailed, flaggerv1beta1.CanaryPhaseWaiting:
		due.ConfirmRollout = newRevision(in) && in.Obs.Admitted && hasHooks(in.Spec, flaggerv1beta1.ConfirmRolloutHook)
	case flaggerv1beta1.CanaryPhaseProgressing, flaggerv1beta1.CanaryPhaseWaitingPromotion:
		if !stepDue(in, p) || in.Status.StepStartedAt != nil {
			// A step whose webhooks were started and whose outcome was never
			// written is not run again: Decide records it as interrupted.
			return due
		}
		due.Rollback = hasHooks(in.Spec, flaggerv1beta1.RollbackHook)
		if in.Status.Iterations == 0 {
			due.PreRollout = true
			due.Claim = hasHooks(in.Spec, flaggerv1beta1.PreRolloutHook)
		} else {
			due.Analysis = true
			due.Claim = hasHooks(in.Spec, flaggerv1beta1.RolloutHook)
		}
		due.ConfirmTrafficIncrease = trafficIncreasePoint(in, p) && hasHooks(in.Spec, flaggerv1beta1.ConfirmTrafficIncreaseHook)
		due.ConfirmPromotion = (promotionPoint(in, p) || promotionRequested(in.Status) || requestsPromotion(in)) &&
			hasHooks(in.Spec, flaggerv1beta1.ConfirmPromotionHook)
	}
	return due
}

// Claim returns the status to persist before the webhooks of a step are
// called (Due.Claim): the step is marked as started, so that a reconcile
// that finds the mark without the step's outcome knows the webhooks may
// have run and does not call them again.
func Claim(in Input) flaggerv1beta1.CanaryStatus {
	s := *in.Status.DeepCopy()
	now := metav1.NewTime(in.Now)
	s.StepStartedAt = &now
	return s
}

// requestsPromotion reports whether a promotion request is pending, not
// yet taken: the step it makes the last asks the confirm-promotion gate.
func requestsPromotion(in Input) bool {
	r := in.Request
	return r != nil && r.Kind == RequestPromote && (in.Status.LastRequest == nil || in.Status.LastRequest.ID != r.ID)
}

// newRevision reports whether the target holds a revision that has been
// neither analysed last nor promoted.
func newRevision(in Input) bool {
	r := in.Obs.Revision
	return r != "" && r != in.Status.LastAppliedSpec && r != in.Status.LastPromotedSpec
}

// stepDue reports whether an analysis step runs in this reconcile.
func stepDue(in Input, p plan) bool {
	if in.Spec.SkipAnalysis || in.Obs.Revision != in.Status.LastAppliedSpec || !in.Obs.Target.Ready || !in.Obs.Primary.Ready ||
		(p.baseline && !baselineOf(in).Ready) {
		return false
	}
	last := in.Status.LastAnalysisTime
	return last == nil || !in.Now.Before(last.Add(p.interval))
}

// trafficIncreasePoint reports whether a passing step raises the canary weight.
func trafficIncreasePoint(in Input, p plan) bool {
	if p.strategy != CanaryRelease || in.Status.CanaryWeight >= p.maxWeight {
		return false
	}
	// With mirroring, the first step only mirrors.
	return !p.mirror || in.Status.Iterations > 0
}

// promotionPoint reports whether a passing step leads to promotion (for
// blue/green: to the switch of all traffic to the canary).
func promotionPoint(in Input, p plan) bool {
	s := in.Status
	switch p.strategy {
	case CanaryRelease:
		return s.Iterations > 0 && s.CanaryWeight >= p.maxWeight
	case ABTesting:
		return s.Iterations >= p.iterations
	default:
		return s.CanaryWeight == 0 && s.Iterations >= p.iterations
	}
}

// switchedToCanary reports whether a blue/green analysis already sent all
// traffic to the canary and runs its last step there.
func switchedToCanary(in Input, p plan) bool {
	return p.strategy == BlueGreen && in.Status.CanaryWeight == 100
}
