//go:build e2e

package chaos

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// TestCheckRollout_FlagsEachViolation feeds the campaign's checker made-up
// histories, one per broken guarantee, so that a checker that cannot see a
// violation fails here rather than passing every campaign.
func TestCheckRollout_FlagsEachViolation(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	l := &lane{idx: 1, ns: "chaos-1", strategy: strategyCanary}
	const img = image + "1.1.0"
	obs := func(s int, phase string, weight, iterations, failed int32, lastAnalysis int) observation {
		o := observation{at: at(s), phase: phase, weight: weight, iterations: iterations, failed: failed, applied: "rev1"}
		if lastAnalysis >= 0 {
			o.lastAnalysis = at(lastAnalysis)
		}
		return o
	}
	healthyRun := []observation{
		obs(1, "Progressing", 0, 0, 0, -1),
		obs(2, "Progressing", 25, 1, 0, 2),
		obs(12, "Progressing", 50, 2, 0, 12),
		obs(22, "Promoting", 50, 2, 0, 22),
		obs(24, "Finalising", 0, 2, 0, 22),
		obs(26, "Succeeded", 0, 0, 0, -1),
	}
	promoted := []templateChange{{at: at(0), image: image + "1.0.0"}, {at: at(23), image: img}}
	failedWith := func(c flaggerv1beta1.CanaryCheckResult) []observation {
		o := obs(12, "Progressing", 25, 1, 1, 12)
		o.checks = []flaggerv1beta1.CanaryCheckResult{c}
		return []observation{obs(2, "Progressing", 25, 1, 0, 2), o, obs(45, "Failed", 0, 0, 0, -1)}
	}
	outage := fault{kind: faultPrometheus, at: at(5), until: at(20)}
	for _, tc := range []struct {
		name      string
		faulty    bool
		phase     string
		obs       []observation
		templates []templateChange
		faults    []fault
		events    []corev1.Event
		want      string // a violation containing this, or "" for none
	}{
		{name: "a clean promotion", phase: "Succeeded", obs: healthyRun, templates: promoted},
		{name: "a faulty revision promoted", faulty: true, phase: "Succeeded", obs: healthyRun, templates: promoted, want: "faulty revision"},
		{name: "promoted twice", phase: "Succeeded", obs: healthyRun,
			templates: append(append([]templateChange{}, promoted...), templateChange{at: at(25), image: img}), want: "2 times"},
		{name: "Succeeded without a promotion", phase: "Succeeded", obs: healthyRun, templates: promoted[:1], want: "0 times"},
		{name: "stuck", obs: healthyRun[:2], templates: promoted[:1], want: "stuck"},
		{name: "iterations went back", phase: "Succeeded", templates: promoted, want: "iterations 1 after 2",
			obs: []observation{obs(2, "Progressing", 25, 2, 0, 2), obs(12, "Progressing", 25, 1, 0, 12), obs(26, "Succeeded", 0, 0, 0, -1)}},
		{name: "a restart that an event explains", phase: "Succeeded", templates: promoted,
			events: []corev1.Event{{Message: "New revision detected during the analysis! Restarting the analysis of podinfo",
				FirstTimestamp: metav1.NewTime(at(11)), LastTimestamp: metav1.NewTime(at(11))}},
			obs: []observation{obs(2, "Progressing", 25, 2, 0, 2), obs(12, "Progressing", 25, 1, 0, 12), obs(26, "Succeeded", 0, 0, 0, -1)}},
		{name: "phase went back", phase: "Succeeded", templates: promoted, want: "phase Progressing after Promoting",
			obs: []observation{obs(2, "Promoting", 50, 2, 0, 2), obs(12, "Progressing", 50, 2, 0, 12), obs(26, "Succeeded", 0, 0, 0, -1)}},
		{name: "steps faster than the interval", phase: "Succeeded", templates: promoted, want: "apart",
			obs: []observation{obs(2, "Progressing", 25, 1, 0, 2), obs(6, "Progressing", 50, 2, 0, 6), obs(26, "Succeeded", 0, 0, 0, -1)}},
		{name: "a healthy revision failed on a measurement", phase: "Failed", templates: promoted[:1], faults: []fault{outage}, want: "on measurements",
			obs: failedWith(flaggerv1beta1.CanaryCheckResult{Time: metav1.NewTime(at(12)), Kind: flaggerv1beta1.CheckMetric,
				Name: "request-success-rate", Value: ptr.To(40.0), Message: "40 is below the minimum 99"})},
		{name: "a healthy revision failed without a fault", phase: "Failed", templates: promoted[:1], want: "no fault",
			obs: failedWith(flaggerv1beta1.CanaryCheckResult{Time: metav1.NewTime(at(12)), Kind: flaggerv1beta1.CheckMetric,
				Name: "request-success-rate", Message: "connection refused"})},
		{name: "a healthy revision failed by an outage", phase: "Failed", templates: promoted[:1], faults: []fault{outage},
			obs: failedWith(flaggerv1beta1.CanaryCheckResult{Time: metav1.NewTime(at(12)), Kind: flaggerv1beta1.CheckMetric,
				Name: "request-success-rate", Message: "connection refused"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &rollout{lane: l, n: 1, image: img, faulty: tc.faulty, released: at(0), applied: "rev1", phase: tc.phase}
			if tc.phase == "" {
				r.stuck = "not ended"
			} else {
				r.ended = tc.obs[len(tc.obs)-1].at
			}
			o := checkRollout(r, &rollout{released: at(60)}, tc.obs, tc.templates, tc.events, tc.faults)
			got := strings.Join(o.violations, "; ")
			switch {
			case tc.want == "" && got != "":
				t.Errorf("violations %q, want none", got)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Errorf("violations %q, want one saying %q", got, tc.want)
			}
		})
	}
}
