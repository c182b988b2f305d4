//go:build e2e

package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// outcome is what the checks found for one rollout.
type outcome struct {
	r *rollout
	// promotions counts the primary's template changes to the revision.
	promotions int
	// byFaults is set for a healthy revision that was rolled back while
	// only injected faults failed its checks.
	byFaults bool
	// lostStatus, fastSteps and violations describe what went wrong.
	lostStatus bool
	fastSteps  bool
	violations []string
	faults     []fault
}

// tally is the campaign's summary.
type tally struct {
	healthy, faulty                int
	promoted, rolledBack, byFaults int
	faultyPromoted, stuck          int
	doublePromotions, lostStatus   int
	fastSteps, violations          int
}

// checkRollout checks the guarantees for one rollout against the recorded
// history of its lane: obs (every Canary status seen), templates (every
// pod template of the primary), events and the faults injected meanwhile.
func checkRollout(r *rollout, next *rollout, obs []observation, templates []templateChange, events []corev1.Event, faults []fault) outcome {
	out := outcome{r: r}
	bad := func(format string, args ...any) {
		out.violations = append(out.violations, fmt.Sprintf(format, args...))
	}
	end := time.Now()
	if next != nil && !next.released.IsZero() {
		end = next.released
	}
	for _, f := range faults {
		if !r.released.IsZero() && f.until.After(r.released.Add(-analysisInterval)) && f.at.Before(end) {
			out.faults = append(out.faults, f)
		}
	}
	for _, t := range templates {
		if t.image == r.image {
			out.promotions++
		}
	}

	// 1. A faulty revision is never promoted; a healthy one at most once,
	// and exactly once when it Succeeded.
	switch {
	case r.faulty && out.promotions > 0:
		bad("the faulty revision %s reached the primary (%d template changes)", r.image, out.promotions)
	case out.promotions > 1:
		bad("the primary's template changed to %s %d times", r.image, out.promotions)
	case r.phase == string(flaggerv1beta1.CanaryPhaseSucceeded) && out.promotions != 1:
		bad("Succeeded, but the primary's template changed to %s %d times", r.image, out.promotions)
	}

	// 2. Every rollout ends.
	if r.phase == "" {
		bad("stuck: %s", r.stuck)
	}

	// The statuses of this rollout's analysis.
	var mine []observation
	for _, o := range obs {
		if r.applied != "" && o.applied == r.applied && !o.at.Before(r.released) && !o.at.After(end) {
			mine = append(mine, o)
		}
	}

	// A healthy revision is rolled back only when injected faults failed
	// its checks: no measurement of it may have failed.
	if !r.faulty && r.phase == string(flaggerv1beta1.CanaryPhaseFailed) && out.promotions == 0 {
		measured := measuredFailures(mine)
		switch {
		case len(measured) > 0:
			bad("the healthy revision was rolled back on measurements: %s", strings.Join(measured, "; "))
		case len(out.faults) == 0:
			bad("the healthy revision was rolled back with no fault injected during its rollout: %s", lastMessage(mine))
		default:
			out.byFaults = true
		}
	}

	// 3. Status is never lost or rolled back within the rollout.
	restarts := restartEvents(events)
	for i := 1; i < len(mine); i++ {
		a, b := mine[i-1], mine[i]
		if why := wentBack(a, b); why != "" && !restartedBetween(restarts, a.at, b.at) {
			out.lostStatus = true
			bad("status went back at %s: %s", b.at.Format("15:04:05.000"), why)
		}
	}

	// 4. Steps never come faster than the analysis interval.
	var steps []time.Time
	for _, o := range mine {
		if !o.lastAnalysis.IsZero() && (len(steps) == 0 || !o.lastAnalysis.Equal(steps[len(steps)-1])) {
			steps = append(steps, o.lastAnalysis)
		}
	}
	for i := 1; i < len(steps); i++ {
		// metav1.Time keeps whole seconds.
		if gap := steps[i].Sub(steps[i-1]); gap < analysisInterval-time.Second {
			out.fastSteps = true
			bad("two analysis steps %s apart (interval %s): %s and %s", gap, analysisInterval,
				steps[i-1].Format("15:04:05"), steps[i].Format("15:04:05"))
		}
	}
	return out
}

// rank orders the phases of one analysis.
func rank(phase string) int {
	switch flaggerv1beta1.CanaryPhase(phase) {
	case flaggerv1beta1.CanaryPhaseProgressing:
		return 1
	case flaggerv1beta1.CanaryPhaseWaitingPromotion:
		return 2
	case flaggerv1beta1.CanaryPhasePromoting:
		return 3
	case flaggerv1beta1.CanaryPhaseFinalising:
		return 4
	case flaggerv1beta1.CanaryPhaseSucceeded, flaggerv1beta1.CanaryPhaseFailed:
		return 5
	}
	return 0
}

// wentBack says how status b, seen after a, undid a's progress, or "".
func wentBack(a, b observation) string {
	switch {
	case rank(b.phase) < rank(a.phase):
		return fmt.Sprintf("phase %s after %s", b.phase, a.phase)
	case terminal(a.phase) && b.phase != a.phase:
		return fmt.Sprintf("phase %s after %s", b.phase, a.phase)
	case !b.lastAnalysis.IsZero() && b.lastAnalysis.Before(a.lastAnalysis):
		return fmt.Sprintf("lastAnalysisTime %s after %s", b.lastAnalysis.Format(time.TimeOnly), a.lastAnalysis.Format(time.TimeOnly))
	case a.phase != b.phase || terminal(b.phase):
		return ""
	case b.iterations < a.iterations:
		return fmt.Sprintf("iterations %d after %d", b.iterations, a.iterations)
	case b.failed < a.failed:
		return fmt.Sprintf("failedChecks %d after %d", b.failed, a.failed)
	case b.phase == string(flaggerv1beta1.CanaryPhaseProgressing) && b.weight < a.weight:
		return fmt.Sprintf("canaryWeight %d after %d", b.weight, a.weight)
	}
	return ""
}

// measuredFailures lists the failed metric checks that measured a value:
// for a healthy revision, those are wrong.
func measuredFailures(obs []observation) []string {
	seen := map[string]bool{}
	var out []string
	for _, o := range obs {
		for _, c := range o.checks {
			if c.Passed || c.Kind != flaggerv1beta1.CheckMetric || c.Value == nil || c.NoData || c.Time.Time.Before(obs[0].at.Add(-time.Second)) {
				continue
			}
			key := c.Time.String() + c.Name
			if !seen[key] {
				seen[key] = true
				out = append(out, fmt.Sprintf("%s %s measured %g: %s", c.Time.Format(time.TimeOnly), c.Name, *c.Value, c.Message))
			}
		}
	}
	return out
}

// lastMessage is the Promoted condition's last message.
func lastMessage(obs []observation) string {
	if len(obs) == 0 {
		return ""
	}
	return obs[len(obs)-1].message
}

// restartEvents returns the times of the events saying that an analysis
// restarted.
func restartEvents(events []corev1.Event) []time.Time {
	var out []time.Time
	for _, e := range events {
		if strings.Contains(e.Message, "Restarting the analysis") {
			out = append(out, e.FirstTimestamp.Time, e.LastTimestamp.Time)
		}
	}
	return out
}

func restartedBetween(times []time.Time, a, b time.Time) bool {
	for _, t := range times {
		if !t.Before(a.Add(-2*time.Second)) && !t.After(b.Add(2*time.Second)) {
			return true
		}
	}
	return false
}

// history renders a rollout's record for a failure message.
func history(o outcome, obs []observation, templates []templateChange, events []corev1.Event) string {
	r := o.r
	var b strings.Builder
	fmt.Fprintf(&b, "rollout %s: %s, faulty %v, strategy %s, webhook %v, released %s, ended %s %s, revision %q\n",
		r.id(), r.image, r.faulty, r.lane.strategy, r.lane.webhook, r.released.Format("15:04:05.000"),
		r.ended.Format("15:04:05.000"), r.phase, r.applied)
	b.WriteString("  Canary status as watched:\n")
	for _, ob := range obs {
		if ob.at.Before(r.released.Add(-5 * time.Second)) {
			continue
		}
		fmt.Fprintf(&b, "    %s %-16s w=%-3d it=%-2d failed=%d applied=%.10s lastAnalysis=%s %s\n", ob.at.Format("15:04:05.000"), ob.phase,
			ob.weight, ob.iterations, ob.failed, ob.applied, ob.lastAnalysis.Format(time.TimeOnly), ob.message)
	}
	b.WriteString("  primary pod templates:\n")
	for _, t := range templates {
		fmt.Fprintf(&b, "    %s generation %d %s error-rate %g\n", t.at.Format("15:04:05.000"), t.generation, t.image, t.errorRate)
	}
	b.WriteString("  faults meanwhile:\n")
	for _, f := range o.faults {
		fmt.Fprintf(&b, "    %s %s %s\n", f.at.Format("15:04:05.000"), f.kind, f.detail)
	}
	b.WriteString("  events:\n")
	sort.Slice(events, func(i, j int) bool { return events[i].LastTimestamp.Before(&events[j].LastTimestamp) })
	for _, e := range events {
		if e.LastTimestamp.Time.Before(r.released.Add(-5 * time.Second)) {
			continue
		}
		fmt.Fprintf(&b, "    %s %s %s: %s (x%d)\n", e.LastTimestamp.Format("15:04:05"), e.Type, e.InvolvedObject.Name, e.Message, e.Count)
	}
	return b.String()
}
