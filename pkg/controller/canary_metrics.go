package controller

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/controller/statemachine"
)

// export updates the flagger_canary_* metrics after a decision was
// persisted; took is how long the reconcile ran, observed as the duration
// of an analysis run whenever one was due, as Flagger observes every run
// of its analysis, whether it checked metrics, webhooks or nothing.
func (r *CanaryReconciler) export(sc *scope, took time.Duration) {
	if r.Metrics == nil {
		return
	}
	cd := sc.cd // holds the persisted status
	r.targets.Store(client.ObjectKeyFromObject(cd), cd.Spec.TargetRef.Name)
	r.Metrics.SetStatus(cd)
	w := int(cd.Status.CanaryWeight)
	b := statemachine.BaselineShare(cd.Spec, sc.in.Config, cd.Status)
	r.Metrics.SetWeight(cd, 100-w-b, w, b)
	if len(sc.in.Results.Checks) > 0 {
		r.Metrics.ObserveAnalysis(cd, sc.in.Results.Checks)
	}
	if due := statemachine.Plan(sc.in); len(sc.in.Results.Checks) > 0 || due.PreRollout || due.Analysis {
		r.Metrics.ObserveDuration(cd, took)
	}
	old := sc.in.Status.Phase
	if old == cd.Status.Phase {
		return
	}
	strategy := string(statemachine.StrategyOf(cd.Spec, sc.in.Config))
	switch {
	case cd.Status.Phase == flaggerv1beta1.CanaryPhaseSucceeded && statemachine.Running(old):
		r.Metrics.IncSuccess(cd, strategy, cd.Spec.SkipAnalysis)
	case cd.Status.Phase == flaggerv1beta1.CanaryPhaseFailed:
		r.Metrics.IncFailure(cd, strategy)
	}
}

// forget drops the gauges of a deleted Canary.
func (r *CanaryReconciler) forget(key types.NamespacedName) {
	target, ok := r.targets.LoadAndDelete(key)
	if r.Metrics == nil || !ok {
		return
	}
	r.Metrics.Forget(&flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
		Spec:       flaggerv1beta1.CanarySpec{TargetRef: flaggerv1beta1.LocalObjectReference{Name: target.(string)}},
	})
}
