package router

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// The baseline (analysis.baseline) is a copy of the primary that runs
// beside the canary during an analysis, with pods labelled
// <label>=<value>-baseline. While it runs it has its own Service,
// <apex>-baseline, and the routers that render it (istio, gatewayapi) give
// it a third weighted destination: Routes.Baseline.

// baselineRouter is implemented by the routers that can send a share of
// the traffic to the baseline.
type baselineRouter interface {
	rendersBaseline()
}

// SupportsBaseline reports whether a router can route traffic to a
// baseline (analysis.baseline).
func SupportsBaseline(r Interface) bool {
	_, ok := r.(baselineRouter)
	return ok
}

// wantsBaseline reports whether the Canary asks for a baseline.
func wantsBaseline(cd *flaggerv1beta1.Canary) bool {
	return cd.Spec.Analysis != nil && cd.Spec.Analysis.Baseline
}

// BaselineServiceName returns the name of the baseline Service of a
// Canary: <apex>-baseline.
func BaselineServiceName(cd *flaggerv1beta1.Canary) string {
	apex, _, _ := ServiceNames(cd)
	return apex + "-baseline"
}

// baselineSelector selects the baseline's pods.
func baselineSelector(t Target) map[string]string {
	return map[string]string{t.SelectorLabel: t.SelectorValue + "-baseline"}
}

// EnsureBaselineService creates or updates the ClusterIP Service
// <apex>-baseline, owned by the Canary, which selects the baseline's pods.
// It has the ports of the other Services and the labels and annotations
// of spec.service.primary, since the baseline runs the primary's version.
func EnsureBaselineService(ctx context.Context, c client.Client, cd *flaggerv1beta1.Canary, t Target) error {
	if err := checkServiceInputs(cd, t); err != nil {
		return err
	}
	role := serviceRole{name: BaselineServiceName(cd), meta: cd.Spec.Service.Primary, headless: cd.Spec.Service.Headless, selector: fixed(baselineSelector(t))}
	if _, err := ensureService(ctx, c, cd, t, role); err != nil {
		return fmt.Errorf("ensuring the baseline Service of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	return nil
}

// RemoveBaselineService deletes <apex>-baseline when the Canary controls it.
func RemoveBaselineService(ctx context.Context, c client.Client, cd *flaggerv1beta1.Canary) error {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: BaselineServiceName(cd), Namespace: cd.Namespace}}
	return deleteOwned(ctx, c, cd, svc, "Service")
}

// deleteOwned deletes obj, which names an object, when it exists and the
// Canary controls it; the deletion is conditional on the UID read, so that
// an object created anew under the name is left alone.
func deleteOwned(ctx context.Context, c client.Client, cd *flaggerv1beta1.Canary, obj client.Object, kind string) error {
	key := client.ObjectKeyFromObject(obj)
	if err := c.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading %s %s: %w", kind, key, err)
	}
	if !IsControlledBy(obj, cd) {
		return nil
	}
	uid := obj.GetUID()
	if err := c.Delete(ctx, obj, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting %s %s: %w", kind, key, err)
	}
	log.FromContext(ctx).Info("Deleted object", "kind", kind, "object", key)
	return nil
}
