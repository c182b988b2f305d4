package controller

import (
	"context"
	"fmt"

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

// apply carries out the actions of a decision in order. Each is
// idempotent, so after a failure the next reconcile decides again and
// repeats what is needed. Routers are given the Canary with the decided
// status, so that they render what the decision holds (the session cookies
// of the analysis) rather than what the last reconcile left.
func (r *CanaryReconciler) apply(ctx context.Context, sc *scope, d statemachine.Decision) error {
	routed := sc.cd.DeepCopy()
	routed.Status = d.Status
	for _, a := range d.Actions {
		if err := r.act(ctx, sc, routed, a); err != nil {
			return fmt.Errorf("%s for canary %s/%s: %w", a.Kind, sc.cd.Namespace, sc.cd.Name, err)
		}
	}
	return nil
}

func (r *CanaryReconciler) act(ctx context.Context, sc *scope, routed *flaggerv1beta1.Canary, a statemachine.Action) error {
	cd := sc.cd
	if (sc.workload == nil || sc.router == nil) && a.Kind != statemachine.RunPostRollout && a.Kind != statemachine.RemoveFinalizer {
		// The state machine acts only on valid Canaries; this is a guard
		// against a decision that would need what observe could not build.
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
		return sc.router.SetRoutes(ctx, routed, sc.target, router.Routes{Primary: a.Routes.Primary, Canary: a.Routes.Canary, Mirrored: a.Routes.Mirrored})
	case statemachine.ScaleTargetUp:
		return sc.workload.ScaleTargetUp(ctx, cd)
	case statemachine.ScaleTargetToZero:
		return sc.workload.ScaleTargetToZero(ctx, cd)
	case statemachine.ScalePrimaryAtLeast:
		return sc.workload.ScalePrimaryAtLeast(ctx, cd, a.Replicas)
	case statemachine.Promote:
		return sc.workload.Promote(ctx, cd)
	case statemachine.SyncAutoscaler:
		return sc.workload.SyncAutoscaler(ctx, cd)
	case statemachine.FinalizeRoutes:
		return sc.router.Finalize(ctx, routed, sc.target)
	case statemachine.RunPostRollout, statemachine.RemoveFinalizer:
		return nil // after the status is persisted: see Reconcile
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
	return nil
}

// emit tells people what happened: a Kubernetes event, a log line and a
// notifier message per decision event.
func (r *CanaryReconciler) emit(ctx context.Context, cd *flaggerv1beta1.Canary, d statemachine.Decision) {
	logger := log.FromContext(ctx)
	for _, e := range d.Events {
		severity := flaggerv1beta1.SeverityInfo
		if e.Type == statemachine.Warning {
			severity = flaggerv1beta1.SeverityWarn
			if d.Status.Phase == flaggerv1beta1.CanaryPhaseFailed {
				severity = flaggerv1beta1.SeverityError
			}
			logger.Info("Warning: "+e.Message, "phase", d.Status.Phase)
		} else {
			logger.Info(e.Message, "phase", d.Status.Phase)
		}
		r.Recorder.Event(cd, string(e.Type), eventReason, e.Message)
		r.eventHooks(ctx, cd, e)
		if e.Mute {
			continue
		}
		msg := notifier.Message{Canary: cd.Name, Namespace: cd.Namespace, Phase: d.Status.Phase, Severity: severity, Text: e.Message}
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
