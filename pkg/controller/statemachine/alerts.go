package statemachine

import (
	"fmt"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// The alerts of a release: Flagger sends one at each milestone, not one per
// event, with these texts and severities, so that alert routing written for
// Flagger (a Slack channel per severity, a filter on the text) keeps
// working. Every event still goes to Kubernetes Events, the log and the
// event webhooks.
var (
	alertNewRevision = &Alert{Severity: flaggerv1beta1.SeverityInfo, Text: "New revision detected, progressing canary analysis.", Metadata: true}

	alertWaitingApproval        = &Alert{Severity: flaggerv1beta1.SeverityWarn, Text: "Canary is waiting for approval."}
	alertWaitingTrafficIncrease = &Alert{Severity: flaggerv1beta1.SeverityWarn, Text: "Canary traffic increase is waiting for approval."}
	alertWaitingPromotion       = &Alert{Severity: flaggerv1beta1.SeverityWarn, Text: "Canary promotion is waiting for approval."}
	alertManualRollback         = &Alert{Severity: flaggerv1beta1.SeverityWarn, Text: "Rolling back manual webhook invoked"}
)

// alertInitialized is sent when a Canary's primary first serves its target.
func alertInitialized(kind string) *Alert {
	return &Alert{Severity: flaggerv1beta1.SeverityInfo, Text: fmt.Sprintf("New %s detected, initialization completed.", kind), Metadata: true}
}

// alertPromoted is sent when a release ends with its promotion.
func alertPromoted(skipped bool) *Alert {
	if skipped {
		return &Alert{Severity: flaggerv1beta1.SeverityInfo, Text: "Canary analysis was skipped, promotion finished."}
	}
	return &Alert{Severity: flaggerv1beta1.SeverityInfo, Text: "Canary analysis completed successfully, promotion finished."}
}

// alertThreshold is sent when failed checks roll a release back.
func alertThreshold(failed int32) *Alert {
	return &Alert{Severity: flaggerv1beta1.SeverityError, Text: fmt.Sprintf("Failed checks threshold reached %d", failed)}
}

// alertDeadline is sent when a release is rolled back because something it
// waited for (a workload, data) took longer than progressDeadlineSeconds.
func alertDeadline(why string) *Alert {
	return &Alert{Severity: flaggerv1beta1.SeverityError, Text: "Progress deadline exceeded " + why}
}

// alertPromotionFailed is sent when the primary does not become ready with
// the promoted revision.
func alertPromotionFailed(why string) *Alert {
	return &Alert{Severity: flaggerv1beta1.SeverityError, Text: "Promotion failed, " + why}
}

// gateAlert is the alert of a closed gate, or nil when every webhook of the
// gate asks not to alert (muteAlert).
func (d *decider) gateAlert(t flaggerv1beta1.HookType, a *Alert) *Alert {
	if gateMuted(d.in.Spec, t) {
		return nil
	}
	return a
}

// alertEvent records an event that, when alert is not nil, also alerts.
func (d *decider) alertEvent(t EventType, msg string, alert *Alert) {
	d.events = append(d.events, Event{Type: t, Message: msg, Alert: alert})
}
