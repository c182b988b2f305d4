package controller

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/controller/statemachine"
	"github.com/sluicedev/sluice/pkg/notifier"
	"github.com/sluicedev/sluice/pkg/router"
	"github.com/sluicedev/sluice/pkg/webhook"
)

// eventReason is the reason of every Canary event, as Flagger writes it;
// the meaning is in the message.
const eventReason = "Synced"

// apply carries out the actions of a persisted decision in order. Each is
// idempotent, so after a failure the next reconcile, which finds the same
// decision in the status, carries out what is left. Routers are given the
// Canary with the decided status, so that they render what the decision
// holds (the session cookies of the analysis) rather than what the last
// reconcile left.
//
// Writes to the Services and routing objects that no decision asked for
// (the decision kept phase, weight and step, and the spec did not change)
// restore what someone else changed: each is reported in an event.
func (r *CanaryReconciler) apply(ctx context.Context, sc *scope, d statemachine.Decision) error {
	routed := sc.cd.DeepCopy()
	routed.Status = d.Status
	ctx, changes := router.WithChanges(ctx)
	for _, a := range d.Actions {
		if err := r.act(ctx, sc, routed, a); err != nil {
			return fmt.Errorf("%s for canary %s/%s: %w", a.Kind, sc.cd.Namespace, sc.cd.Name, err)
		}
	}
	if restored := changes.List(); len(restored) > 0 && drifted(sc.in, d) {
		for _, c := range restored {
			r.Recorder.Eventf(sc.cd, corev1.EventTypeWarning, eventReason,
				"Restored %s: it had drifted from what Canary %s declares (changed or deleted by someone else)", strings.TrimPrefix(strings.TrimPrefix(c, "updated "), "created "), sc.cd.Name)
		}
		log.FromContext(ctx).Info("Restored objects that had drifted", "objects", restored)
	}
	return nil
}

// drifted reports whether a decision kept the Canary where it was, so that
// any write to its Services and routing objects restores drift rather than
// carrying out a step or a spec change.
func drifted(in statemachine.Input, d statemachine.Decision) bool {
	before, after := in.Status, d.Status
	return before.Phase != "" && before.Phase != flaggerv1beta1.CanaryPhaseInitializing &&
		before.Phase == after.Phase && before.CanaryWeight == after.CanaryWeight && before.Iterations == after.Iterations &&
		before.ObservedGeneration == in.Generation && in.Obs.Invalid == nil
}

func (r *CanaryReconciler) act(ctx context.Context, sc *scope, routed *flaggerv1beta1.Canary, a statemachine.Action) error {
	cd := sc.cd
	switch a.Kind {
	case statemachine.RunPostRollout, statemachine.RemoveFinalizer:
		return nil // after the status is persisted: see Reconcile
	}
	if sc.workload == nil || !sc.routable {
		// The state machine acts only when observe could build what the
		// action needs; this guards against a decision that would not.
		return fmt.Errorf("cannot %s: the Canary's workload or router is unknown", a.Kind)
	}
	switch a.Kind {
	case statemachine.EnsurePrimary:
		return sc.workload.EnsurePrimary(ctx, cd)
	case statemachine.EnsureServices:
		return router.EnsureServices(ctx, r.Client, cd, sc.target)
	case statemachine.ReconcileRoutes:
		return sc.router.Reconcile(ctx, routed, sc.target)
	case statemachine.SetRoutes:
		return sc.router.SetRoutes(ctx, routed, sc.target, router.Routes{Primary: a.Routes.Primary, Canary: a.Routes.Canary, Baseline: a.Routes.Baseline, Mirrored: a.Routes.Mirrored})
	case statemachine.ScaleTargetUp:
		return sc.workload.ScaleTargetUp(ctx, cd)
	case statemachine.RestoreTarget:
		return sc.workload.RestoreTarget(ctx, cd)
	case statemachine.ScaleTargetToZero:
		return sc.workload.ScaleTargetToZero(ctx, cd)
	case statemachine.ScalePrimaryAtLeast:
		return sc.workload.ScalePrimaryAtLeast(ctx, cd, a.Replicas)
	case statemachine.Promote:
		return sc.workload.Promote(ctx, cd, a.Revision)
	case statemachine.SyncAutoscaler:
		return sc.workload.SyncAutoscaler(ctx, cd)
	case statemachine.FinalizeRoutes:
		return sc.router.Finalize(ctx, routed, sc.target)
	case statemachine.ReleaseServices:
		return router.ReleaseServices(ctx, r.Client, cd, sc.target)
	case statemachine.EnsureBaseline:
		if err := sc.workload.EnsureBaseline(ctx, cd, a.Revision); err != nil {
			return err
		}
		return router.EnsureBaselineService(ctx, r.Client, cd, sc.target)
	case statemachine.RemoveBaseline:
		// The Service first: a Service left without its Deployment would
		// not be seen again.
		if err := router.RemoveBaselineService(ctx, r.Client, cd); err != nil {
			return err
		}
		return sc.workload.RemoveBaseline(ctx, cd)
	}
	return fmt.Errorf("unknown action %q", a.Kind)
}

// postRollout calls the post-rollout webhooks once the outcome (Succeeded
// or Failed) is persisted, so that their payload carries it. Their failures
// are reported, but they cannot change the outcome.
func (r *CanaryReconciler) postRollout(ctx context.Context, cd *flaggerv1beta1.Canary) {
	for _, h := range hooksOf(cd, flaggerv1beta1.PostRolloutHook) {
		if err := r.call(ctx, h, webhook.NewPayload(cd, h)); err != nil {
			r.Recorder.Eventf(cd, corev1.EventTypeWarning, eventReason, "post-rollout webhook %s failed: %v", h.Name, err)
		}
	}
}

// persist writes the status when it changed, with optimistic concurrency:
// a conflict means someone else wrote since our read, and the reconcile is
// repeated on fresh data.
func (r *CanaryReconciler) persist(ctx context.Context, cd *flaggerv1beta1.Canary, status flaggerv1beta1.CanaryStatus) error {
	if equality.Semantic.DeepEqual(cd.Status, status) {
		return nil
	}
	base := cd.DeepCopy()
	cd.Status = status
	if err := r.Status().Patch(ctx, cd, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("writing status of canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	r.written.Store(client.ObjectKeyFromObject(cd), cd.ResourceVersion)
	if r.KeepStatusInMemory {
		r.memory.store(client.ObjectKeyFromObject(cd), status)
		r.memory.fill(client.ObjectKeyFromObject(cd), &cd.Status)
	}
	return nil
}

// emit tells people what happened: a Kubernetes event, a log line and the
// event webhooks for every decision event, and an alert for the milestones
// (events that carry one).
func (r *CanaryReconciler) emit(ctx context.Context, cd *flaggerv1beta1.Canary, d statemachine.Decision) {
	logger := log.FromContext(ctx)
	for _, e := range d.Events {
		// A message may quote a URL with a token in it: never let it out.
		e.Message = webhook.Redact(e.Message)
		if e.Type == statemachine.Warning {
			logger.Info("Warning: "+e.Message, "phase", d.Status.Phase)
		} else {
			logger.Info(e.Message, "phase", d.Status.Phase)
		}
		r.Recorder.Event(cd, string(e.Type), eventReason, e.Message)
		r.eventHooks(ctx, cd, e)
		if e.Alert == nil {
			continue
		}
		msg := notifier.Message{Canary: cd.Name, Namespace: cd.Namespace, Phase: d.Status.Phase, Severity: e.Alert.Severity, Text: webhook.Redact(e.Alert.Text)}
		if e.Alert.Metadata {
			msg.Fields = alertFields(cd, d.Status)
		}
		if err := r.Notifier.Post(ctx, msg); err != nil {
			logger.Error(err, "Delivering a notification failed")
		}
	}
}

// eventHooks sends an event to the Canary's event webhooks, or, when it has
// none, to the -event-webhook address. Delivery is fire and forget: each
// call runs on its own, bounded by the hook's timeout, and a failure is
// only logged.
func (r *CanaryReconciler) eventHooks(ctx context.Context, cd *flaggerv1beta1.Canary, e statemachine.Event) {
	hooks := hooksOf(cd, flaggerv1beta1.EventHook)
	if len(hooks) == 0 && r.EventWebhook != "" {
		hooks = []flaggerv1beta1.CanaryWebhook{{Name: "event-webhook", Type: flaggerv1beta1.EventHook, URL: r.EventWebhook}}
	}
	logger := log.FromContext(ctx)
	for _, h := range hooks {
		payload := webhook.NewEventPayload(cd, h, string(e.Type), e.Message, r.now())
		go func() {
			if err := r.call(context.WithoutCancel(ctx), h, payload); err != nil {
				logger.Error(err, "Event webhook failed", "webhook", h.Name)
			}
		}()
	}
}

// alertFields are the details Flagger adds to the alerts of a release that
// starts: the target, the failed-checks threshold, the progress deadline
// and how traffic is routed.
func alertFields(cd *flaggerv1beta1.Canary, _ flaggerv1beta1.CanaryStatus) []notifier.Field {
	threshold, deadline := int32(1), int32(600)
	a := cd.Spec.Analysis
	if a != nil && a.Threshold > 0 {
		threshold = a.Threshold
	}
	if cd.Spec.ProgressDeadlineSeconds != nil {
		deadline = *cd.Spec.ProgressDeadlineSeconds
	}
	fields := []notifier.Field{
		{Name: "Target", Value: fmt.Sprintf("%s/%s.%s", cd.Spec.TargetRef.Kind, cd.Spec.TargetRef.Name, cd.Namespace)},
		{Name: "Failed checks threshold", Value: fmt.Sprint(threshold)},
		{Name: "Progress deadline", Value: fmt.Sprintf("%ds", deadline)},
	}
	routing := ""
	maxWeight := int32(100)
	if a != nil && a.MaxWeight != nil {
		maxWeight = *a.MaxWeight
	}
	switch {
	case a == nil:
	case a.Iterations != nil && *a.Iterations > 0 && len(a.Match) > 0:
		routing = "A/B Testing"
	case a.Iterations != nil && *a.Iterations > 0:
		routing = "Blue/Green"
	case a.StepWeight != nil && *a.StepWeight > 0:
		routing = fmt.Sprintf("Weight step: %d max: %d", *a.StepWeight, maxWeight)
	case len(a.StepWeights) > 0:
		steps := make([]string, len(a.StepWeights))
		for i, w := range a.StepWeights {
			steps[i] = fmt.Sprint(w)
		}
		routing = fmt.Sprintf("Weight steps: %s max: %d", strings.Join(steps, ","), maxWeight)
	}
	if routing != "" {
		fields = append(fields, notifier.Field{Name: "Traffic routing", Value: routing})
	}
	return fields
}
