package statemachine

import (
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
)

const (
	metav1Unknown  = corev1.ConditionUnknown
	conditionTrue  = corev1.ConditionTrue
	conditionFalse = corev1.ConditionFalse
)

// waitFor reports whether a workload is ready. While it is not, the wait is
// recorded in status.waitingSince and bounded by progressDeadlineSeconds:
// past it (or when the workload's controller gave up), a release in
// flight is rolled back, and a primary being initialized is reported and
// waited for. A workload that is ready leaves waitingSince alone during an
// analysis: there it is cleared when a step completes, so that the time a
// release spends without progress (waiting for workloads, for data) is
// bounded as a whole.
func (d *decider) waitFor(w Workload, name string, inRelease bool) bool {
	s := &d.next
	if w.Exists && w.Ready {
		if !inRelease {
			s.WaitingSince = nil
		}
		return true
	}
	if s.WaitingSince == nil {
		s.WaitingSince = d.now()
	}
	why := w.Message
	if !w.Exists {
		why = "it does not exist yet"
	}
	if w.Stalled || d.pastDeadline() {
		if inRelease {
			msg := fmt.Sprintf("the %s is not ready after %s: %s", name, d.p.deadline, why)
			d.rollback(alertDeadline(msg), "Rolling back %s: %s", d.in.Spec.TargetRef.Name, msg)
			return false
		}
		msg := fmt.Sprintf("The %s is not ready after %s: %s", name, d.p.deadline, why)
		if d.setCondition(flaggerv1beta1.PromotedType, promotedStatus(s.Phase), string(s.Phase), msg) {
			d.alertEvent(Warning, msg, &Alert{Severity: flaggerv1beta1.SeverityError, Text: msg})
		}
		return false
	}
	d.setCondition(flaggerv1beta1.PromotedType, promotedStatus(s.Phase), string(s.Phase),
		fmt.Sprintf("Waiting for the %s to become ready: %s", name, why))
	d.keepWaiting()
	return false
}

func (d *decider) deadline() time.Time {
	if d.next.WaitingSince == nil {
		return d.in.Now.Add(d.p.deadline)
	}
	return d.next.WaitingSince.Add(d.p.deadline)
}

func (d *decider) pastDeadline() bool {
	return d.next.WaitingSince != nil && !d.in.Now.Before(d.deadline())
}

// keepWaiting looks again at the deadline, and at least every analysis
// interval before it: readiness is normally seen through the workloads'
// watch events, but a release never depends on one arriving.
func (d *decider) keepWaiting() {
	d.wakeAt = append(d.wakeAt, d.deadline(), d.in.Now.Add(d.p.interval))
}

// terminate restores the target before a Canary with revertOnDeletion goes
// away: the target is scaled up to the primary's replicas, then the routes
// and the apex Service point at it, and the apex Service is released so
// that it outlives the Canary; what the Canary owns besides is deleted by
// the garbage collector.
func (d *decider) terminate() {
	s := &d.next
	if s.Phase == flaggerv1beta1.CanaryPhaseTerminated {
		d.act(Action{Kind: RemoveFinalizer})
		return
	}
	if s.Phase != flaggerv1beta1.CanaryPhaseTerminating {
		s.WaitingSince = d.now()
		d.setPhase(flaggerv1beta1.CanaryPhaseTerminating, "The Canary is being deleted: restoring the target workload.")
		d.event(Normal, "Terminating: restoring %s", d.in.Spec.TargetRef.Name)
	}
	d.act(Action{Kind: RestoreTarget})
	t := d.in.Obs.Target
	switch {
	case t.Exists && t.Ready:
	case !t.Exists || t.Stalled || d.pastDeadline():
		d.event(Warning, "%s is not ready after %s; restoring its routes anyway so that the deletion completes",
			d.in.Spec.TargetRef.Name, d.p.deadline)
	default:
		d.keepWaiting()
		return
	}
	s.WaitingSince = nil
	d.act(Action{Kind: FinalizeRoutes})
	if !d.in.Obs.OwnServices {
		d.act(Action{Kind: ReleaseServices})
	}
	d.act(Action{Kind: RemoveFinalizer})
	d.setPhase(flaggerv1beta1.CanaryPhaseTerminated, "The target workload serves the traffic again.")
	d.event(Normal, "Terminated canary: %s restored", d.in.Spec.TargetRef.Name)
}

// abandon lets a Canary that Sluice cannot operate be deleted: the target
// cannot be restored, which a warning says, and the finalizer goes.
func (d *decider) abandon(p problem.Problem) {
	d.event(Warning, "Cannot restore %s before the deletion: %s; deleting the Canary without restoring it",
		d.in.Spec.TargetRef.Name, p.Message)
	d.act(Action{Kind: RemoveFinalizer})
	d.setPhase(flaggerv1beta1.CanaryPhaseTerminated, "Deleted without restoring the target: "+p.Message)
}

// setPhase moves to a phase; an empty message keeps the condition's.
func (d *decider) setPhase(phase flaggerv1beta1.CanaryPhase, msg string) {
	if d.next.Phase != phase {
		d.next.Phase = phase
		d.next.LastTransitionTime = metav1.NewTime(d.in.Now)
	}
	if msg == "" {
		if c := findCondition(d.next.Conditions, flaggerv1beta1.PromotedType); c != nil {
			msg = c.Message
		}
	}
	d.setCondition(flaggerv1beta1.PromotedType, promotedStatus(phase), string(phase), msg)
}

// promotedStatus is the Promoted condition's status in a phase, as Flagger
// writes it.
func promotedStatus(phase flaggerv1beta1.CanaryPhase) corev1.ConditionStatus {
	switch phase {
	case flaggerv1beta1.CanaryPhaseInitialized, flaggerv1beta1.CanaryPhaseSucceeded:
		return corev1.ConditionTrue
	case flaggerv1beta1.CanaryPhaseFailed:
		return corev1.ConditionFalse
	default:
		return corev1.ConditionUnknown
	}
}

// setCondition writes a condition and reports whether it changed.
func (d *decider) setCondition(t flaggerv1beta1.CanaryConditionType, status corev1.ConditionStatus, reason, msg string) bool {
	now := metav1.NewTime(d.in.Now)
	c := findCondition(d.next.Conditions, t)
	if c == nil {
		d.next.Conditions = append(d.next.Conditions, flaggerv1beta1.CanaryCondition{
			Type: t, Status: status, Reason: reason, Message: msg, LastUpdateTime: now, LastTransitionTime: now,
		})
		return true
	}
	if c.Status == status && c.Reason == reason && c.Message == msg {
		return false
	}
	if c.Status != status {
		c.LastTransitionTime = now
	}
	c.Status, c.Reason, c.Message, c.LastUpdateTime = status, reason, msg, now
	return true
}

func findCondition(cs []flaggerv1beta1.CanaryCondition, t flaggerv1beta1.CanaryConditionType) *flaggerv1beta1.CanaryCondition {
	for i := range cs {
		if cs[i].Type == t {
			return &cs[i]
		}
	}
	return nil
}

// record appends the checks of a step to the bounded history and returns
// the first that fails the step and the first that holds it.
func (d *decider) record(checks []flaggerv1beta1.CanaryCheckResult) (failed, held *flaggerv1beta1.CanaryCheckResult) {
	for i := range checks {
		c := checks[i]
		c.CanaryWeight = d.next.CanaryWeight
		if c.Time.IsZero() {
			c.Time = metav1.NewTime(d.in.Now)
		}
		d.next.Analysis = append(d.next.Analysis, c)
		if c.Counts() && failed == nil {
			failed = &c
		}
		if c.Held && !c.DryRun && held == nil {
			held = &c
		}
	}
	if n := len(d.next.Analysis); n > maxHistory {
		d.next.Analysis = slices.Clone(d.next.Analysis[n-maxHistory:])
	}
	return failed, held
}

func (d *decider) act(actions ...Action) { d.actions = append(d.actions, actions...) }

func (d *decider) event(t EventType, format string, args ...any) {
	d.events = append(d.events, Event{Type: t, Message: fmt.Sprintf(format, args...)})
}

func (d *decider) now() *metav1.Time {
	t := metav1.NewTime(d.in.Now)
	return &t
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}

func (d *decider) decision() Decision {
	out := Decision{Status: d.next, Actions: d.actions, Events: d.events, ClearRequest: d.clearRequest}
	for _, t := range d.wakeAt {
		wait := t.Sub(d.in.Now)
		if wait < time.Second {
			wait = time.Second
		}
		if out.RequeueAfter == 0 || wait < out.RequeueAfter {
			out.RequeueAfter = wait
		}
	}
	return out
}
