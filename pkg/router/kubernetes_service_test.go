package router_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/router"
)

// TestKubernetesRouter_RoutesNothingForAServiceTarget checks that, as in
// Flagger, the kubernetes provider leaves a Kubernetes Service target and
// its copies alone: the target is the apex, its owner's, and the copies'
// selectors are the target's.
func TestKubernetesRouter_RoutesNothingForAServiceTarget(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	target := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "podinfo"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 9898, TargetPort: intstr.FromInt32(9898)}}},
	}
	if err := env.Client.Create(t.Context(), target); err != nil {
		t.Fatal(err)
	}
	cd := newCanary(t, ns, func(s *flaggerv1beta1.CanarySpec) {
		s.TargetRef = flaggerv1beta1.LocalObjectReference{APIVersion: "v1", Kind: "Service", Name: "podinfo"}
	})
	r, writes := kubernetesRouter(t)
	ctx := testContext(t)
	none := router.Target{}

	if err := r.Reconcile(ctx, cd, none); err != nil {
		t.Errorf("Reconcile: %v", err)
	}
	if err := r.SetRoutes(ctx, cd, none, router.Routes{Primary: 100}); err != nil {
		t.Errorf("SetRoutes all on the primary: %v", err)
	}
	if got, err := r.GetRoutes(ctx, cd, none); err != nil || got != (router.Routes{Primary: 100}) {
		t.Errorf("GetRoutes = %+v, %v; want all on the primary", got, err)
	}
	if err := r.SetRoutes(ctx, cd, none, router.Routes{Canary: 100}); err == nil {
		t.Error("SetRoutes all on the canary: no error, want the refusal of any split")
	}
	if err := r.Finalize(ctx, cd, none); err != nil {
		t.Errorf("Finalize: %v", err)
	}
	if n := writes(); n != 0 {
		t.Errorf("%d writes, want none", n)
	}
	if got := getService(t, ns, "podinfo"); got.Spec.Selector["app"] != "podinfo" || len(got.OwnerReferences) != 0 {
		t.Errorf("target Service: selector %v, owners %v; want it untouched", got.Spec.Selector, got.OwnerReferences)
	}
}
