package router_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/router"
)

// TestIstioRouter_WritesTheNewestVersionTheServerServes runs the istio
// router against API servers whose Istio CRDs serve only v1 (Istio 1.22
// and later, without the older versions) and only v1beta1 (Istio before
// 1.22). Each server costs a few seconds, so the test is not parallel.
func TestIstioRouter_WritesTheNewestVersionTheServerServes(t *testing.T) {
	for _, version := range []string{"v1", "v1beta1"} {
		t.Run(version, func(t *testing.T) {
			c := startCluster(t, version)
			ctx := testContext(t)
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "test"}}
			if err := c.Create(ctx, ns); err != nil {
				t.Fatal(err)
			}
			cd := &flaggerv1beta1.Canary{
				ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"},
				Spec: flaggerv1beta1.CanarySpec{
					TargetRef: flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
					Service:   flaggerv1beta1.CanaryService{Port: 9898},
					Analysis:  &flaggerv1beta1.CanaryAnalysis{Interval: "1m", Threshold: 5, StepWeight: ptr.To[int32](10)},
				},
			}
			if err := c.Create(ctx, cd); err != nil {
				t.Fatal(err)
			}
			r, err := router.New(flaggerv1beta1.ProviderIstio, router.Deps{Client: c})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Reconcile(ctx, cd, podinfo); err != nil {
				t.Fatalf("Reconcile: %v", err)
			}
			if err := r.SetRoutes(ctx, cd, podinfo, router.Routes{Primary: 90, Canary: 10}); err != nil {
				t.Fatalf("SetRoutes: %v", err)
			}
			if got, err := r.GetRoutes(ctx, cd, podinfo); err != nil || got != (router.Routes{Primary: 90, Canary: 10}) {
				t.Errorf("GetRoutes = %+v, %v; want 90/10", got, err)
			}
			vs := &unstructured.Unstructured{}
			vs.SetAPIVersion("networking.istio.io/" + version)
			vs.SetKind("VirtualService")
			if err := c.Get(ctx, client.ObjectKey{Namespace: "test", Name: "podinfo"}, vs); err != nil {
				t.Fatalf("reading the VirtualService in %s: %v", version, err)
			}
			http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
			route, _ := http[len(http)-1].(map[string]any)["route"].([]any)
			if len(route) != 2 || route[1].(map[string]any)["weight"] != int64(10) {
				t.Errorf("the VirtualService's default route is %v, want the canary at weight 10", route)
			}
			for _, name := range []string{"podinfo-primary", "podinfo-canary"} {
				dr := &unstructured.Unstructured{}
				dr.SetAPIVersion("networking.istio.io/" + version)
				dr.SetKind("DestinationRule")
				if err := c.Get(ctx, client.ObjectKey{Namespace: "test", Name: name}, dr); err != nil {
					t.Errorf("reading the DestinationRule %s in %s: %v", name, version, err)
				}
			}
			// The other version is indeed not served.
			other := map[string]string{"v1": "v1beta1", "v1beta1": "v1"}[version]
			if _, err := c.RESTMapper().RESTMapping(vs.GroupVersionKind().GroupKind(), other); !meta.IsNoMatchError(err) {
				t.Errorf("the server serves VirtualService %s too (%v); the test needs it not to", other, err)
			}
		})
	}
}

// BenchmarkIstioAPIOf measures the choice of the Istio API version that
// every call of the istio router makes: the version kept for the client's
// REST mapper (going through the mapper's kinds, done once a minute, costs
// about 0.1 ms on the test API server with Istio's and Gateway API's CRDs).
func BenchmarkIstioAPIOf(b *testing.B) {
	c, writes := countingClient(&testing.T{})
	if v, err := router.IstioAPIVersion(c); err != nil || v != "v1" {
		b.Fatalf("IstioAPIVersion = %q, %v; want v1", v, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = router.IstioAPIVersion(c)
	}
	if n := writes.Load(); n != 0 {
		b.Errorf("%d writes", n)
	}
}
