package router

import (
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// kubernetesRouter is the router of provider "kubernetes": blue/green
// without a mesh or ingress. It routes all traffic to the primary or all
// to the canary by switching the selector of the apex Service.
//
// A Canary whose target is a Kubernetes Service has no apex Service of its
// own: the target is the apex, and its copies <name>-primary and
// <name>-canary are its Workload's. There the router routes nothing, as
// Flagger's does: all traffic stays where the target sends it, and the
// promotion of the primary copy is the switch.
type kubernetesRouter struct {
	client client.Client
}

func newKubernetesRouter(d Deps) Interface {
	return &kubernetesRouter{client: d.Client}
}

// Reconcile creates or updates the Canary's Services, keeping the apex
// Service's selector when it selects the primary or the canary.
func (r *kubernetesRouter) Reconcile(ctx context.Context, cd *flaggerv1beta1.Canary, t Target) error {
	if serviceTarget(cd) {
		return nil
	}
	return EnsureServices(ctx, r.client, cd, t)
}

// SetRoutes keeps the apex Service on the primary's pods: plain Services
// cannot split traffic, and, as in Flagger, the apex never points at the
// canary. Only {Primary: 100} is accepted; anything else is a decision
// this router cannot carry out.
func (r *kubernetesRouter) SetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, t Target, routes Routes) error {
	if routes != (Routes{Primary: 100}) {
		return fmt.Errorf("canary %s/%s: the kubernetes provider keeps all traffic on the primary, it cannot route %d/%d%s",
			cd.Namespace, cd.Name, routes.Primary, routes.Canary, map[bool]string{true: " mirrored", false: ""}[routes.Mirrored])
	}
	if serviceTarget(cd) {
		return nil
	}
	if err := checkServiceInputs(cd, t); err != nil {
		return err
	}
	res, err := ensureService(ctx, r.client, cd, t, apexRole(cd, fixed(primarySelector(t))))
	if err != nil {
		return fmt.Errorf("routing Canary %s/%s to the primary: %w", cd.Namespace, cd.Name, err)
	}
	if res != controllerutil.OperationResultNone {
		log.FromContext(ctx).Info("Pointed the apex Service at the primary", "canary", klog.KObj(cd))
	}
	return nil
}

// GetRoutes reads the apex Service's selector: the primary's pods mean
// {Primary: 100}, the canary's {Canary: 100}. A missing apex Service or
// another selector is an error.
func (r *kubernetesRouter) GetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, t Target) (Routes, error) {
	if serviceTarget(cd) {
		return Routes{Primary: 100}, nil
	}
	apex, _, _ := ServiceNames(cd)
	svc := &corev1.Service{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: apex}, svc); err != nil {
		return Routes{}, fmt.Errorf("reading the apex Service %s/%s of Canary %s: %w", cd.Namespace, apex, cd.Name, err)
	}
	switch {
	case maps.Equal(svc.Spec.Selector, primarySelector(t)):
		return Routes{Primary: 100}, nil
	case maps.Equal(svc.Spec.Selector, canarySelector(t)):
		return Routes{Canary: 100}, nil
	}
	return Routes{}, fmt.Errorf("the apex Service %s/%s of Canary %s selects %v, neither the primary's pods nor the canary's",
		cd.Namespace, apex, cd.Name, svc.Spec.Selector)
}

// Finalize points the apex Service at the target's (canary) pods, which
// are being restored as the Canary is deleted with revertOnDeletion. A
// missing apex Service, or one the Canary does not control, is left alone.
func (r *kubernetesRouter) Finalize(ctx context.Context, cd *flaggerv1beta1.Canary, t Target) error {
	logger := log.FromContext(ctx).WithValues("canary", klog.KObj(cd))
	apex, _, _ := ServiceNames(cd)
	svc := &corev1.Service{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: apex}, svc); err != nil {
		if apierrors.IsNotFound(err) {
			logger.Info("No apex Service to restore", "service", apex)
			return nil
		}
		return fmt.Errorf("reading the apex Service %s/%s of Canary %s: %w", cd.Namespace, apex, cd.Name, err)
	}
	if !IsControlledBy(svc, cd) {
		logger.Info("Leaving alone the apex Service, which the Canary does not control", "service", apex)
		return nil
	}
	if err := checkServiceInputs(cd, t); err != nil {
		return err
	}
	if _, err := ensureService(ctx, r.client, cd, t, apexRole(cd, fixed(canarySelector(t)))); err != nil {
		return fmt.Errorf("pointing the apex Service of Canary %s/%s at the target: %w", cd.Namespace, cd.Name, err)
	}
	return nil
}

// serviceTarget reports whether the Canary's target is a Kubernetes
// Service (not a Knative one).
func serviceTarget(cd *flaggerv1beta1.Canary) bool {
	return cd.Spec.TargetRef.Kind == "Service" && !cd.Spec.TargetRef.IsKnativeService()
}
