package statemachine

import (
	"fmt"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// maxDrain is the longest the canary keeps running after all traffic went
// back to the primary, so that requests already on their way to it finish
// and the data plane has applied the switch. It is shortened to the
// analysis interval when that is shorter.
const maxDrain = 5 * time.Second

// promote starts copying the analysed revision into the primary, after
// making sure the primary can carry the canary's load.
func (d *decider) promote() {
	d.next.WaitingSince = d.now()
	d.setPhase(flaggerv1beta1.CanaryPhasePromoting, "Copying the canary into the primary.")
	d.event(Normal, "Copying %s template spec to %s-primary", d.in.Spec.TargetRef.Name, d.in.Spec.TargetRef.Name)
	d.wakeAt = append(d.wakeAt, d.deadline())
}

// promoting waits until the primary runs the analysed revision and is
// ready, then moves traffic back to it.
func (d *decider) promoting() {
	in, s := d.in, &d.next
	promoted := in.Obs.Primary.Revision == s.LastAppliedSpec
	if !promoted && in.Obs.Revision != s.LastAppliedSpec {
		// The target no longer holds the analysed revision, so it cannot be
		// copied: the new revision is analysed instead, and the primary
		// never receives a revision nobody analysed.
		d.event(Normal, "New revision detected before the promotion! Restarting the analysis of %s", in.Spec.TargetRef.Name)
		d.start()
		return
	}
	if w := in.Obs.Primary; !promoted || !w.Ready {
		why := w.Message
		if promoted && why == "" {
			why = "it does not run the analysed revision yet"
		}
		if w.Stalled || d.pastDeadline() {
			d.failPromotion(why)
			return
		}
		d.keepWaiting()
		return
	}
	s.WaitingSince = nil
	if step := in.Spec.Analysis.StepWeightPromotion; step > 0 && s.CanaryWeight > step && d.p.strategy == CanaryRelease {
		if s.LastAnalysisTime != nil && in.Now.Before(s.LastAnalysisTime.Add(d.p.interval)) {
			d.wakeAt = append(d.wakeAt, s.LastAnalysisTime.Add(d.p.interval))
			return
		}
		s.CanaryWeight -= step
		s.LastAnalysisTime = d.now()
		d.event(Normal, "Advance %s primary weight %d", in.Spec.TargetRef.Name, 100-s.CanaryWeight)
		d.wakeAt = append(d.wakeAt, in.Now.Add(d.p.interval))
		return
	}
	s.CanaryWeight = 0
	d.setPhase(flaggerv1beta1.CanaryPhaseFinalising, "The primary runs the new revision; routing all traffic to it.")
	d.event(Normal, "Routing all traffic to %s-primary", in.Spec.TargetRef.Name)
	d.wakeAt = append(d.wakeAt, in.Now.Add(d.drain()))
}

// failPromotion ends a promotion whose primary did not become ready: the
// canary, which passed the analysis, keeps serving all traffic where the
// router can split it.
func (d *decider) failPromotion(why string) {
	s := &d.next
	s.WaitingSince = nil
	if d.in.Config.SplitsTraffic {
		s.CanaryWeight = 100
	}
	msg := fmt.Sprintf("Promotion of %s failed: the primary did not become ready within %s: %s", d.in.Spec.TargetRef.Name, d.p.deadline, why)
	if d.in.Config.SplitsTraffic {
		msg += "; the canary keeps serving all traffic"
	}
	d.setPhase(flaggerv1beta1.CanaryPhaseFailed, msg)
	d.alertEvent(Warning, msg, alertPromotionFailed("primary not ready: "+why))
}

// finalising scales the canary down once the router reports all traffic on
// the primary, the primary is ready, and in-flight requests had time to
// drain: never in the same reconcile that moved the traffic.
func (d *decider) finalising() {
	in, s := d.in, &d.next
	switch {
	case in.Obs.Routes == nil || *in.Obs.Routes != (Routes{Primary: 100}):
		d.setCondition(flaggerv1beta1.PromotedType, metav1Unknown, string(s.Phase),
			"Waiting for the router to send all traffic to the primary before scaling the canary down.")
		d.wakeAt = append(d.wakeAt, in.Now.Add(time.Second))
		return
	case !in.Obs.Primary.Ready:
		if s.WaitingSince == nil {
			s.WaitingSince = d.now()
		}
		if in.Obs.Primary.Stalled || d.pastDeadline() {
			d.failPromotion(in.Obs.Primary.Message)
			return
		}
		d.setCondition(flaggerv1beta1.PromotedType, metav1Unknown, string(s.Phase),
			"Waiting for the primary to become ready before scaling the canary down: "+in.Obs.Primary.Message)
		d.keepWaiting()
		return
	}
	if drained := s.LastTransitionTime.Add(d.drain()); in.Now.Before(drained) {
		d.wakeAt = append(d.wakeAt, drained)
		return
	}
	d.act(Action{Kind: SyncAutoscaler}, Action{Kind: RunPostRollout})
	s.LastPromotedSpec = s.LastAppliedSpec
	skipped := in.Spec.SkipAnalysis
	d.resetRun()
	d.setPhase(flaggerv1beta1.CanaryPhaseSucceeded, "Canary analysis completed successfully: the primary runs the new revision.")
	d.alertEvent(Normal, fmt.Sprintf("Promotion completed! Scaling down %s", in.Spec.TargetRef.Name), alertPromoted(skipped))
}

// drain is how long the canary keeps running after the switch. A router
// that cannot split traffic (plain Services) never sent the apex's
// requests to the canary, so there is nothing to drain: the primary's
// rolling update was the switch.
func (d *decider) drain() time.Duration {
	if !d.in.Config.SplitsTraffic {
		return 0
	}
	return min(maxDrain, d.p.interval)
}

// rollback routes all traffic back to the primary and parks the canary.
func (d *decider) rollback(alert *Alert, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.act(Action{Kind: RunPostRollout})
	d.resetRun()
	d.setPhase(flaggerv1beta1.CanaryPhaseFailed, msg)
	d.alertEvent(Warning, msg, alert)
	d.event(Warning, "Canary failed! Scaling down %s", d.in.Spec.TargetRef.Name)
	d.wakeAt = nil
}

// convergeActions lists the idempotent actions that hold the cluster where
// the decided status says it is, in the order they are applied: create
// what is missing, scale the canary up and start the baseline before
// traffic reaches them, promote, set the routes, then scale the canary
// down and remove the baseline once no traffic reaches them. Actions
// already listed by the decision (post-rollout, autoscaler sync) follow.
func (d *decider) convergeActions() {
	s := d.next
	var out []Action
	switch {
	case s.Phase == flaggerv1beta1.CanaryPhaseInitializing:
		// The primary first: its Pods take longest. The Services are made
		// while they start, so that once the primary is ready only the
		// routes and the parking of the target are left. The apex selects
		// the primary's Pods only, and a Service the Canary does not
		// control is never edited, so no traffic moves before the primary
		// is ready; the routes wait for it.
		out = append(out, Action{Kind: EnsurePrimary})
		if !d.in.Obs.OwnServices && d.in.Obs.Primary.Exists {
			out = append(out, Action{Kind: EnsureServices})
		}
		d.actions = append(out, d.actions...)
		return
	case s.Phase == flaggerv1beta1.CanaryPhaseInitialized && (d.in.Status.Phase == "" || d.in.Status.Phase == flaggerv1beta1.CanaryPhaseInitializing):
		// The primary is created once; later it only receives analysed
		// revisions, through Promote.
		out = append(out, Action{Kind: EnsurePrimary})
	}
	if !d.in.Obs.OwnServices {
		out = append(out, Action{Kind: EnsureServices})
	}
	out = append(out, Action{Kind: ReconcileRoutes})
	if running(s.Phase) && s.Phase != flaggerv1beta1.CanaryPhaseFinalising {
		out = append(out, Action{Kind: ScaleTargetUp})
	}
	startBaseline, removeBaseline := d.baselineActions(s)
	out = append(out, startBaseline...)
	if s.Phase == flaggerv1beta1.CanaryPhasePromoting && d.in.Obs.Primary.Revision != s.LastAppliedSpec {
		// Promote first: it copies the target's spec (and its replica count
		// when there is no autoscaler), which must not undo the raise.
		replicas := max(d.in.Obs.Target.Replicas, d.in.Obs.AutoscalerDesired)
		out = append(out, Action{Kind: Promote, Revision: s.LastAppliedSpec}, Action{Kind: ScalePrimaryAtLeast, Replicas: replicas})
	}
	out = append(out, Action{Kind: SetRoutes, Routes: routesFor(s, d.p, d.in.Config.SplitsTraffic)})
	if parked(s) {
		out = append(out, Action{Kind: ScaleTargetToZero})
	}
	out = append(out, removeBaseline...)
	d.actions = append(out, d.actions...)
}

// parked reports whether the target runs no pods in the decided status:
// between releases, except when a failed promotion left the traffic on the
// canary, and while a new revision waits in phase Waiting (the target is
// then left as its owner set it).
func parked(s flaggerv1beta1.CanaryStatus) bool {
	switch s.Phase {
	case flaggerv1beta1.CanaryPhaseInitialized, flaggerv1beta1.CanaryPhaseSucceeded:
		return true
	case flaggerv1beta1.CanaryPhaseFailed:
		return s.CanaryWeight == 0
	}
	return false
}

// routesFor is the traffic split the decided status implies.
func routesFor(s flaggerv1beta1.CanaryStatus, p plan, splits bool) Routes {
	if !splits {
		// Plain Services never point the apex at the canary: a blue/green
		// release on provider kubernetes is tested through the canary
		// Service, and the primary's rolling update is the switch.
		return Routes{Primary: 100}
	}
	switch {
	case s.Phase == flaggerv1beta1.CanaryPhaseFailed && s.CanaryWeight == 100:
		return Routes{Canary: 100}
	case !running(s.Phase) || s.Phase == flaggerv1beta1.CanaryPhaseFinalising:
		return Routes{Primary: 100}
	case p.strategy == ABTesting && s.Iterations > 0:
		return Routes{Canary: 100}
	case s.CanaryWeight == 0:
		return Routes{Primary: 100, Mirrored: p.mirror && s.Iterations > 0 && s.Phase != flaggerv1beta1.CanaryPhasePromoting}
	case baselineAnalysed(p, s.Phase):
		// The baseline takes as much as the canary, out of the primary's
		// share (a spec rule keeps the canary at 50% or less).
		w := int(min(s.CanaryWeight, 100))
		b := min(w, 100-w)
		return Routes{Primary: 100 - w - b, Canary: w, Baseline: b}
	}
	return Routes{Primary: int(100 - s.CanaryWeight), Canary: int(s.CanaryWeight)}
}
