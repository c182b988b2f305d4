package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// ControllerName is the name of the Canary controller. It labels the
// controller_runtime_* metrics (controller="canary") and the log lines.
const ControllerName = "canary"

// CanaryReconciler reconciles Canaries. For now it only reads and logs each
// Canary: the analysis and promotion engine comes later.
type CanaryReconciler struct {
	client.Client
	// Scheme knows the kinds the reconciler reads and writes.
	Scheme *runtime.Scheme
}

// SetupWithManager registers the reconciler with mgr, watching Canaries and
// running at most maxConcurrentReconciles reconciles at a time (the
// -threadiness flag). Values below 1 mean 1.
func (r *CanaryReconciler) SetupWithManager(mgr ctrl.Manager, maxConcurrentReconciles int) error {
	if maxConcurrentReconciles < 1 {
		maxConcurrentReconciles = 1
	}
	err := ctrl.NewControllerManagedBy(mgr).
		For(&flaggerv1beta1.Canary{}).
		Named(ControllerName).
		WithOptions(crcontroller.Options{MaxConcurrentReconciles: maxConcurrentReconciles}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("setting up the %s controller: %w", ControllerName, err)
	}
	return nil
}

// Reconcile reads the Canary named by req and logs it. A Canary that no
// longer exists needs nothing.
func (r *CanaryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// The logger from the context already carries the Canary's namespace and
	// name (keys "namespace", "name" and "Canary") and the reconcile ID.
	logger := log.FromContext(ctx)

	var canary flaggerv1beta1.Canary
	if err := r.Get(ctx, req.NamespacedName, &canary); err != nil {
		if apierrors.IsNotFound(err) {
			logger.V(1).Info("Canary is gone, nothing to do")
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("reading canary %s: %w", req.NamespacedName, err)
	}

	logger.V(1).Info("Reconciling Canary",
		"generation", canary.Generation,
		"phase", canary.Status.Phase,
		"target", canary.Spec.TargetRef.Kind+"/"+canary.Spec.TargetRef.Name)
	return ctrl.Result{}, nil
}
