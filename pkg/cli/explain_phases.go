package cli

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/controller/statemachine"
)

func (e *explanation) initializing() {
	cd, v := e.v.cd, e.v
	e.summary = fmt.Sprintf("is being initialized: Sluice is creating %s and waits for it to become ready", v.primary.name)
	e.because("%s", promotedMessage(cd))
	e.because("%s %s: %s.", v.primary.kind, v.primary.name, replicas(v.primary))
	e.then("Once %s is ready, Sluice creates the Services and the routing, sends all traffic to the primary and scales %s to zero; the Canary becomes Initialized.",
		v.primary.name, cd.Spec.TargetRef.Name)
	if t := e.deadlineText("past it Sluice reports the primary as not ready in a Warning event and keeps waiting; no traffic has moved, so nothing is rolled back"); t != "" {
		e.then("%s", t)
	}
}

func (e *explanation) idle() {
	cd := e.v.cd
	if cd.Status.Phase == flaggerv1beta1.CanaryPhaseSucceeded {
		e.summary = fmt.Sprintf("succeeded: the last revision was promoted %s", ago(e.now, cd.Status.LastTransitionTime.Time))
	} else {
		e.summary = fmt.Sprintf("is initialized: %s-primary serves all traffic", cd.Spec.TargetRef.Name)
	}
	e.because("%s", promotedMessage(cd))
	e.because("The primary runs revision %s and receives all the traffic; %s is scaled to zero.",
		short(cd.Status.LastPromotedSpec), cd.Spec.TargetRef.Name)
	e.then("Nothing happens until %s %s changes: a new pod template, or new data in a ConfigMap or Secret it uses, starts the analysis of the new revision (%s).",
		cd.Spec.TargetRef.Kind, cd.Spec.TargetRef.Name, e.strategyText())
	if hasHooks(cd, flaggerv1beta1.ConfirmRolloutHook) {
		e.then("The confirm-rollout webhooks are asked first; while they say no the revision waits in phase Waiting.")
	}
}

// strategyText describes the analysis a new revision goes through.
func (e *explanation) strategyText() string {
	cd, v := e.v.cd, e.v
	switch v.strategy {
	case statemachine.CanaryRelease:
		steps := weightSteps(cd, 0)
		return fmt.Sprintf("canary release: the canary's weight goes %s, a step every %s if its checks pass", weightsText(steps), intervalOf(cd))
	case statemachine.ABTesting:
		return fmt.Sprintf("A/B testing: the matching requests go to the canary for %d iterations of %s", iterationsOf(v), intervalOf(cd))
	}
	return fmt.Sprintf("blue/green: %d iterations of %s on the canary before all traffic switches to it", iterationsOf(v), intervalOf(cd))
}

func weightsText(steps []int32) string {
	parts := make([]string, len(steps))
	for i, s := range steps {
		parts[i] = fmt.Sprintf("%d%%", s)
	}
	return strings.Join(parts, ", ")
}

func (e *explanation) waiting() {
	cd := e.v.cd
	msg := promotedMessage(cd)
	since := ""
	if cd.Status.WaitingSince != nil {
		since = " for " + age(e.now, cd.Status.WaitingSince.Time)
	}
	switch {
	case strings.Contains(msg, "analysis slot"):
		e.summary = "has waited for an analysis slot" + since
		e.because("%s", msg)
		e.because("The controller runs at most a fixed number of analyses at once (its -max-concurrent-canaries flag), so that a change shared by many workloads rolls out a few at a time.")
		e.then("The analysis starts when a slot is free; Canaries that started waiting earlier go first. Sluice looks again every analysis interval (%s) and whenever another Canary finishes.",
			intervalOf(cd))
	case strings.Contains(msg, "confirm-rollout"):
		e.summary = "has waited for the confirm-rollout gate" + since
		e.because("%s", withoutHint(msg))
		e.then("Sluice asks the confirm-rollout webhooks again every analysis interval (%s); when all of them answer yes, the analysis starts.", intervalOf(cd))
		e.then("%s", e.gateHowTo(flaggerv1beta1.ConfirmRolloutHook))
	default:
		e.summary = "has waited" + since
		e.because("%s", msg)
	}
	e.then("There is no deadline in this phase: the new revision waits as long as it takes. The primary keeps serving all traffic meanwhile.")
}

func (e *explanation) progressing() {
	cd, v := e.v.cd, e.v
	s := cd.Status
	msg := promotedMessage(cd)
	if s.WaitingSince != nil && strings.HasPrefix(msg, "Waiting for the canary") {
		e.summary = fmt.Sprintf("is waiting for %s to become ready before the analysis goes on", cd.Spec.TargetRef.Name)
		e.because("%s", msg)
		e.because("%s %s: %s.", v.target.kind, v.target.name, replicas(v.target))
		e.then("%s", e.deadlineText("past it the revision is rolled back: all traffic goes to the primary and the canary is scaled to zero"))
		return
	}
	e.summary = fmt.Sprintf("is being analysed: %s", e.position())
	e.because("The analysis of revision %s started %s.", short(s.LastAppliedSpec), e.startedAgo())
	e.currentFailures()
	e.latestStep()
	e.gateHold(flaggerv1beta1.ConfirmTrafficIncreaseHook, "Waiting for approval of the traffic increase")
	e.nextSteps()
}

// position says where a running analysis is.
func (e *explanation) position() string {
	cd, v := e.v.cd, e.v
	s := cd.Status
	switch v.strategy {
	case statemachine.CanaryRelease:
		if s.Iterations == 0 {
			return "the first step is due; no traffic on the canary yet"
		}
		if s.CanaryWeight == 0 {
			return "traffic is mirrored to the canary before any is shifted"
		}
		return fmt.Sprintf("the canary has %d%% of the traffic (of at most %d%%)", s.CanaryWeight, maxWeight(cd))
	case statemachine.ABTesting:
		return fmt.Sprintf("A/B testing, iteration %d of %d", max(s.Iterations-1, 0), iterationsOf(v))
	}
	if s.CanaryWeight == 100 {
		return "blue/green, all traffic switched to the canary for the last check"
	}
	return fmt.Sprintf("blue/green, iteration %d of %d", max(s.Iterations-1, 0), iterationsOf(v))
}

func (e *explanation) startedAgo() string {
	if t := e.runStart(e.now); !t.IsZero() {
		return ago(e.now, t)
	}
	return ago(e.now, e.v.cd.Status.LastTransitionTime.Time)
}

// currentFailures lists the failed checks of the running analysis.
func (e *explanation) currentFailures() {
	cd := e.v.cd
	n := int(cd.Status.FailedChecks)
	if n == 0 {
		e.because("No check has failed so far (the revision is rolled back after %s).", plural(int(threshold(cd)), "failed step"))
		return
	}
	e.because("%s failed so far; at %d (analysis.threshold) the revision is rolled back:", plural(n, "step"), threshold(cd))
	for _, st := range failedSteps(cd.Status.Analysis, n, e.runStart(e.now), e.now) {
		for _, c := range st.checks {
			e.becauseItem("%s: %s (at %d%% canary weight).", ago(e.now, st.at), checkSentence(c), c.CanaryWeight)
		}
	}
}

// latestStep describes the checks of the newest analysis step.
func (e *explanation) latestStep() {
	cd := e.v.cd
	last := cd.Status.LastAnalysisTime
	if last == nil {
		return
	}
	var checks []flaggerv1beta1.CanaryCheckResult
	for _, c := range cd.Status.Analysis {
		if c.Time.Equal(last) {
			checks = append(checks, c)
		}
	}
	if len(checks) == 0 {
		return
	}
	e.because("The last step ran %s:", ago(e.now, last.Time))
	for _, c := range checks {
		e.becauseItem("%s: %s.", checkSentence(c), verdict(c))
	}
}

// gateHold explains a gate that held the last step, from the newest event.
func (e *explanation) gateHold(t flaggerv1beta1.HookType, prefix string) {
	last := e.v.cd.Status.LastAnalysisTime
	ev := e.newestEvent(prefix)
	if ev == nil || last == nil || eventTime(*ev).Before(last.Truncate(time.Second)) {
		return
	}
	e.because("The %s gate held the last step, so the weight stays at %d%% until it opens: %s", t, e.v.cd.Status.CanaryWeight, withoutHint(ev.Message))
	e.then("%s", e.gateHowTo(t))
	e.gated = true
}

// nextSteps says how many passing steps remain before promotion.
func (e *explanation) nextSteps() {
	cd, v := e.v.cd, e.v
	s := cd.Status
	var remaining int
	var path string
	switch v.strategy {
	case statemachine.CanaryRelease:
		steps := weightSteps(cd, s.CanaryWeight)
		remaining = len(steps) + 1
		if cd.Spec.Analysis.Mirror && s.Iterations == 0 {
			remaining++
		}
		path = "promotion at once"
		if len(steps) > 0 {
			path = fmt.Sprintf("%s, then promotion", weightsText(steps))
		}
	case statemachine.ABTesting:
		remaining = int(iterationsOf(v)-s.Iterations) + 1
		path = "the remaining iterations, then promotion"
	default:
		remaining = int(iterationsOf(v)-s.Iterations) + 2
		if s.CanaryWeight == 100 {
			remaining = 1
		}
		path = "the switch of all traffic to the canary, then promotion"
	}
	remaining = max(remaining, 1)
	due := e.now
	if s.LastAnalysisTime != nil {
		due = s.LastAnalysisTime.Add(intervalOf(cd))
	}
	lead := map[bool]string{true: "leads", false: "lead"}[remaining == 1]
	earliest := until(e.now, due.Add(time.Duration(remaining-1)*intervalOf(cd))) + " at the earliest"
	if e.gated {
		earliest += ", once the gate opens"
	}
	e.then("The next step is due %s (one every %s). %s %s to promotion (%s), %s.",
		until(e.now, due), intervalOf(cd), upperFirst(plural(remaining, "more passing step")), lead, path, earliest)
	if hasHooks(cd, flaggerv1beta1.ConfirmPromotionHook) {
		e.then("Before promotion the confirm-promotion webhooks are asked; while they say no the Canary waits in WaitingPromotion.")
	}
	if n := threshold(cd) - s.FailedChecks; n > 0 {
		e.then("%s: all traffic returns to the primary and the canary is scaled to zero.", upperFirst(moreFailures(n)))
	}
	if e.paused {
		return
	}
	e.then("To skip the remaining steps: kubectl sluice promote %s -n %s. To roll back now: kubectl sluice abort %s -n %s.",
		cd.Name, cd.Namespace, cd.Name, cd.Namespace)
}

func (e *explanation) waitingPromotion() {
	cd := e.v.cd
	e.summary = fmt.Sprintf("passed its analysis and has waited for the confirm-promotion gate for %s", age(e.now, cd.Status.LastTransitionTime.Time))
	e.because("%s", withoutHint(promotedMessage(cd)))
	e.because("The canary has %d%% of the traffic.", cd.Status.CanaryWeight)
	e.currentFailures()
	e.then("%s", e.gateHowTo(flaggerv1beta1.ConfirmPromotionHook))
	e.then("Sluice asks the gate again at every step (every %s) and promotes at the first yes. Meanwhile the checks keep running: %s.",
		intervalOf(cd), moreFailures(threshold(cd)-cd.Status.FailedChecks))
	if !e.paused {
		e.then("To promote without the gate: kubectl sluice promote %s -n %s --full", cd.Name, cd.Namespace)
	}
}

func (e *explanation) promoting() {
	cd, v := e.v.cd, e.v
	e.summary = fmt.Sprintf("is being promoted: %s is copied into %s", cd.Spec.TargetRef.Name, v.primary.name)
	e.because("%s", promotedMessage(cd))
	e.because("%s %s: %s.", v.primary.kind, v.primary.name, replicas(v.primary))
	if step := cd.Spec.Analysis.StepWeightPromotion; step > 0 && cd.Status.WaitingSince == nil {
		e.then("The traffic moves back to the primary %d%% every %s; the canary has %d%% now.", step, intervalOf(cd), cd.Status.CanaryWeight)
	}
	e.then("Once the primary is ready, it gets all the traffic, %s is scaled to zero and the Canary becomes Succeeded.", cd.Spec.TargetRef.Name)
	if t := e.deadlineText("past it the promotion fails: the phase becomes Failed and the canary keeps serving all traffic"); t != "" {
		e.then("%s", t)
	}
}

func (e *explanation) finalising() {
	cd := e.v.cd
	e.summary = "is finishing its promotion"
	e.because("%s", promotedMessage(cd))
	e.then("%s is scaled to zero and the Canary becomes Succeeded at Sluice's next look.", cd.Spec.TargetRef.Name)
}

func (e *explanation) terminating() {
	cd, v := e.v.cd, e.v
	if cd.Status.Phase == flaggerv1beta1.CanaryPhaseTerminated {
		e.summary = "was deleted and its target restored"
		e.because("%s", promotedMessage(cd))
		e.then("The Canary goes away once its finalizer is removed; %s serves the traffic again.", cd.Spec.TargetRef.Name)
		return
	}
	e.summary = fmt.Sprintf("is being deleted: Sluice restores %s first (revertOnDeletion)", cd.Spec.TargetRef.Name)
	e.because("%s %s: %s.", v.target.kind, v.target.name, replicas(v.target))
	e.then("Once %s is ready, the routing points at it again and the Canary goes away.", cd.Spec.TargetRef.Name)
	if t := e.deadlineText("past it the routing is restored anyway so that the deletion completes"); t != "" {
		e.then("%s", t)
	}
}

var (
	thresholdReached = regexp.MustCompile(`failed checks threshold reached (\d+)`)
	notReady         = regexp.MustCompile(`the canary is not ready after`)
)

func (e *explanation) failed() {
	cd := e.v.cd
	s := cd.Status
	msg := promotedMessage(cd)
	at := s.LastTransitionTime.Time
	e.summary = fmt.Sprintf("failed %s: the new revision was rolled back", ago(e.now, at))
	switch m := thresholdReached.FindStringSubmatch(msg); {
	case strings.HasPrefix(msg, "Promotion of"):
		e.summary = fmt.Sprintf("failed %s: its promotion did not complete", ago(e.now, at))
		e.because("%s", msg)
		e.then("The canary passed its analysis and keeps serving all traffic. Find out why %s did not become ready (kubectl describe %s %s -n %s); a new revision of %s starts a new analysis.",
			e.v.primary.name, strings.ToLower(e.v.primary.kind), e.v.primary.name, cd.Namespace, cd.Spec.TargetRef.Name)
		return
	case m != nil:
		n, _ := strconv.Atoi(m[1])
		e.because("%s of the analysis failed, which reached the threshold (analysis.threshold: %d):", upperFirst(plural(n, "step")), threshold(cd))
		for _, st := range failedSteps(s.Analysis, n, e.runStart(at), at) {
			for _, c := range st.checks {
				e.becauseItem("%s: %s (at %d%% canary weight).", ago(e.now, st.at), checkSentence(c), c.CanaryWeight)
			}
		}
	case notReady.MatchString(msg):
		e.because("%s", msg)
		e.because("The canary workload did not become ready within the progress deadline (%s, progressDeadlineSeconds).", deadlineOf(cd))
	default:
		e.because("%s", msg)
	}
	e.because("All traffic went back to %s-primary, which still runs revision %s, and %s was scaled to zero.",
		cd.Spec.TargetRef.Name, short(s.LastPromotedSpec), cd.Spec.TargetRef.Name)
	e.then("Nothing moves until %s %s changes: a fixed revision (a new pod template, or new data in a ConfigMap or Secret it uses) starts a new analysis.",
		cd.Spec.TargetRef.Kind, cd.Spec.TargetRef.Name)
	if !e.paused {
		e.then("To analyse the same revision again: kubectl sluice retry %s -n %s", cd.Name, cd.Namespace)
	}
}

// moreFailures says how many more failed steps roll the revision back.
func moreFailures(n int32) string {
	if n == 1 {
		return "one more failed step rolls the revision back"
	}
	return fmt.Sprintf("%d more failed steps roll the revision back", n)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// withoutHint drops the controller's "; open it with: curl ..." from a gate
// message; explain says how to open the gate on its own line.
func withoutHint(msg string) string {
	i := strings.Index(msg, "; open it with:")
	if i < 0 {
		return msg
	}
	rest := ""
	if j := strings.LastIndex(msg, " (waiting for "); j > i {
		rest = msg[j:]
	}
	return msg[:i] + rest
}

// short names a revision for reading.
func short(rev string) string {
	if rev == "" {
		return "(unknown)"
	}
	return rev
}
