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

// hpaScaler operates a HorizontalPodAutoscaler (read as autoscaling/v2,
// whatever the apiVersion of spec.autoscalerRef). An HPA needs no pause: it
// does not scale a workload whose replica count is zero.
type hpaScaler struct{ deps Deps }

func newHPAScaler(deps Deps) autoscaler { return &hpaScaler{deps: deps} }

// read implements autoscaler.
func (h *hpaScaler) read(ctx context.Context, cd *flaggerv1beta1.Canary) (*scaler, error) {
	ref := cd.Spec.AutoscalerRef
	hpa, err := h.get(ctx, cd.Namespace, ref.Name)
	if apierrors.IsNotFound(err) {
		return nil, problem.New(problem.AutoscalerNotFound,
			"HorizontalPodAutoscaler %s not found in namespace %s: create it or fix spec.autoscalerRef", ref.Name, cd.Namespace)
	}
	if err != nil {
		return nil, err
	}
	return &scaler{obj: hpa, desired: hpa.Status.DesiredReplicas, primaryMin: ptr.Deref(primaryHPASpec(cd, hpa).MinReplicas, 1)}, nil
}

// get reads an HPA. The error wraps the API error, so apierrors.IsNotFound
// still recognises it.
func (h *hpaScaler) get(ctx context.Context, namespace, name string) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	// Autoscalers are few, so they are read from the cache: no API request
	// per reconcile.
	if err := h.deps.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, hpa); err != nil {
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

// syncPrimary implements autoscaler for <hpa>-primary.
func (h *hpaScaler) syncPrimary(ctx context.Context, cd *flaggerv1beta1.Canary, s *scaler, update bool) error {
	hpa := s.obj.(*autoscalingv2.HorizontalPodAutoscaler)
	want := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{
			Name:        PrimaryName(hpa.Name),
			Namespace:   hpa.Namespace,
			Labels:      filterMeta(hpa.Labels, h.deps.Config.IncludeLabelPrefix),
			Annotations: filterMeta(hpa.Annotations, h.deps.Config.IncludeLabelPrefix),
		},
		Spec: primaryHPASpec(cd, hpa),
	}
	return syncPrimaryCopy(ctx, h.deps.Client, cd, want, hpaKind, update, h.get,
		func(cur, want *autoscalingv2.HorizontalPodAutoscaler) { cur.Spec = want.Spec })
}

// raisePrimaryMin implements autoscaler.
func (h *hpaScaler) raisePrimaryMin(ctx context.Context, cd *flaggerv1beta1.Canary, n int32) error {
	cur, err := h.get(ctx, cd.Namespace, PrimaryName(cd.Spec.AutoscalerRef.Name))
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
	_, err = patchIfChanged(ctx, h.deps.Client, orig, cur, hpaKind)
	return err
}

// minReplicas implements autoscaler.
func (h *hpaScaler) minReplicas(ctx context.Context, cd *flaggerv1beta1.Canary) (int32, error) {
	hpa, err := h.get(ctx, cd.Namespace, cd.Spec.AutoscalerRef.Name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return ptr.Deref(hpa.Spec.MinReplicas, 1), nil
}

// pause implements autoscaler: an HPA leaves a workload at zero replicas
// alone, so there is nothing to pause.
func (h *hpaScaler) pause(context.Context, *flaggerv1beta1.Canary, bool) error { return nil }
