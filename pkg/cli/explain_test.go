package cli

import (
	"testing"
)

// TestExplain_SaysWhyAndWhatNext explains Canaries in the states the
// controller really leaves them in (played through its decision function),
// against golden files.
func TestExplain_SaysWhyAndWhatNext(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, scenario string
		change         func(p *player)
	}{
		{name: "failed-threshold", scenario: "failed-threshold"},
		{name: "failed-canary-deadline", scenario: "failed-canary-deadline"},
		{name: "progressing-failed-check", scenario: "progressing-failed-check"},
		{name: "progressing-canary-not-ready", scenario: "progressing-canary-not-ready"},
		{name: "progressing-traffic-gate", scenario: "progressing-traffic-gate"},
		{name: "waiting-promotion", scenario: "waiting-promotion"},
		{name: "waiting-slot", scenario: "waiting-slot"},
		{name: "waiting-confirm-rollout", scenario: "waiting-confirm-rollout"},
		{name: "invalid-target", scenario: "invalid-target"},
		{name: "invalid-metrics", scenario: "invalid-metrics"},
		{name: "succeeded", scenario: "succeeded"},
		{name: "promoting", scenario: "promoting"},
		{name: "initializing", scenario: "initializing"},
		{name: "paused", scenario: "progressing-failed-check", change: func(p *player) { p.spec.Suspend = true }},
		{name: "pending-request", scenario: "waiting-promotion", change: func(p *player) {
			p.annotations = map[string]string{
				annotationRequest: "promote-full", annotationRequestID: "2026-07-01T11:59:58.123456789Z-a1b2c3",
				annotationRequestReason: "verified by hand", annotationRequestBy: "jane@example.com",
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t, "explain-"+tc.name)
			p := scenarios[tc.scenario](ns)
			if tc.change != nil {
				tc.change(p)
			}
			rebase(p)
			write(t, p)
			r := sluice(t, "explain", "podinfo", "-n", ns).ok(t)
			golden(t, "explain-"+tc.name, r.out)
		})
	}
}
