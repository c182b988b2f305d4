package canary

import (
	"context"
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
)

// Autoscaler kinds of spec.autoscalerRef.
const (
	hpaKind          = "HorizontalPodAutoscaler"
	scaledObjectKind = "ScaledObject"
)

// readAutoscaler reads the target's HorizontalPodAutoscaler (as
// autoscaling/v2, whatever the apiVersion of spec.autoscalerRef) with the
// direct Reader. It returns nil without an autoscalerRef, and an
// *problem.Problem when the autoscaler is missing or of a kind Sluice does not
// operate.
func (e *engine) readAutoscaler(ctx context.Context, cd *flaggerv1beta1.Canary) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	ref := cd.Spec.AutoscalerRef
	if ref == nil {
		return nil, nil
	}
	switch ref.Kind {
	case hpaKind:
	case scaledObjectKind:
		return nil, problem.New(problem.UnsupportedAutoscaler,
			"autoscalerRef %s %s: ScaledObject (KEDA) is not supported yet: use a HorizontalPodAutoscaler or remove spec.autoscalerRef", ref.Kind, ref.Name)
	default:
		return nil, problem.New(problem.UnsupportedAutoscaler,
			"autoscalerRef %s %s is not supported: use a HorizontalPodAutoscaler or remove spec.autoscalerRef", ref.Kind, ref.Name)
	}
	hpa, err := e.getHPA(ctx, cd.Namespace, ref.Name)
	if apierrors.IsNotFound(err) {
		return nil, problem.New(problem.AutoscalerNotFound,
			"HorizontalPodAutoscaler %s not found in namespace %s: create it or fix spec.autoscalerRef", ref.Name, cd.Namespace)
	}
	return hpa, err
}

// getHPA reads an HPA with the direct Reader. The error wraps the API
// error, so apierrors.IsNotFound still recognises it.
func (e *engine) getHPA(ctx context.Context, namespace, name string) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	// Autoscalers are few, so they are read from the cache: no API request
	// per reconcile.
	if err := e.deps.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, hpa); err != nil {
		return nil, fmt.Errorf("reading HorizontalPodAutoscaler %s/%s: %w", namespace, name, err)
	}
	return hpa, nil
}

// primaryHPASpec returns the spec of the primary's autoscaler: the
// target's, scaling <target>-primary, with the replica bounds of
// spec.autoscalerRef.primaryScalerReplicas where set.
func primaryHPASpec(cd *flaggerv1beta1.Canary, hpa *autoscalingv2.HorizontalPodAutoscaler) autoscalingv2.HorizontalPodAutoscalerSpec {
	spec := *hpa.Spec.DeepCopy()
	spec.ScaleTargetRef = autoscalingv2.CrossVersionObjectReference{
		APIVersion: cd.Spec.TargetRef.APIVersion,
		Kind:       cd.Spec.TargetRef.Kind,
		Name:       PrimaryName(cd.Spec.TargetRef.Name),
	}
	if r := cd.Spec.AutoscalerRef.PrimaryScalerReplicas; r != nil {
		if r.MinReplicas != nil {
			spec.MinReplicas = ptr.To(*r.MinReplicas)
		}
		if r.MaxReplicas != nil {
			spec.MaxReplicas = *r.MaxReplicas
		}
	}
	return spec
}

// syncPrimaryHPA creates <hpa>-primary when it is missing and, when update
// is set, copies the target autoscaler's spec into it (which undoes a
// minimum raised by ScalePrimaryAtLeast).
func (e *engine) syncPrimaryHPA(ctx context.Context, cd *flaggerv1beta1.Canary, hpa *autoscalingv2.HorizontalPodAutoscaler, update bool) error {
	want := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{
			Name:        PrimaryName(hpa.Name),
			Namespace:   hpa.Namespace,
			Labels:      filterMeta(hpa.Labels, e.deps.Config.IncludeLabelPrefix),
			Annotations: filterMeta(hpa.Annotations, e.deps.Config.IncludeLabelPrefix),
		},
		Spec: primaryHPASpec(cd, hpa),
	}
	cur, err := e.getHPA(ctx, want.Namespace, want.Name)
	if apierrors.IsNotFound(err) {
		err := createOwned(ctx, e.deps.Client, cd, want, hpaKind)
		return err
	}
	if err != nil || !update {
		return err
	}
	orig := cur.DeepCopy()
	cur.Labels = mergeMeta(cur.Labels, want.Labels)
	cur.Annotations = mergeMeta(cur.Annotations, want.Annotations)
	cur.Spec = want.Spec
	_, err = patchIfChanged(ctx, e.deps.Client, orig, cur, hpaKind)
	return err
}

// SyncAutoscaler copies the target HPA's spec to <hpa>-primary.
func (e *engine) SyncAutoscaler(ctx context.Context, cd *flaggerv1beta1.Canary) error {
	hpa, err := e.readAutoscaler(ctx, cd)
	if err != nil || hpa == nil {
		return err
	}
	return e.syncPrimaryHPA(ctx, cd, hpa, true)
}

// raisePrimaryHPAMin raises the minimum of <hpa>-primary to n, capped at
// its maximum. It never lowers it, and does nothing without an HPA or
// before the primary HPA exists.
func (e *engine) raisePrimaryHPAMin(ctx context.Context, cd *flaggerv1beta1.Canary, n int32) error {
	ref := cd.Spec.AutoscalerRef
	if ref == nil || ref.Kind != hpaKind {
		return nil
	}
	cur, err := e.getHPA(ctx, cd.Namespace, PrimaryName(ref.Name))
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	want := min(n, cur.Spec.MaxReplicas)
	if ptr.Deref(cur.Spec.MinReplicas, 1) >= want {
		return nil
	}
	orig := cur.DeepCopy()
	cur.Spec.MinReplicas = ptr.To(want)
	_, err = patchIfChanged(ctx, e.deps.Client, orig, cur, hpaKind)
	return err
}

// hpaMinReplicas returns the minimum of the target's HPA, or 0 when there
// is none (or it is gone).
func (e *engine) hpaMinReplicas(ctx context.Context, cd *flaggerv1beta1.Canary) (int32, error) {
	ref := cd.Spec.AutoscalerRef
	if ref == nil || ref.Kind != hpaKind {
		return 0, nil
	}
	hpa, err := e.getHPA(ctx, cd.Namespace, ref.Name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return ptr.Deref(hpa.Spec.MinReplicas, 1), nil
}
