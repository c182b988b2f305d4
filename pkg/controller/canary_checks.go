package controller

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/controller/statemachine"
	"github.com/sluicedev/sluice/pkg/webhook"
)

// runDue runs the gates and checks the state machine asked for and returns
// their results.
func (r *CanaryReconciler) runDue(ctx context.Context, sc *scope, due statemachine.Due) statemachine.Results {
	var res statemachine.Results
	if !due.Any() {
		return res
	}
	gates := []struct {
		due bool
		t   flaggerv1beta1.HookType
	}{
		{due.ConfirmRollout, flaggerv1beta1.ConfirmRolloutHook},
		{due.Rollback, flaggerv1beta1.RollbackHook},
		{due.ConfirmTrafficIncrease, flaggerv1beta1.ConfirmTrafficIncreaseHook},
		{due.ConfirmPromotion, flaggerv1beta1.ConfirmPromotionHook},
	}
	for _, g := range gates {
		if g.due {
			if res.Gates == nil {
				res.Gates = map[flaggerv1beta1.HookType]statemachine.Gate{}
			}
			res.Gates[g.t] = r.gate(ctx, sc.cd, g.t)
		}
	}
	switch {
	case due.PreRollout:
		res.Checks = r.hookChecks(ctx, sc.cd, flaggerv1beta1.PreRolloutHook)
	case due.Analysis:
		res.Checks = r.hookChecks(ctx, sc.cd, flaggerv1beta1.RolloutHook)
		res.Checks = append(res.Checks, r.Analyzer.Analyze(ctx, sc.cd)...)
	}
	return res
}

// hooksOf returns the webhooks of a type; untyped webhooks are rollout ones.
func hooksOf(cd *flaggerv1beta1.Canary, t flaggerv1beta1.HookType) []flaggerv1beta1.CanaryWebhook {
	if cd.Spec.Analysis == nil {
		return nil
	}
	var hooks []flaggerv1beta1.CanaryWebhook
	for _, h := range cd.Spec.Analysis.Webhooks {
		if h.EffectiveType() == t {
			hooks = append(hooks, h)
		}
	}
	return hooks
}

// gate asks every webhook of a type; the gate is open when all say yes. For
// the rollback type, open means "roll back", so any yes opens it.
func (r *CanaryReconciler) gate(ctx context.Context, cd *flaggerv1beta1.Canary, t flaggerv1beta1.HookType) statemachine.Gate {
	hooks := hooksOf(cd, t)
	for _, h := range hooks {
		err := r.call(ctx, h, webhook.NewPayload(cd, h))
		if t == flaggerv1beta1.RollbackHook {
			if err == nil {
				return statemachine.Gate{Open: true, Message: fmt.Sprintf("webhook %s", h.Name)}
			}
			continue
		}
		if err != nil {
			log.FromContext(ctx).V(1).Info("Gate closed", "type", t, "webhook", h.Name, "reason", err.Error())
			return statemachine.Gate{Message: fmt.Sprintf("webhook %s: %v", h.Name, err)}
		}
	}
	return statemachine.Gate{Open: t != flaggerv1beta1.RollbackHook}
}

// hookChecks calls every webhook of a type and reports each as a check.
func (r *CanaryReconciler) hookChecks(ctx context.Context, cd *flaggerv1beta1.Canary, t flaggerv1beta1.HookType) []flaggerv1beta1.CanaryCheckResult {
	hooks := hooksOf(cd, t)
	checks := make([]flaggerv1beta1.CanaryCheckResult, 0, len(hooks))
	for _, h := range hooks {
		c := flaggerv1beta1.CanaryCheckResult{Time: metav1.NewTime(r.now()), Kind: flaggerv1beta1.CheckWebhook, Name: h.Name, Passed: true}
		if err := r.call(ctx, h, webhook.NewPayload(cd, h)); err != nil {
			c.Passed, c.Message = false, fmt.Sprintf("%s webhook: %v", t, err)
		}
		checks = append(checks, c)
	}
	return checks
}

// call calls a webhook and records its latency and outcome in
// sluice_webhook_duration_seconds.
func (r *CanaryReconciler) call(ctx context.Context, h flaggerv1beta1.CanaryWebhook, p webhook.Payload) error {
	start := time.Now()
	err := r.Webhooks.Call(ctx, h, p)
	if r.Metrics != nil {
		r.Metrics.ObserveWebhook(h.EffectiveType(), time.Since(start), err)
	}
	return err
}
