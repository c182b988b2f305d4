package statemachine

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
)

// The rules of issue 16 ("never promote what was not analysed, never pass
// what was not checked") that are pure decisions.

func heldResults() Results {
	return Results{Checks: []flaggerv1beta1.CanaryCheckResult{{Kind: flaggerv1beta1.CheckMetric, Name: "rps", NoData: true, Held: true}}}
}

func TestDecide_HoldCountsTowardsTheDeadline(t *testing.T) {
	tests := []struct {
		name      string
		since     *metav1.Time
		wantPhase flaggerv1beta1.CanaryPhase
		wantEvent string
	}{
		{"a first hold starts the clock", nil, flaggerv1beta1.CanaryPhaseProgressing, "the release fails at 2026-11-25T12:10:00Z"},
		{"a hold within the deadline waits", ago(5 * time.Minute), flaggerv1beta1.CanaryPhaseProgressing, "has no data (onNoData: hold)"},
		{"a hold past the deadline rolls back", ago(11 * time.Minute), flaggerv1beta1.CanaryPhaseFailed, "has had no data for longer than the progress deadline (10m0s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(canarySpec(), progressing(20, 1, func(s *flaggerv1beta1.CanaryStatus) { s.WaitingSince = tt.since }), obs("rev2"))
			in.Results = heldResults()
			d := Decide(in)
			if d.Status.Phase != tt.wantPhase || !hasEvent(d, tt.wantEvent) {
				t.Errorf("phase %s, events %+v; want %s and an event with %q", d.Status.Phase, d.Events, tt.wantPhase, tt.wantEvent)
			}
			if tt.wantPhase == flaggerv1beta1.CanaryPhaseFailed {
				if r := routesOf(d.Actions); r == nil || *r != (Routes{Primary: 100}) || !slices.Contains(kinds(d.Actions), ScaleTargetToZero) {
					t.Errorf("actions %v routes %+v; want all traffic back on the primary and the canary parked", kinds(d.Actions), r)
				}
				if !slices.ContainsFunc(d.Events, func(e Event) bool {
					return e.Alert != nil && strings.HasPrefix(e.Alert.Text, "Progress deadline exceeded")
				}) {
					t.Errorf("no deadline alert in %+v", d.Events)
				}
			} else if d.Status.WaitingSince == nil || d.RequeueAfter == 0 {
				t.Errorf("waitingSince %v, requeue %s; want the clock kept and a wake-up at the deadline", d.Status.WaitingSince, d.RequeueAfter)
			}
		})
	}
	// A ready canary between held steps does not reset the clock.
	in := input(canarySpec(), progressing(20, 1, func(s *flaggerv1beta1.CanaryStatus) {
		s.WaitingSince, s.LastAnalysisTime = ago(5*time.Minute), ago(10*time.Second)
	}), obs("rev2"))
	if d := Decide(in); d.Status.WaitingSince == nil || !d.Status.WaitingSince.Equal(ago(5*time.Minute)) {
		t.Errorf("waitingSince = %v after a reconcile between held steps, want it kept", d.Status.WaitingSince)
	}
}

func TestDecide_AnUnreadyPrimaryHaltsTheAnalysis(t *testing.T) {
	unreadyPrimary := func(o Observation) Observation { o.Primary = notReady("0 of 2 available"); return o }
	in := input(canarySpec(), progressing(20, 1), unreadyPrimary(obs("rev2")))
	if due := Plan(in); due.Any() {
		t.Errorf("Plan = %+v with an unready primary, want nothing due", due)
	}
	in.Results = passed("request-success-rate")
	d := Decide(in)
	if d.Status.Phase != flaggerv1beta1.CanaryPhaseProgressing || d.Status.CanaryWeight != 20 || d.Status.Iterations != 1 || d.Status.WaitingSince == nil {
		t.Errorf("status %s weight %d iterations %d waitingSince %v; want the step held and the wait recorded",
			d.Status.Phase, d.Status.CanaryWeight, d.Status.Iterations, d.Status.WaitingSince)
	}
	late := input(canarySpec(), progressing(20, 1, func(s *flaggerv1beta1.CanaryStatus) { s.WaitingSince = ago(11 * time.Minute) }), unreadyPrimary(obs("rev2")))
	d = Decide(late)
	if d.Status.Phase != flaggerv1beta1.CanaryPhaseFailed || !hasEvent(d, "the primary is not ready after 10m0s: 0 of 2 available") {
		t.Errorf("phase %s events %+v; want a rollback naming the primary", d.Status.Phase, d.Events)
	}
}

func TestDecide_AReleaseThatBecomesInvalidIsRolledBack(t *testing.T) {
	bad := &problem.Problem{Reason: problem.UnsupportedProvider, Message: `traffic provider "istioo" is not supported`}
	routable := func(o Observation) Observation { o.Invalid, o.Routable = bad, true; return o }
	for _, phase := range []flaggerv1beta1.CanaryPhase{flaggerv1beta1.CanaryPhaseProgressing, flaggerv1beta1.CanaryPhaseWaitingPromotion, flaggerv1beta1.CanaryPhasePromoting} {
		t.Run(string(phase), func(t *testing.T) {
			in := input(canarySpec(), progressing(40, 2, func(s *flaggerv1beta1.CanaryStatus) { s.Phase = phase }), routable(obs("rev2")))
			d := Decide(in)
			s := d.Status
			if s.Phase != flaggerv1beta1.CanaryPhaseFailed || s.CanaryWeight != 0 || s.LastAppliedSpec != "" {
				t.Errorf("phase %s weight %d lastAppliedSpec %q; want Failed, 0 and the revision to be analysed again", s.Phase, s.CanaryWeight, s.LastAppliedSpec)
			}
			if !slices.Equal(kinds(d.Actions), []ActionKind{SetRoutes, ScaleTargetToZero, RunPostRollout}) || *routesOf(d.Actions) != (Routes{Primary: 100}) {
				t.Errorf("actions %v; want the traffic back on the primary, the canary parked and the post-rollout hooks", kinds(d.Actions))
			}
			if c := findCondition(s.Conditions, flaggerv1beta1.ValidType); c == nil || c.Reason != string(problem.UnsupportedProvider) {
				t.Errorf("Valid condition = %+v", c)
			}
		})
	}
	// Nothing can be routed: the split is reported, not pretended undone.
	in := input(canarySpec(), progressing(40, 2), Observation{Invalid: bad, Revision: "rev2"})
	d := Decide(in)
	if d.Status.Phase != flaggerv1beta1.CanaryPhaseProgressing || len(d.Actions) != 0 || d.RequeueAfter != time.Minute {
		t.Errorf("phase %s actions %v requeue %s; want the release kept, nothing touched, a look again each interval",
			d.Status.Phase, kinds(d.Actions), d.RequeueAfter)
	}
	// Once valid again, the revision that was aborted is analysed again.
	aborted := Decide(input(canarySpec(), progressing(40, 2), routable(obs("rev2")))).Status
	again := Decide(input(canarySpec(), aborted, obs("rev2")))
	if again.Status.Phase != flaggerv1beta1.CanaryPhaseProgressing || again.Status.LastAppliedSpec != "rev2" {
		t.Errorf("a valid Canary after an aborted release: phase %s lastAppliedSpec %q; want the analysis restarted",
			again.Status.Phase, again.Status.LastAppliedSpec)
	}
	// An idle Canary that becomes invalid is only reported.
	idleBad := Decide(input(canarySpec(), idle(flaggerv1beta1.CanaryPhaseSucceeded), routable(obs("rev1"))))
	if idleBad.Status.Phase != flaggerv1beta1.CanaryPhaseSucceeded || len(idleBad.Actions) != 0 {
		t.Errorf("idle invalid Canary: phase %s actions %v", idleBad.Status.Phase, kinds(idleBad.Actions))
	}
}

func TestPlan_ClaimsAStepWhoseWebhooksAreCalledOnce(t *testing.T) {
	spec := canarySpec(withHook(flaggerv1beta1.RolloutHook))
	in := input(spec, progressing(20, 1), obs("rev2"))
	due := Plan(in)
	if !due.Analysis || !due.Claim {
		t.Fatalf("Plan = %+v, want the analysis due and claimed (it calls a webhook)", due)
	}
	claimed := Claim(in)
	if claimed.StepStartedAt == nil || !claimed.StepStartedAt.Time.Equal(t0) {
		t.Fatalf("Claim gave stepStartedAt %v, want now", claimed.StepStartedAt)
	}
	// The outcome of the claimed step clears the claim.
	in.Status = claimed
	in.Results = passed("rollout")
	if d := Decide(in); d.Status.StepStartedAt != nil || d.Status.CanaryWeight != 40 {
		t.Errorf("after the step: stepStartedAt %v weight %d; want the claim cleared and the step taken", d.Status.StepStartedAt, d.Status.CanaryWeight)
	}
	// A step without webhooks needs no claim: its metrics can be asked again.
	if due := Plan(input(canarySpec(), progressing(20, 1), obs("rev2"))); due.Claim {
		t.Errorf("a step without webhooks is claimed: %+v", due)
	}

	// A claim without an outcome (a crash, a conflicting write) is never run
	// again: the step is recorded as interrupted and the next one waits an
	// interval from when it started.
	crashed := input(spec, progressing(20, 1, func(s *flaggerv1beta1.CanaryStatus) { s.StepStartedAt = ago(5 * time.Second) }), obs("rev2"))
	if due := Plan(crashed); due.Any() {
		t.Fatalf("Plan after an interrupted step = %+v, want nothing run again", due)
	}
	d := Decide(crashed)
	s := d.Status
	if s.StepStartedAt != nil || s.LastAnalysisTime == nil || !s.LastAnalysisTime.Equal(ago(5*time.Second)) || s.Iterations != 1 || s.FailedChecks != 0 {
		t.Errorf("status %+v; want the claim cleared, the step neither passed nor failed, the next one an interval after it began", s)
	}
	if !hasEvent(d, "was interrupted before its outcome was recorded") || d.RequeueAfter != 55*time.Second {
		t.Errorf("events %+v requeue %s", d.Events, d.RequeueAfter)
	}
}

// alertTexts plays a release through the model cluster and returns the
// alerts it sends, in order.
func alertTexts(t *testing.T, spec flaggerv1beta1.CanarySpec, w *world) ([]string, []flaggerv1beta1.AlertSeverity) {
	t.Helper()
	cfg := Config{MinInterval: 10 * time.Second, SplitsTraffic: true}
	var texts []string
	var severities []flaggerv1beta1.AlertSeverity
	w.onDecision = func(d Decision) {
		for _, e := range d.Events {
			if e.Alert != nil {
				texts = append(texts, e.Alert.Text)
				severities = append(severities, e.Alert.Severity)
			}
		}
	}
	status, _ := live(t, spec, cfg, w, flaggerv1beta1.CanaryStatus{}, func(s flaggerv1beta1.CanaryStatus) bool {
		return s.Phase == flaggerv1beta1.CanaryPhaseInitialized
	})
	w.targetRev = "rev2"
	live(t, spec, cfg, w, status, rests)
	return texts, severities
}

func TestDecide_AlertsAreFlaggersMilestones(t *testing.T) {
	spec := canarySpec() // 20% steps to 40%: a release of several steps
	texts, sev := alertTexts(t, spec, &world{targetRev: "rev1", targetReplicas: 2})
	want := []string{
		"New Deployment detected, initialization completed.",
		"New revision detected, progressing canary analysis.",
		"Canary analysis completed successfully, promotion finished.",
	}
	if !slices.Equal(texts, want) || !slices.Equal(sev, []flaggerv1beta1.AlertSeverity{"info", "info", "info"}) {
		t.Errorf("a healthy release alerted %q (%v), want %q, all info", texts, sev, want)
	}

	texts, sev = alertTexts(t, spec, &world{targetRev: "rev1", targetReplicas: 2, failMetricsFrom: 1})
	want = []string{
		"New Deployment detected, initialization completed.",
		"New revision detected, progressing canary analysis.",
		"Failed checks threshold reached 2",
	}
	if !slices.Equal(texts, want) || sev[2] != flaggerv1beta1.SeverityError {
		t.Errorf("a failed release alerted %q (%v), want %q, the last an error", texts, sev, want)
	}

	gated := canarySpec(withHook(flaggerv1beta1.ConfirmPromotionHook))
	in := input(gated, progressing(40, 2), obs("rev2"))
	in.Results = gates(flaggerv1beta1.ConfirmPromotionHook, false)
	d := Decide(in)
	if len(d.Events) != 1 || d.Events[0].Alert == nil || d.Events[0].Alert.Text != "Canary promotion is waiting for approval." || d.Events[0].Alert.Severity != flaggerv1beta1.SeverityWarn {
		t.Errorf("a closed promotion gate: events %+v, want one warn alert", d.Events)
	}
	in.Status, in.Now = d.Status, t0.Add(time.Minute)
	if again := Decide(in); slices.ContainsFunc(again.Events, func(e Event) bool { return e.Alert != nil }) {
		t.Errorf("the gate alerted again while it stayed closed: %+v", again.Events)
	}
}

func TestDecide_ADueStepIsNeverTakenOnChecksThatDidNotRun(t *testing.T) {
	in := input(canarySpec(), progressing(20, 1), obs("rev2"))
	in.Results = Results{} // Plan said the step is due; its checks did not run
	d := Decide(in)
	if d.Status.CanaryWeight != 20 || d.Status.Iterations != 1 || d.Status.LastAnalysisTime.Equal(metav1ptr(t0)) {
		t.Errorf("weight %d iterations %d lastAnalysisTime %v; want the step not taken", d.Status.CanaryWeight, d.Status.Iterations, d.Status.LastAnalysisTime)
	}
}

func metav1ptr(t time.Time) *metav1.Time { m := metav1.NewTime(t); return &m }

func TestDecide_ACriticalFailureRollsBackAtOnce(t *testing.T) {
	in := input(canarySpec(func(s *flaggerv1beta1.CanarySpec) { s.Analysis.Threshold = 5 }), progressing(20, 1), obs("rev2"))
	in.Results = Results{Checks: []flaggerv1beta1.CanaryCheckResult{{Kind: flaggerv1beta1.CheckMetric, Name: "latency", Critical: true,
		Message: "the canary is higher than the primary; roll back now"}}}
	d := Decide(in)
	if d.Status.Phase != flaggerv1beta1.CanaryPhaseFailed || !hasEvent(d, "critical metric latency failed") {
		t.Errorf("phase %s events %+v; want a rollback at the first critical failure despite threshold 5", d.Status.Phase, d.Events)
	}
	dry := in
	dry.Results.Checks = []flaggerv1beta1.CanaryCheckResult{{Kind: flaggerv1beta1.CheckMetric, Name: "latency", Critical: true, DryRun: true}}
	if d := Decide(dry); d.Status.Phase != flaggerv1beta1.CanaryPhaseProgressing {
		t.Errorf("a critical dry-run failure gave phase %s, want the release to go on", d.Status.Phase)
	}
}

func TestDecide_ARevisionFlaggerPromotedOrFailedIsAdoptedWithoutAnalysis(t *testing.T) {
	flagger := func(phase flaggerv1beta1.CanaryPhase) flaggerv1beta1.CanaryStatus {
		return flaggerv1beta1.CanaryStatus{Phase: phase, LastAppliedSpec: "5c9d7b4f6", LastPromotedSpec: "5c9d7b4f6"}
	}
	runsTarget := func(o Observation) Observation { o.Primary.Revision = o.Revision; return o }
	for _, phase := range []flaggerv1beta1.CanaryPhase{flaggerv1beta1.CanaryPhaseSucceeded, flaggerv1beta1.CanaryPhaseInitialized} {
		d := Decide(input(canarySpec(), flagger(phase), runsTarget(obs("0123456789abcdef"))))
		s := d.Status
		if s.Phase != phase || s.LastAppliedSpec != "0123456789abcdef" || s.LastPromotedSpec != "0123456789abcdef" || !hasEvent(d, "adopted without a new analysis") {
			t.Errorf("%s: phase %s applied %q promoted %q events %+v; want the revision adopted, no analysis", phase, s.Phase, s.LastAppliedSpec, s.LastPromotedSpec, d.Events)
		}
		if slices.Contains(kinds(d.Actions), ScaleTargetUp) || slices.Contains(kinds(d.Actions), Promote) {
			t.Errorf("%s: actions %v; an adopted revision scales nothing up and promotes nothing", phase, kinds(d.Actions))
		}
	}
	// Flagger failed the revision the target holds: not analysed again.
	failed := flagger(flaggerv1beta1.CanaryPhaseFailed)
	failed.LastAppliedSpec = "98dd5b6c"
	d := Decide(input(canarySpec(), failed, obs("0123456789abcdef")))
	if d.Status.Phase != flaggerv1beta1.CanaryPhaseFailed || d.Status.LastAppliedSpec != "0123456789abcdef" || !hasEvent(d, "failed its analysis before Sluice took over") {
		t.Errorf("phase %s applied %q events %+v; want the failed revision adopted as failed", d.Status.Phase, d.Status.LastAppliedSpec, d.Events)
	}
	// A primary that does not run the target's revision: a new analysis.
	d = Decide(input(canarySpec(), flagger(flaggerv1beta1.CanaryPhaseSucceeded), obs("0123456789abcdef")))
	if d.Status.Phase != flaggerv1beta1.CanaryPhaseProgressing {
		t.Errorf("a target that differs from the primary gave phase %s, want an analysis", d.Status.Phase)
	}
	for _, h := range []string{"5c9d7b4f6", "98dd5b6c"} {
		if !isFlaggerHash(h) {
			t.Errorf("isFlaggerHash(%q) = false", h)
		}
	}
	for _, h := range []string{"0123456789abcdef", "rev2", "bad", ""} {
		if isFlaggerHash(h) {
			t.Errorf("isFlaggerHash(%q) = true", h)
		}
	}
}
