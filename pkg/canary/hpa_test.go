package canary_test

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

func primaryHPA(f *fixture) *autoscalingv2.HorizontalPodAutoscaler {
	f.t.Helper()
	return f.get("podinfo-primary", &autoscalingv2.HorizontalPodAutoscaler{}).(*autoscalingv2.HorizontalPodAutoscaler)
}

func TestEnsurePrimary_CopiesHPAForPrimary(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(deployment(), hpa(2, 6))
	cd := f.canary("Deployment", withHPA, func(cd *flaggerv1beta1.Canary) {
		cd.Spec.AutoscalerRef.PrimaryScalerReplicas = &flaggerv1beta1.ScalerReplicas{MinReplicas: ptr.To[int32](3)}
	})

	f.must(f.workload(cd).EnsurePrimary(f.ctx(), cd))

	h := primaryHPA(f)
	ref := h.Spec.ScaleTargetRef
	if ref.Kind != "Deployment" || ref.Name != "podinfo-primary" || ref.APIVersion != "apps/v1" {
		t.Errorf("scaleTargetRef = %+v, want apps/v1 Deployment podinfo-primary", ref)
	}
	if ptr.Deref(h.Spec.MinReplicas, 0) != 3 || h.Spec.MaxReplicas != 6 {
		t.Errorf("bounds = %d..%d, want 3..6 (primaryScalerReplicas overrides the minimum)", ptr.Deref(h.Spec.MinReplicas, 0), h.Spec.MaxReplicas)
	}
	if len(h.Spec.Metrics) != 1 || ptr.Deref(h.Spec.Metrics[0].Resource.Target.AverageUtilization, 0) != 70 {
		t.Errorf("metrics = %+v, want the target's", h.Spec.Metrics)
	}
	assertControlledBy(t, h, cd)
	if got := replicasOf(f, "podinfo-primary"); got != 3 {
		t.Errorf("primary replicas = %d, want the target's 3 on create", got)
	}
}

func TestPromote_UpdatesPrimaryHPASpec(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(deployment(), hpa(2, 6))
	cd := f.canary("Deployment", withHPA)
	w := f.workload(cd)
	f.must(w.EnsurePrimary(f.ctx(), cd))
	update(f, "podinfo", &autoscalingv2.HorizontalPodAutoscaler{}, func(h *autoscalingv2.HorizontalPodAutoscaler) {
		h.Spec.MaxReplicas = 9
	})

	f.must(w.EnsurePrimary(f.ctx(), cd))
	if got := primaryHPA(f).Spec.MaxReplicas; got != 6 {
		t.Errorf("after EnsurePrimary: maxReplicas = %d, want 6 until Promote", got)
	}
	f.must(f.promote(w, cd))
	if got := primaryHPA(f).Spec.MaxReplicas; got != 9 {
		t.Errorf("after Promote: maxReplicas = %d, want 9", got)
	}
}

func TestObserve_ReportsAutoscalerDesiredReplicas(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	h := hpa(2, 6)
	f.create(deployment(), h)
	h.Status = autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 3, DesiredReplicas: 5}
	f.must(k8s.Status().Update(f.ctx(), h))
	cd := f.canary("Deployment", withHPA)

	st := f.observe(f.workload(cd), cd)

	if st.AutoscalerDesired != 5 {
		t.Errorf("AutoscalerDesired = %d, want 5", st.AutoscalerDesired)
	}
}

func TestEnsurePrimary_WithHPAUsesItsMinimumWhenTargetIsAtZero(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(deployment(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](0) }), hpa(4, 6))
	cd := f.canary("Deployment", withHPA)

	f.must(f.workload(cd).EnsurePrimary(f.ctx(), cd))

	if got := replicasOf(f, "podinfo-primary"); got != 4 {
		t.Errorf("primary replicas = %d, want the HPA minimum 4", got)
	}
}
