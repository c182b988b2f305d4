package statemachine

import (
	"strings"
	"testing"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

func withRequest(in Input, kind, id string) Input {
	in.Request = &Request{Kind: kind, ID: id, By: "alice", Reason: "checked by hand"}
	return in
}

func TestDecide_Requests(t *testing.T) {
	failed := flaggerv1beta1.CanaryStatus{Phase: flaggerv1beta1.CanaryPhaseFailed, LastAppliedSpec: "rev2", LastPromotedSpec: "rev1"}
	tests := []struct {
		name      string
		in        Input
		phase     flaggerv1beta1.CanaryPhase
		outcome   flaggerv1beta1.RequestOutcome
		event     string
		routes    *Routes
		wantApply string // lastAppliedSpec after the decision
	}{
		{"promote --full during the analysis promotes now",
			withRequest(input(canarySpec(withHook(flaggerv1beta1.ConfirmPromotionHook)), progressing(20, 1), obs("rev2")), RequestPromoteFull, "r1"),
			flaggerv1beta1.CanaryPhasePromoting, flaggerv1beta1.RequestHonoured, "skipping the remaining steps and gates (promote-full requested by alice: checked by hand)", nil, "rev2"},
		{"promote makes the next step the last",
			withRequest(input(canarySpec(), progressing(20, 1, func(s *flaggerv1beta1.CanaryStatus) { s.LastAnalysisTime = ago(0) }), obs("rev2")), RequestPromote, "r2"),
			flaggerv1beta1.CanaryPhaseProgressing, flaggerv1beta1.RequestHonoured, "the next step is the last", &Routes{Primary: 80, Canary: 20}, "rev2"},
		{"promote in WaitingPromotion is refused: only the gate is left",
			withRequest(input(canarySpec(withHook(flaggerv1beta1.ConfirmPromotionHook)), progressing(40, 2, func(s *flaggerv1beta1.CanaryStatus) {
				s.Phase, s.LastAnalysisTime = flaggerv1beta1.CanaryPhaseWaitingPromotion, ago(0)
			}), obs("rev2")), RequestPromote, "r3"),
			flaggerv1beta1.CanaryPhaseWaitingPromotion, flaggerv1beta1.RequestRefused, "open the gate, or promote --full", nil, "rev2"},
		{"promote of a Succeeded canary is refused",
			withRequest(input(canarySpec(), idle(flaggerv1beta1.CanaryPhaseSucceeded), obs("rev1")), RequestPromote, "r4"),
			flaggerv1beta1.CanaryPhaseSucceeded, flaggerv1beta1.RequestRefused, "refused: podinfo is Succeeded", nil, "rev1"},
		{"abort rolls back now",
			withRequest(input(canarySpec(), progressing(40, 2, func(s *flaggerv1beta1.CanaryStatus) { s.LastAnalysisTime = ago(0) }), obs("rev2")), RequestAbort, "r5"),
			flaggerv1beta1.CanaryPhaseFailed, flaggerv1beta1.RequestHonoured, "Rolling back podinfo: aborted by alice: checked by hand", &Routes{Primary: 100}, "rev2"},
		{"abort outside an analysis is refused",
			withRequest(input(canarySpec(), failed, obs("rev2")), RequestAbort, "r6"),
			flaggerv1beta1.CanaryPhaseFailed, flaggerv1beta1.RequestRefused, "no analysis to abort", nil, "rev2"},
		{"retry analyses the failed revision again",
			withRequest(input(canarySpec(), failed, obs("rev2")), RequestRetry, "r7"),
			flaggerv1beta1.CanaryPhaseProgressing, flaggerv1beta1.RequestHonoured, "Retry of the failed revision", nil, "rev2"},
		{"retry when the target runs the promoted revision again is refused",
			withRequest(input(canarySpec(), failed, obs("rev1")), RequestRetry, "r8"),
			flaggerv1beta1.CanaryPhaseFailed, flaggerv1beta1.RequestRefused, "nothing to retry", nil, "rev2"},
		{"an unknown request is refused",
			withRequest(input(canarySpec(), progressing(20, 1, func(s *flaggerv1beta1.CanaryStatus) { s.LastAnalysisTime = ago(0) }), obs("rev2")), "pause", "r9"),
			flaggerv1beta1.CanaryPhaseProgressing, flaggerv1beta1.RequestRefused, `unknown request "pause"`, nil, "rev2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.in)
			s := d.Status
			if s.Phase != tt.phase || s.LastRequest == nil || s.LastRequest.Outcome != tt.outcome || s.LastRequest.ID != tt.in.Request.ID || !d.ClearRequest {
				t.Fatalf("phase %s lastRequest %+v clear %v; want %s, %s", s.Phase, s.LastRequest, d.ClearRequest, tt.phase, tt.outcome)
			}
			if !hasEvent(d, tt.event) {
				t.Errorf("events %+v; want one with %q", d.Events, tt.event)
			}
			if tt.routes != nil {
				if r := routesOf(d.Actions); r == nil || *r != *tt.routes {
					t.Errorf("routes %+v, want %+v", r, *tt.routes)
				}
			}
			if s.LastAppliedSpec != tt.wantApply {
				t.Errorf("lastAppliedSpec = %q, want %q", s.LastAppliedSpec, tt.wantApply)
			}
			// The same request again (its annotations not removed yet after
			// a crash) is not taken twice.
			again := tt.in
			again.Status = s
			if d2 := Decide(again); !d2.ClearRequest || strings.Contains(eventsText(d2), tt.in.Request.ID) || d2.Status.LastRequest.Time != s.LastRequest.Time {
				t.Errorf("the request was taken again: %+v", d2.Events)
			}
		})
	}
}

func TestDecide_ARequestedPromotionAsksTheGateThenPromotes(t *testing.T) {
	spec := canarySpec(withHook(flaggerv1beta1.ConfirmPromotionHook))
	in := withRequest(input(spec, progressing(20, 1, func(s *flaggerv1beta1.CanaryStatus) { s.LastAnalysisTime = ago(0) }), obs("rev2")), RequestPromote, "p1")
	taken := Decide(in).Status
	// The next step is due: its checks pass and the gate is asked.
	next := input(spec, taken, obs("rev2"))
	next.Now = t0.Add(2 * 60e9)
	if due := Plan(next); !due.ConfirmPromotion {
		t.Fatalf("Plan = %+v, want the confirm-promotion gate asked at the step a promotion request made the last", due)
	}
	next.Results = gates(flaggerv1beta1.ConfirmPromotionHook, false)
	if d := Decide(next); d.Status.Phase != flaggerv1beta1.CanaryPhaseWaitingPromotion || d.Status.CanaryWeight != 20 {
		t.Fatalf("closed gate: phase %s weight %d, want WaitingPromotion at 20%%", d.Status.Phase, d.Status.CanaryWeight)
	}
	next.Results = gates(flaggerv1beta1.ConfirmPromotionHook, true)
	if d := Decide(next); d.Status.Phase != flaggerv1beta1.CanaryPhasePromoting {
		t.Fatalf("open gate: phase %s, want Promoting", d.Status.Phase)
	}
	// A request taken for another revision does not promote this one.
	other := taken.DeepCopy()
	other.LastAppliedSpec = "rev3"
	if promotionRequested(*other) {
		t.Error("a promotion requested for rev2 applies to rev3")
	}
}

func eventsText(d Decision) string {
	var b strings.Builder
	for _, e := range d.Events {
		b.WriteString(e.Message + "\n")
	}
	return b.String()
}
