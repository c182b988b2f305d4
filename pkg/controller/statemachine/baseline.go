package statemachine

import (
	"fmt"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// The baseline (analysis.baseline) is a fresh copy of the primary that
// runs beside the canary during the analysis of a weighted release. The
// decision holds it as it holds the canary's scale: it exists while the
// analysis runs (Progressing, WaitingPromotion), is ready before the first
// step and before every step after, takes as much traffic as the canary
// out of the primary's share, gives that share back to the primary at
// promotion, and is removed when the release is over. A restart for a new
// revision restarts the baseline's pods with the new canary's (its
// Revision is the analysed revision it was started for).

// baselineOf is the observed baseline as the analysis of the status'
// revision sees it: one started for another revision is not ready yet,
// since its pods are being replaced.
func baselineOf(in Input) Workload {
	b := in.Obs.Baseline
	if b.Exists && b.Revision != in.Status.LastAppliedSpec {
		b.Ready = false
		b.Message = fmt.Sprintf("restarting it for revision %s", in.Status.LastAppliedSpec)
	}
	return b
}

// BaselineShare is the percentage of traffic the status gives the
// baseline (analysis.baseline): as much as the canary, out of the
// primary's share, while the analysis takes steps, and none otherwise or
// when the provider does not split traffic.
func BaselineShare(spec flaggerv1beta1.CanarySpec, cfg Config, s flaggerv1beta1.CanaryStatus) int {
	if !cfg.SplitsTraffic {
		return 0
	}
	return routesFor(s, planOf(spec, cfg), true).Baseline
}

// baselineAnalysed reports whether the baseline runs in a phase: while the
// analysis takes steps.
func baselineAnalysed(p plan, phase flaggerv1beta1.CanaryPhase) bool {
	return p.baseline && (phase == flaggerv1beta1.CanaryPhaseProgressing || phase == flaggerv1beta1.CanaryPhaseWaitingPromotion)
}

// waitForBaseline reports whether the baseline is ready for the analysis
// of the decided revision; while it is not, the release waits, bounded by
// the progress deadline like the other waits.
func (d *decider) waitForBaseline() bool {
	if !d.p.baseline {
		return true
	}
	now := d.in
	now.Status = d.next
	return d.waitFor(baselineOf(now), "baseline", true)
}

// baselineActions are the convergence actions of the baseline in the
// decided status: before the routes, create or update it while the
// analysis runs; after them, remove it once the release is over (or the
// spec no longer asks for it). During a promotion it stays, without
// traffic, until the release ends.
func (d *decider) baselineActions(s flaggerv1beta1.CanaryStatus) (before, after []Action) {
	switch {
	case baselineAnalysed(d.p, s.Phase):
		return []Action{{Kind: EnsureBaseline, Revision: s.LastAppliedSpec}}, nil
	case d.p.baseline && running(s.Phase):
		return nil, nil
	case d.in.Obs.Baseline.Exists || (d.in.Spec.Analysis != nil && d.in.Spec.Analysis.Baseline):
		return nil, []Action{{Kind: RemoveBaseline}}
	}
	return nil, nil
}

// baselineNotice says, when an analysis starts, that a baseline starts
// with it.
func (d *decider) baselineNotice() {
	if d.p.baseline {
		name := d.in.Spec.TargetRef.Name
		d.event(Normal, "Starting %s-baseline, a fresh copy of %s-primary, beside the canary: it gets the canary's share of the traffic during the analysis", name, name)
	}
}
