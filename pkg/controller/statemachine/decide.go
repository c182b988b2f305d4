package statemachine

import (
	"fmt"
	"strings"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
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
	// converge is false when the decision must not touch the workloads and
	// routes (an invalid Canary, a deletion): only then are the actions
	// listed explicitly.
	converge bool
	// clearRequest is set once the pending request is taken.
	clearRequest bool
}

// Decide returns the next status of a Canary, the actions that get the
// cluster there, the events to tell people, and when to look again.
//
// The reconciler persists the status before it carries out the actions,
// so the actions are what the decided status implies, not only what
// changed: every decision for a valid Canary ends with the idempotent
// actions that hold the routes, the target's scale and the primary's
// revision where the status says they are (see convergeActions). A
// reconcile repeated after a crash therefore finishes what the last one
// started.
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
		d.converge = true
		d.run()
	}
	if d.converge {
		d.convergeActions()
	}
	return d.decision()
}

func (d *decider) run() {
	if d.next.StepStartedAt != nil && d.in.Results.Checks == nil && running(d.next.Phase) {
		d.interrupted()
	}
	d.clampWeight()
	d.takeRequest()
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

// clampWeight keeps the canary weight of a weighted release within
// maxWeight when the spec lowers it during the release: the traffic on the
// canary never exceeds what the spec allows now.
func (d *decider) clampWeight() {
	s := &d.next
	if d.p.strategy != CanaryRelease || !running(s.Phase) || s.CanaryWeight <= d.p.maxWeight {
		return
	}
	d.event(Normal, "maxWeight of %s is now %d: lowering the canary weight from %d", d.in.Spec.TargetRef.Name, d.p.maxWeight, s.CanaryWeight)
	s.CanaryWeight = d.p.maxWeight
}

// interrupted records a step whose webhooks were started (stepStartedAt
// was persisted) but whose outcome never was: the controller stopped, or
// its write of the outcome conflicted. The webhooks may have run, so they
// are not called again for this step; the step counts neither as passed
// nor as failed, and the next one runs an interval after it began.
func (d *decider) interrupted() {
	s := &d.next
	started := *s.StepStartedAt
	s.StepStartedAt = nil
	s.LastAnalysisTime = &started
	d.event(Warning, "The analysis step of %s started at %s was interrupted before its outcome was recorded; its webhooks are not called again, and the next step runs at %s",
		d.in.Spec.TargetRef.Name, started.UTC().Format(time.RFC3339), started.Add(d.p.interval).UTC().Format(time.RFC3339))
}

func (d *decider) initializing() {
	if !d.waitFor(d.in.Obs.Primary, "primary", false) {
		return
	}
	d.next.LastAppliedSpec = d.in.Obs.Revision
	d.next.LastPromotedSpec = d.in.Obs.Revision
	d.next.TrackedConfigs = d.in.Obs.TrackedConfigs
	d.resetRun()
	d.setPhase(flaggerv1beta1.CanaryPhaseInitialized, fmt.Sprintf("Initialization done: %s-primary serves %s.",
		d.in.Spec.TargetRef.Name, d.in.Spec.TargetRef.Name))
	d.alertEvent(Normal, fmt.Sprintf("Initialization done! %s-primary now serves %s", d.in.Spec.TargetRef.Name, d.in.Spec.TargetRef.Name),
		alertInitialized(d.in.Spec.TargetRef.Kind))
}

// idle handles Initialized, Succeeded, Failed and Waiting: start an
// analysis when a new revision appears.
func (d *decider) idle() {
	now := d.in
	now.Status = d.next
	if !newRevision(now) {
		if d.next.Phase == flaggerv1beta1.CanaryPhaseWaiting {
			d.setPhase(flaggerv1beta1.CanaryPhaseSucceeded, "The revision that was waiting is gone; the primary is unchanged.")
			d.next.WaitingSince = nil
		}
		return
	}
	if d.adopt() {
		return
	}
	if !d.in.Obs.Admitted {
		d.wait(fmt.Sprintf("New revision waits for an analysis slot: %s", d.in.Obs.AdmissionMessage), nil)
		return
	}
	if hasHooks(d.in.Spec, flaggerv1beta1.ConfirmRolloutHook) {
		if g, ok := d.in.Results.Gates[flaggerv1beta1.ConfirmRolloutHook]; !ok || !g.Open {
			d.wait("New revision waits for approval from the confirm-rollout webhooks: "+g.Message+openHint(d.in, flaggerv1beta1.ConfirmRolloutHook),
				d.gateAlert(flaggerv1beta1.ConfirmRolloutHook, alertWaitingApproval))
			return
		}
	}
	d.start()
}

// adopt records, without an analysis, a revision this controller did not
// see analysed but that needs none, as when Sluice takes over from
// Flagger: the primary already runs the target's revision (Flagger
// promoted it, its status holds Flagger's own hashes), or a release that
// Flagger failed, whose revision the target still holds. It reports
// whether it adopted.
func (d *decider) adopt() bool {
	s, obs := &d.next, d.in.Obs
	switch {
	case obs.Primary.Revision != "" && obs.Primary.Revision == obs.Revision:
		s.LastAppliedSpec, s.LastPromotedSpec, s.TrackedConfigs = obs.Revision, obs.Revision, obs.TrackedConfigs
		if s.Phase == flaggerv1beta1.CanaryPhaseWaiting || s.Phase == flaggerv1beta1.CanaryPhaseFailed {
			s.WaitingSince = nil
			d.setPhase(flaggerv1beta1.CanaryPhaseSucceeded, "The primary already runs the target's revision.")
		}
		d.event(Normal, "The primary already runs revision %s of %s (promoted before Sluice took over, or by hand): adopted without a new analysis",
			obs.Revision, d.in.Spec.TargetRef.Name)
		return true
	case s.Phase == flaggerv1beta1.CanaryPhaseFailed && isFlaggerHash(s.LastAppliedSpec):
		// Flagger's hash of the failed revision cannot be compared with
		// Sluice's: the target is taken to still hold it, as it was failed
		// by the controller that wrote that hash.
		s.LastAppliedSpec, s.TrackedConfigs = obs.Revision, obs.TrackedConfigs
		d.event(Normal, "Revision %s of %s failed its analysis before Sluice took over: it is not analysed again until the target changes",
			obs.Revision, d.in.Spec.TargetRef.Name)
		return true
	}
	return false
}

// isFlaggerHash reports whether s is a revision hash as Flagger writes it
// in lastAppliedSpec: the decimal FNV-32a of the pod template, each digit
// mapped through Kubernetes' rand.SafeEncodeString to one of 4-9, b, c, d,
// f, so at most 10 characters. Sluice's revisions are 16 hex digits.
func isFlaggerHash(s string) bool {
	if len(s) == 0 || len(s) > 10 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("456789bcdf", c) {
			return false
		}
	}
	return true
}

// wait parks a new revision in phase Waiting, saying since when and why;
// alert goes out when the wait begins.
func (d *decider) wait(why string, alert *Alert) {
	if d.next.Phase != flaggerv1beta1.CanaryPhaseWaiting {
		d.setPhase(flaggerv1beta1.CanaryPhaseWaiting, why)
		d.next.WaitingSince = d.now()
		d.alertEvent(Normal, why, alert)
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
	d.setPhase(flaggerv1beta1.CanaryPhaseProgressing, "New revision detected: analysis started.")
	d.alertEvent(Normal, fmt.Sprintf("New revision detected! Scaling up %s", d.in.Spec.TargetRef.Name), alertNewRevision)
	if d.p.downgraded {
		d.event(Warning, "Provider %s cannot split traffic: running a blue/green analysis of %d iterations instead of weight steps",
			d.in.Spec.Provider, d.p.iterations)
	}
	d.affinityNotice()
	d.baselineNotice()
	// The first step is due once both workloads are ready, which may be at
	// once: a target that starting does not change (a ready Knative
	// revision, a target left running) sends no event to wake the Canary.
	d.wakeAt = append(d.wakeAt, d.deadline(), d.in.Now)
}

// resetRun clears the counters and session cookies of an analysis run.
func (d *decider) resetRun() {
	d.next.CanaryWeight, d.next.Iterations, d.next.FailedChecks = 0, 0, 0
	d.next.LastAnalysisTime, d.next.WaitingSince, d.next.StepStartedAt = nil, nil, nil
	d.unpinUsers()
}

func (d *decider) progressing() {
	in, s := d.in, &d.next
	if in.Obs.Revision != s.LastAppliedSpec {
		d.event(Normal, "New revision detected during the analysis! Restarting the analysis of %s", in.Spec.TargetRef.Name)
		d.start()
		return
	}
	// The primary serves the traffic the canary does not: no step runs
	// while it is not ready, and a primary that stays unready fails the
	// release like an unready canary.
	if !d.waitFor(in.Obs.Primary, "primary", true) || !d.waitFor(in.Obs.Target, "canary", true) {
		return
	}
	if in.Spec.SkipAnalysis {
		d.event(Normal, "Analysis skipped (skipAnalysis): promoting %s", in.Spec.TargetRef.Name)
		d.promote()
		return
	}
	if !d.waitForBaseline() {
		return
	}
	now := in
	now.Status = d.next
	if !stepDue(now, d.p) {
		d.wakeAt = append(d.wakeAt, s.LastAnalysisTime.Add(d.p.interval))
		return
	}
	if in.Results.Checks == nil {
		// Plan said the step is due but its checks did not run: a step is
		// never taken on checks that were not made.
		d.wakeAt = append(d.wakeAt, in.Now.Add(time.Second))
		return
	}
	d.step()
}

// step runs one analysis step with the results the reconciler gathered.
func (d *decider) step() {
	in, s := d.in, &d.next
	s.LastAnalysisTime = d.now()
	s.StepStartedAt = nil
	d.wakeAt = append(d.wakeAt, in.Now.Add(d.p.interval))
	if g := in.Results.Gates[flaggerv1beta1.RollbackHook]; g.Open {
		d.rollback(alertManualRollback, "Rolling back %s: a rollback webhook asked for it%s", in.Spec.TargetRef.Name, suffix(g.Message))
		return
	}
	failed, held := d.record(in.Results.Checks)
	if failed == nil && held != nil {
		d.hold(held)
		return
	}
	// A step that completes, passed or failed, ends any wait.
	s.WaitingSince = nil
	if c := criticalFailure(in.Results.Checks); c != nil {
		s.FailedChecks++
		d.rollback(alertThreshold(s.FailedChecks), "Rolling back %s: critical %s %s failed: %s", in.Spec.TargetRef.Name, c.Kind, c.Name, c.Message)
		return
	}
	if failed != nil {
		s.FailedChecks++
		d.event(Warning, "Halt advancement of %s: %s %s failed: %s", in.Spec.TargetRef.Name, failed.Kind, failed.Name, failed.Message)
		if s.FailedChecks >= d.p.threshold {
			d.rollback(alertThreshold(s.FailedChecks), "Rolling back %s: failed checks threshold reached %d", in.Spec.TargetRef.Name, s.FailedChecks)
			return
		}
		d.setPhase(s.Phase, fmt.Sprintf("Halted at this step: %s %s failed: %s (%d of %d failed checks)",
			failed.Kind, failed.Name, failed.Message, s.FailedChecks, d.p.threshold))
		return
	}
	first := s.Iterations == 0
	switch {
	case switchedToCanary(in, d.p):
		d.promote()
		return
	case promotionPoint(in, d.p) || promotionRequested(*s):
		if !d.gate(flaggerv1beta1.ConfirmPromotionHook, "promotion") {
			return
		}
		if d.p.strategy == BlueGreen && d.in.Config.SplitsTraffic && !promotionRequested(*s) {
			s.Iterations++
			s.CanaryWeight = 100
			d.event(Normal, "Analysis of %s passed: switching all traffic to the canary before promotion", in.Spec.TargetRef.Name)
			return
		}
		d.promote()
		return
	}
	s.Iterations++
	switch d.p.strategy {
	case ABTesting:
		d.setPhase(flaggerv1beta1.CanaryPhaseProgressing, fmt.Sprintf("A/B testing: iteration %d of %d passed.", s.Iterations-1, d.p.iterations))
		d.event(Normal, "Advance %s A/B testing iteration %d/%d", in.Spec.TargetRef.Name, s.Iterations-1, d.p.iterations)
	case BlueGreen:
		d.setPhase(flaggerv1beta1.CanaryPhaseProgressing, fmt.Sprintf("Blue/green: iteration %d of %d passed.", s.Iterations-1, d.p.iterations))
		d.event(Normal, "Advance %s blue/green iteration %d/%d", in.Spec.TargetRef.Name, s.Iterations-1, d.p.iterations)
	default:
		d.setPhase(flaggerv1beta1.CanaryPhaseProgressing, "")
		d.advanceWeight(first)
	}
}

// criticalFailure returns a failed check marked critical (a comparison
// with the primary whose metric is critical): it rolls the release back at
// once, whatever the threshold.
func criticalFailure(checks []flaggerv1beta1.CanaryCheckResult) *flaggerv1beta1.CanaryCheckResult {
	for i := range checks {
		if checks[i].Critical && checks[i].Counts() {
			return &checks[i]
		}
	}
	return nil
}

// hold keeps a step whose metric had no data (onNoData: hold) from
// advancing. The hold counts towards progressDeadlineSeconds, like a wait
// for workloads: a release never waits for data without bound.
func (d *decider) hold(held *flaggerv1beta1.CanaryCheckResult) {
	s := &d.next
	if s.WaitingSince == nil {
		s.WaitingSince = d.now()
	}
	if d.pastDeadline() {
		msg := fmt.Sprintf("%s %s has had no data for longer than the progress deadline (%s)", held.Kind, held.Name, d.p.deadline)
		d.rollback(alertDeadline(msg), "Rolling back %s: %s", d.in.Spec.TargetRef.Name, msg)
		return
	}
	d.setPhase(s.Phase, fmt.Sprintf("Holding at this step: %s %s has no data (onNoData: hold); the release fails at %s if it still has none",
		held.Kind, held.Name, d.deadline().UTC().Format(time.RFC3339)))
	d.event(Normal, "Holding %s at this step: %s %s has no data (onNoData: hold); the release fails at %s if it still has none",
		d.in.Spec.TargetRef.Name, held.Kind, held.Name, d.deadline().UTC().Format(time.RFC3339))
	d.wakeAt = append(d.wakeAt, d.deadline())
}

// advanceWeight raises the canary weight by one step, or mirrors first.
func (d *decider) advanceWeight(first bool) {
	s := &d.next
	if first && d.p.mirror {
		d.setPhase(s.Phase, "The checks passed: mirroring traffic to the canary before shifting any.")
		d.event(Normal, "Mirroring traffic to %s before shifting any", d.in.Spec.TargetRef.Name)
		return
	}
	if !d.gate(flaggerv1beta1.ConfirmTrafficIncreaseHook, "traffic increase") {
		s.Iterations-- // the step did not advance
		return
	}
	w := nextWeight(d.in.Spec.Analysis, d.p.maxWeight, s.CanaryWeight)
	s.CanaryWeight = w
	reason := "The checks passed"
	if first {
		reason = "The canary is ready"
	}
	d.setPhase(s.Phase, fmt.Sprintf("%s: canary weight %d%% (maximum %d%%).", reason, w, d.p.maxWeight))
	d.pinUsers()
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
	if t == flaggerv1beta1.ConfirmPromotionHook {
		if d.next.Phase != flaggerv1beta1.CanaryPhaseWaitingPromotion {
			d.setPhase(flaggerv1beta1.CanaryPhaseWaitingPromotion, why)
			d.alertEvent(Normal, why, d.gateAlert(t, alertWaitingPromotion))
		} else {
			since := d.in.Now.Sub(d.next.LastTransitionTime.Time).Truncate(time.Second)
			d.setCondition(flaggerv1beta1.PromotedType, metav1Unknown, string(flaggerv1beta1.CanaryPhaseWaitingPromotion),
				fmt.Sprintf("%s (waiting for %s)", why, since))
		}
		return false
	}
	d.alertEvent(Normal, why, d.gateAlert(t, alertWaitingTrafficIncrease))
	return false
}

// running reports whether a phase belongs to a release in flight: traffic
// may be split and the target is scaled up.
func running(phase flaggerv1beta1.CanaryPhase) bool {
	switch phase {
	case flaggerv1beta1.CanaryPhaseProgressing, flaggerv1beta1.CanaryPhaseWaitingPromotion,
		flaggerv1beta1.CanaryPhasePromoting, flaggerv1beta1.CanaryPhaseFinalising:
		return true
	}
	return false
}

// Running reports whether a phase belongs to a release in flight, the
// phases that hold one of the slots -max-concurrent-canaries caps.
func Running(phase flaggerv1beta1.CanaryPhase) bool { return running(phase) }

// invalid reports a Canary that Sluice cannot act on. An idle Canary is
// left as it is. A release in flight is aborted: traffic goes back to the
// primary and the canary is scaled down when the reconciler can still do
// that, the release is Failed with the problem as its reason, and the
// revision is analysed again once the Canary is valid.
func (d *decider) invalid(p problem.Problem) {
	if d.setCondition(flaggerv1beta1.ValidType, conditionFalse, string(p.Reason), p.Message) {
		d.alertEvent(Warning, p.Message, &Alert{Severity: flaggerv1beta1.SeverityWarn, Text: "Canary is invalid: " + p.Message})
	}
	if p.RetryAfter > 0 {
		d.wakeAt = append(d.wakeAt, d.in.Now.Add(p.RetryAfter))
	}
	if !running(d.next.Phase) {
		return
	}
	if !d.in.Obs.Routable {
		// Nothing can be routed: say so once, and look again.
		d.wakeAt = append(d.wakeAt, d.in.Now.Add(d.p.interval))
		return
	}
	s := &d.next
	d.resetRun()
	s.LastAppliedSpec = ""
	d.act(Action{Kind: SetRoutes, Routes: Routes{Primary: 100}})
	if d.in.Obs.Target.Exists {
		d.act(Action{Kind: ScaleTargetToZero})
	}
	if d.in.Obs.Baseline.Exists {
		d.act(Action{Kind: RemoveBaseline})
	}
	msg := fmt.Sprintf("Release of %s aborted, the Canary became invalid: %s; all traffic is back on the primary, and the revision is analysed again once the Canary is valid",
		d.in.Spec.TargetRef.Name, p.Message)
	d.setPhase(flaggerv1beta1.CanaryPhaseFailed, msg)
	d.alertEvent(Warning, msg, &Alert{Severity: flaggerv1beta1.SeverityError, Text: "Canary analysis aborted: " + p.Message})
	d.act(Action{Kind: RunPostRollout})
}

func (d *decider) valid() {
	d.setCondition(flaggerv1beta1.ValidType, conditionTrue, "Valid", "Sluice can act on this Canary.")
}
