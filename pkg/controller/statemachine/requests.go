package statemachine

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// The requests a person makes through the Canary's sluice.dev/request
// annotations (kubectl sluice promote, abort, retry; see docs/cli.md).
const (
	// RequestPromote skips the remaining analysis steps: the next step is
	// the last, and the promotion still waits for the confirm-promotion
	// webhooks.
	RequestPromote = "promote"
	// RequestPromoteFull promotes now, without further checks or gates.
	RequestPromoteFull = "promote-full"
	// RequestAbort rolls the release back now.
	RequestAbort = "abort"
	// RequestRetry analyses the revision of a failed release again.
	RequestRetry = "retry"
)

// Request is a request read from the Canary's annotations.
type Request struct {
	// Kind is one of the Request* constants; anything else is refused.
	Kind string
	// ID identifies the request; each id is honoured once.
	ID string
	// By is who asked.
	By string
	// Reason is why they asked.
	Reason string
}

// takeRequest honours or refuses the pending request, once per id, and
// records the outcome in status.lastRequest. The phase functions that run
// after it carry the request out (a promotion that is due, a release to
// start).
func (d *decider) takeRequest() {
	r := d.in.Request
	if r == nil || r.ID == "" {
		return
	}
	d.clearRequest = true
	if last := d.next.LastRequest; last != nil && last.ID == r.ID {
		return // taken already; only the annotations are left to remove
	}
	who := r.By
	if who == "" {
		who = "unknown"
	}
	record := &flaggerv1beta1.CanaryRequestStatus{ID: r.ID, Request: r.Kind, By: r.By, Reason: r.Reason, Time: metav1.NewTime(d.in.Now)}
	d.next.LastRequest = record
	why := ""
	if r.Reason != "" {
		why = ": " + r.Reason
	}
	refuse := func(format string, args ...any) {
		record.Outcome, record.Message = flaggerv1beta1.RequestRefused, fmt.Sprintf(format, args...)
		d.event(Warning, "Request %s %s by %s refused: %s", r.Kind, r.ID, who, record.Message)
	}
	honour := func(msg string) {
		record.Outcome, record.Message, record.Revision = flaggerv1beta1.RequestHonoured, msg, d.next.LastAppliedSpec
		d.event(Normal, "%s (%s requested by %s%s)", msg, r.Kind, who, why)
	}
	name, phase := d.in.Spec.TargetRef.Name, d.next.Phase
	switch r.Kind {
	case RequestPromote, RequestPromoteFull:
		full := r.Kind == RequestPromoteFull
		switch phase {
		case flaggerv1beta1.CanaryPhaseWaiting:
			if !newRevision(d.in) {
				refuse("no new revision of %s is waiting", name)
				return
			}
			d.start()
			honour(fmt.Sprintf("Promotion of %s requested: the analysis starts and stops after its first step", name))
			if full {
				record.Message = fmt.Sprintf("Promotion of %s requested without analysis", name)
				d.promote()
			}
		case flaggerv1beta1.CanaryPhaseProgressing, flaggerv1beta1.CanaryPhaseWaitingPromotion:
			if full {
				honour(fmt.Sprintf("Promotion of %s requested: promoting now, skipping the remaining steps and gates", name))
				d.promote()
				return
			}
			if phase == flaggerv1beta1.CanaryPhaseWaitingPromotion {
				refuse("%s waits only for its confirm-promotion webhooks; open the gate, or promote --full", name)
				return
			}
			honour(fmt.Sprintf("Promotion of %s requested: the next step is the last", name))
		default:
			refuse("%s is %s: there is no analysis to promote", name, phase)
		}
	case RequestAbort:
		if phase != flaggerv1beta1.CanaryPhaseProgressing && phase != flaggerv1beta1.CanaryPhaseWaitingPromotion {
			refuse("%s is %s: there is no analysis to abort", name, phase)
			return
		}
		honour(fmt.Sprintf("Abort of the release of %s requested", name))
		d.rollback(&Alert{Severity: flaggerv1beta1.SeverityWarn, Text: fmt.Sprintf("Canary aborted by %s%s", who, why)},
			"Rolling back %s: aborted by %s%s", name, who, why)
	case RequestRetry:
		switch {
		case phase != flaggerv1beta1.CanaryPhaseFailed:
			refuse("%s is %s: only a failed release can be retried", name, phase)
		case d.in.Obs.Revision == d.next.LastPromotedSpec:
			refuse("%s runs the promoted revision again: there is nothing to retry", name)
		default:
			honour(fmt.Sprintf("Retry of the failed revision of %s requested", name))
			// The failed revision counts as new again: idle starts it,
			// through the concurrency cap and the confirm-rollout gate.
			d.next.LastAppliedSpec = ""
		}
	default:
		refuse("unknown request %q: want promote, promote-full, abort or retry", r.Kind)
	}
}

// promotionRequested reports whether a promotion request was honoured for
// the revision under analysis: its next passing step promotes.
func promotionRequested(s flaggerv1beta1.CanaryStatus) bool {
	r := s.LastRequest
	return r != nil && r.Request == RequestPromote && r.Outcome == flaggerv1beta1.RequestHonoured &&
		r.Revision != "" && r.Revision == s.LastAppliedSpec
}
