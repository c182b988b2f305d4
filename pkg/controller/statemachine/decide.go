package statemachine

import (
	"fmt"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// maxHistory is the number of check results kept in status.analysis.
const maxHistory = 20

// decider accumulates one decision.
type decider struct {
	in      Input
	p       plan
	next    flaggerv1beta1.CanaryStatus
	actions []Action
	events  []Event
	// wakeAt holds the times at which the Canary must be looked at again.
	wakeAt []time.Time
}

// Decide returns the next status of a Canary, the actions that get the
// cluster there, the events to tell people, and when to look again.
func Decide(in Input) Decision {
	d := &decider{in: in, p: planOf(in.Spec, in.Config), next: *in.Status.DeepCopy()}
	d.next.ObservedGeneration = in.Generation
	switch {
	case in.Obs.Deleting && in.Obs.Invalid != nil:
		d.abandon(*in.Obs.Invalid)
	case in.Obs.Deleting:
		d.terminate()
	case in.Obs.Invalid != nil:
		d.invalid(*in.Obs.Invalid)
	default:
		d.valid()
		d.run()
	}
	return d.decision()
}

func (d *decider) run() {
	switch d.next.Phase {
	case "":
		d.setPhase(flaggerv1beta1.CanaryPhaseInitializing, "New Canary detected: creating the primary workload and Services.")
		d.event(Normal, "New Canary detected: initializing %s", d.in.Spec.TargetRef.Name)
		d.initializing()
	case flaggerv1beta1.CanaryPhaseInitializing:
		d.initializing()
	case flaggerv1beta1.CanaryPhaseInitialized, flaggerv1beta1.CanaryPhaseSucceeded,
		flaggerv1beta1.CanaryPhaseFailed, flaggerv1beta1.CanaryPhaseWaiting:
		d.idle()
	case flaggerv1beta1.CanaryPhaseProgressing, flaggerv1beta1.CanaryPhaseWaitingPromotion:
		d.progressing()
	case flaggerv1beta1.CanaryPhasePromoting:
		d.promoting()
	case flaggerv1beta1.CanaryPhaseFinalising:
		d.finalising()
	}
}

func (d *decider) initializing() {
	d.act(Action{Kind: EnsurePrimary})
	if !d.waitFor(d.in.Obs.Primary, "primary", false) {
		return
	}
	d.act(Action{Kind: EnsureServices}, Action{Kind: ReconcileRoutes},
		Action{Kind: SetRoutes, Routes: Routes{Primary: 100}}, Action{Kind: ScaleTargetToZero})
	d.next.LastAppliedSpec = d.in.Obs.Revision
	d.next.LastPromotedSpec = d.in.Obs.Revision
	d.next.TrackedConfigs = d.in.Obs.TrackedConfigs
	d.resetRun()
	d.setPhase(flaggerv1beta1.CanaryPhaseInitialized, fmt.Sprintf("Initialization done: %s-primary serves %s.",
		d.in.Spec.TargetRef.Name, d.in.Spec.TargetRef.Name))
	d.event(Normal, "Initialization done! %s-primary now serves %s", d.in.Spec.TargetRef.Name, d.in.Spec.TargetRef.Name)
}

// idle handles Initialized, Succeeded, Failed and Waiting: keep the Services
// and routes in shape, and start an analysis when a new revision appears.
func (d *decider) idle() {
	d.act(Action{Kind: EnsureServices}, Action{Kind: ReconcileRoutes})
	if !newRevision(d.in) {
		if d.next.Phase == flaggerv1beta1.CanaryPhaseWaiting {
			d.setPhase(flaggerv1beta1.CanaryPhaseSucceeded, "The revision that was waiting is gone; the primary is unchanged.")
			d.next.WaitingSince = nil
		}
		return
	}
	if !d.in.Obs.Admitted {
		d.wait(fmt.Sprintf("New revision waits for an analysis slot: %s", d.in.Obs.AdmissionMessage), false)
		return
	}
	if hasHooks(d.in.Spec, flaggerv1beta1.ConfirmRolloutHook) {
		if g, ok := d.in.Results.Gates[flaggerv1beta1.ConfirmRolloutHook]; !ok || !g.Open {
			d.wait("New revision waits for approval from the confirm-rollout webhooks: "+g.Message+openHint(d.in, flaggerv1beta1.ConfirmRolloutHook),
				gateMuted(d.in.Spec, flaggerv1beta1.ConfirmRolloutHook))
			return
		}
	}
	d.start()
}

// wait parks a new revision in phase Waiting, saying since when and why.
func (d *decider) wait(why string, mute bool) {
	if d.next.Phase != flaggerv1beta1.CanaryPhaseWaiting {
		d.setPhase(flaggerv1beta1.CanaryPhaseWaiting, why)
		d.next.WaitingSince = d.now()
		d.gateEvent(why, mute)
	} else {
		since := d.in.Now.Sub(d.next.WaitingSince.Time).Truncate(time.Second)
		d.setCondition(flaggerv1beta1.PromotedType, metav1Unknown, string(flaggerv1beta1.CanaryPhaseWaiting),
			fmt.Sprintf("%s (waiting for %s)", why, since))
	}
	d.wakeAt = append(d.wakeAt, d.in.Now.Add(d.p.interval))
}

// start begins the analysis of a new revision.
func (d *decider) start() {
	d.next.LastAppliedSpec = d.in.Obs.Revision
	d.next.TrackedConfigs = d.in.Obs.TrackedConfigs
	d.resetRun()
	d.next.WaitingSince = d.now()
	d.act(Action{Kind: ScaleTargetUp})
	d.setPhase(flaggerv1beta1.CanaryPhaseProgressing, "New revision detected: analysis started.")
	d.event(Normal, "New revision detected! Scaling up %s", d.in.Spec.TargetRef.Name)
	if d.p.downgraded {
		d.event(Warning, "Provider %s cannot split traffic: running a blue/green analysis of %d iterations instead of weight steps",
			d.in.Spec.Provider, d.p.iterations)
	}
	d.affinityNotice()
	d.wakeAt = append(d.wakeAt, d.deadline())
}

// resetRun clears the counters and session cookies of an analysis run.
func (d *decider) resetRun() {
	d.next.CanaryWeight, d.next.Iterations, d.next.FailedChecks = 0, 0, 0
	d.next.LastAnalysisTime, d.next.WaitingSince = nil, nil
	d.unpinUsers()
}

func (d *decider) progressing() {
	in, s := d.in, &d.next
	if in.Obs.Revision != s.LastAppliedSpec {
		d.act(Action{Kind: SetRoutes, Routes: Routes{Primary: 100}})
		d.event(Normal, "New revision detected during the analysis! Restarting the analysis of %s", in.Spec.TargetRef.Name)
		d.start()
		return
	}
	if !d.waitFor(in.Obs.Target, "canary", true) {
		return
	}
	if in.Spec.SkipAnalysis {
		d.event(Normal, "Analysis skipped (skipAnalysis): promoting %s", in.Spec.TargetRef.Name)
		d.promote()
		return
	}
	if !stepDue(in, d.p) {
		d.wakeAt = append(d.wakeAt, s.LastAnalysisTime.Add(d.p.interval))
		return
	}
	d.step()
}

// step runs one analysis step with the results the reconciler gathered.
func (d *decider) step() {
	in, s := d.in, &d.next
	s.LastAnalysisTime = d.now()
	d.wakeAt = append(d.wakeAt, in.Now.Add(d.p.interval))
	if g := in.Results.Gates[flaggerv1beta1.RollbackHook]; g.Open {
		d.rollback("Rolling back %s: a rollback webhook asked for it%s", in.Spec.TargetRef.Name, suffix(g.Message))
		return
	}
	failed, held := d.record(in.Results.Checks)
	if failed == nil && held != nil {
		d.event(Normal, "Holding %s at this step: %s %s has no data (onNoData: hold)", in.Spec.TargetRef.Name, held.Kind, held.Name)
		return
	}
	if failed != nil {
		s.FailedChecks++
		d.event(Warning, "Halt advancement of %s: %s %s failed: %s", in.Spec.TargetRef.Name, failed.Kind, failed.Name, failed.Message)
		if s.FailedChecks >= d.p.threshold {
			d.rollback("Rolling back %s: failed checks threshold reached %d", in.Spec.TargetRef.Name, s.FailedChecks)
		}
		return
	}
	first := s.Iterations == 0
	switch {
	case switchedToCanary(in, d.p):
		d.promote()
		return
	case promotionPoint(in, d.p):
		if !d.gate(flaggerv1beta1.ConfirmPromotionHook, "promotion") {
			return
		}
		if d.p.strategy == BlueGreen {
			s.Iterations++
			s.CanaryWeight = 100
			d.act(Action{Kind: SetRoutes, Routes: Routes{Canary: 100}})
			d.event(Normal, "Analysis of %s passed: switching all traffic to the canary before promotion", in.Spec.TargetRef.Name)
			return
		}
		d.promote()
		return
	}
	s.Iterations++
	d.setPhase(flaggerv1beta1.CanaryPhaseProgressing, "")
	switch d.p.strategy {
	case ABTesting:
		if first {
			d.act(Action{Kind: SetRoutes, Routes: Routes{Canary: 100}})
		}
		d.event(Normal, "Advance %s A/B testing iteration %d/%d", in.Spec.TargetRef.Name, s.Iterations-1, d.p.iterations)
	case BlueGreen:
		if first {
			d.act(Action{Kind: SetRoutes, Routes: Routes{Primary: 100, Mirrored: d.p.mirror}})
		}
		d.event(Normal, "Advance %s blue/green iteration %d/%d", in.Spec.TargetRef.Name, s.Iterations-1, d.p.iterations)
	default:
		d.advanceWeight(first)
	}
}

// advanceWeight raises the canary weight by one step, or mirrors first.
func (d *decider) advanceWeight(first bool) {
	s := &d.next
	if first && d.p.mirror {
		d.act(Action{Kind: SetRoutes, Routes: Routes{Primary: 100, Mirrored: true}})
		d.event(Normal, "Mirroring traffic to %s before shifting any", d.in.Spec.TargetRef.Name)
		return
	}
	if !d.gate(flaggerv1beta1.ConfirmTrafficIncreaseHook, "traffic increase") {
		s.Iterations-- // the step did not advance
		return
	}
	w := nextWeight(d.in.Spec.Analysis, d.p.maxWeight, s.CanaryWeight)
	s.CanaryWeight = w
	d.pinUsers()
	d.act(Action{Kind: SetRoutes, Routes: Routes{Primary: int(100 - w), Canary: int(w)}})
	d.event(Normal, "Advance %s canary weight %d", d.in.Spec.TargetRef.Name, w)
}

// gate reports whether the gate webhooks of a type let the analysis go on;
// with no such webhooks the gate is open. A closed confirm-promotion gate
// moves the Canary to WaitingPromotion.
func (d *decider) gate(t flaggerv1beta1.HookType, what string) bool {
	if !hasHooks(d.in.Spec, t) {
		return true
	}
	g := d.in.Results.Gates[t]
	if g.Open {
		return true
	}
	why := fmt.Sprintf("Waiting for approval of the %s of %s (%s webhooks)%s%s", what, d.in.Spec.TargetRef.Name, t, suffix(g.Message),
		openHint(d.in, t))
	mute := gateMuted(d.in.Spec, t)
	if t == flaggerv1beta1.ConfirmPromotionHook {
		if d.next.Phase != flaggerv1beta1.CanaryPhaseWaitingPromotion {
			d.setPhase(flaggerv1beta1.CanaryPhaseWaitingPromotion, why)
			d.gateEvent(why, mute)
		} else {
			since := d.in.Now.Sub(d.next.LastTransitionTime.Time).Truncate(time.Second)
			d.setCondition(flaggerv1beta1.PromotedType, metav1Unknown, string(flaggerv1beta1.CanaryPhaseWaitingPromotion),
				fmt.Sprintf("%s (waiting for %s)", why, since))
		}
		return false
	}
	d.gateEvent(why, mute)
	return false
}

func (d *decider) gateEvent(msg string, mute bool) {
	d.events = append(d.events, Event{Type: Normal, Message: msg, Mute: mute})
}

// promote copies the canary into the primary, after making sure the primary
// can carry the canary's load.
func (d *decider) promote() {
	replicas := max(d.in.Obs.Target.Replicas, d.in.Obs.AutoscalerDesired)
	// Promote first: it copies the target's spec (and replica count when
	// there is no autoscaler), which must not undo the raise.
	d.act(Action{Kind: Promote}, Action{Kind: ScalePrimaryAtLeast, Replicas: replicas})
	d.next.WaitingSince = d.now()
	d.setPhase(flaggerv1beta1.CanaryPhasePromoting, "Copying the canary into the primary.")
	d.event(Normal, "Copying %s template spec to %s-primary", d.in.Spec.TargetRef.Name, d.in.Spec.TargetRef.Name)
	d.wakeAt = append(d.wakeAt, d.deadline())
}

func (d *decider) promoting() {
	s := &d.next
	if w := d.in.Obs.Primary; !w.Ready {
		if w.Stalled || d.pastDeadline() {
			d.failPromotion(w.Message)
			return
		}
		d.keepWaiting()
		return
	}
	s.WaitingSince = nil
	if step := d.in.Spec.Analysis.StepWeightPromotion; step > 0 && s.CanaryWeight > step && d.p.strategy == CanaryRelease {
		if s.LastAnalysisTime != nil && d.in.Now.Before(s.LastAnalysisTime.Add(d.p.interval)) {
			d.wakeAt = append(d.wakeAt, s.LastAnalysisTime.Add(d.p.interval))
			return
		}
		s.CanaryWeight -= step
		s.LastAnalysisTime = d.now()
		d.act(Action{Kind: SetRoutes, Routes: Routes{Primary: int(100 - s.CanaryWeight), Canary: int(s.CanaryWeight)}})
		d.event(Normal, "Advance %s primary weight %d", d.in.Spec.TargetRef.Name, 100-s.CanaryWeight)
		d.wakeAt = append(d.wakeAt, d.in.Now.Add(d.p.interval))
		return
	}
	s.CanaryWeight = 0
	d.act(Action{Kind: SetRoutes, Routes: Routes{Primary: 100}})
	d.setPhase(flaggerv1beta1.CanaryPhaseFinalising, "The primary runs the new revision and serves all traffic.")
	d.finalising()
}

// failPromotion ends a promotion whose primary did not become ready: the
// canary, which passed the analysis, keeps serving all traffic.
func (d *decider) failPromotion(why string) {
	s := &d.next
	s.CanaryWeight, s.WaitingSince = 100, nil
	d.act(Action{Kind: SetRoutes, Routes: Routes{Canary: 100}})
	msg := fmt.Sprintf("Promotion of %s failed: the primary did not become ready within %s: %s; the canary keeps serving all traffic",
		d.in.Spec.TargetRef.Name, d.p.deadline, why)
	d.setPhase(flaggerv1beta1.CanaryPhaseFailed, msg)
	d.event(Warning, "%s", msg)
}

func (d *decider) finalising() {
	s := &d.next
	d.act(Action{Kind: ScaleTargetToZero}, Action{Kind: SyncAutoscaler}, Action{Kind: RunPostRollout})
	s.LastPromotedSpec = s.LastAppliedSpec
	d.resetRun()
	d.setPhase(flaggerv1beta1.CanaryPhaseSucceeded, "Canary analysis completed successfully: the primary runs the new revision.")
	d.event(Normal, "Promotion completed! Scaling down %s", d.in.Spec.TargetRef.Name)
}

// rollback routes all traffic back to the primary and parks the canary.
func (d *decider) rollback(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.act(Action{Kind: SetRoutes, Routes: Routes{Primary: 100}}, Action{Kind: ScaleTargetToZero}, Action{Kind: RunPostRollout})
	d.resetRun()
	d.setPhase(flaggerv1beta1.CanaryPhaseFailed, msg)
	d.event(Warning, "%s", msg)
	d.event(Warning, "Canary failed! Scaling down %s", d.in.Spec.TargetRef.Name)
	d.wakeAt = nil
}
