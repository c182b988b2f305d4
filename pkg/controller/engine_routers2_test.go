package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	networkingv1beta1 "istio.io/client-go/pkg/apis/networking/v1beta1"
	corev1 "k8s.io/api/core/v1"
	networkingk8sv1 "k8s.io/api/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/internal/testenv"
	apisixv2 "github.com/sluicedev/sluice/pkg/apis/apisix/v2"
	appmeshv1beta1 "github.com/sluicedev/sluice/pkg/apis/appmesh/v1beta1"
	appmeshv1beta2 "github.com/sluicedev/sluice/pkg/apis/appmesh/v1beta2"
	gloogatewayv1 "github.com/sluicedev/sluice/pkg/apis/gloo/gateway/v1"
	kumav1alpha1 "github.com/sluicedev/sluice/pkg/apis/kuma/v1alpha1"
	"github.com/sluicedev/sluice/pkg/router"
)

func glooWeight(h *harness) int32 {
	var rt gloogatewayv1.RouteTable
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, &rt); err != nil || len(rt.Spec.Routes) == 0 {
		return -1
	}
	action := rt.Spec.Routes[len(rt.Spec.Routes)-1].RouteAction
	if action == nil || action.Multi == nil {
		return -1
	}
	for _, d := range action.Multi.Destinations {
		if d.Destination.Upstream.Name == h.ns+"-podinfo-canaryupstream-9898" {
			return int32(d.Weight)
		}
	}
	return -1
}

func kumaWeight(h *harness) int32 {
	var tr kumav1alpha1.TrafficRoute
	if err := h.c.Get(context.Background(), client.ObjectKey{Name: h.ns}, &tr); err != nil || tr.Spec.Conf == nil {
		return -1
	}
	for _, s := range tr.Spec.Conf.Split {
		if s.Destination["kuma.io/service"] == fmt.Sprintf("%s-canary_%s_svc_9898", h.ns, h.ns) {
			return int32(s.Weight)
		}
	}
	return -1
}

func apisixWeight(h *harness) int32 {
	var route apisixv2.ApisixRoute
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo-podinfo-canary"}, &route); err != nil || len(route.Spec.HTTP) == 0 {
		return -1
	}
	for _, b := range route.Spec.HTTP[0].Backends {
		if b.ServiceName == "podinfo-canary" && b.Weight != nil {
			return int32(*b.Weight)
		}
	}
	return -1
}

func skipperWeight(h *harness) int32 {
	var ing networkingk8sv1.Ingress
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo-canary"}, &ing); err != nil {
		return -1
	}
	var weights map[string]int32
	if err := json.Unmarshal([]byte(ing.Annotations["zalando.org/backend-weights"]), &weights); err != nil {
		return -1
	}
	if w, ok := weights["podinfo-canary"]; ok {
		return w
	}
	return -1
}

func appMeshWeight(h *harness) int32 {
	var vs appmeshv1beta1.VirtualService
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo." + h.ns}, &vs); err != nil || len(vs.Spec.Routes) == 0 || vs.Spec.Routes[0].HTTP == nil {
		return -1
	}
	for _, t := range vs.Spec.Routes[0].HTTP.Action.WeightedTargets {
		if t.VirtualNodeName == "podinfo-canary" {
			return int32(t.Weight)
		}
	}
	return -1
}

func appMeshV1beta2Weight(h *harness) int32 {
	var vr appmeshv1beta2.VirtualRouter
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, &vr); err != nil || len(vr.Spec.Routes) == 0 || vr.Spec.Routes[0].HTTPRoute == nil {
		return -1
	}
	for _, t := range vr.Spec.Routes[0].HTTPRoute.Action.WeightedTargets {
		if t.VirtualNodeRef != nil && t.VirtualNodeRef.Name == "podinfo-canary" {
			return int32(t.Weight)
		}
	}
	return -1
}

// userApisixRoute is the ApisixRoute a user owns for the APISIX provider.
func userApisixRoute() *apisixv2.ApisixRoute {
	return &apisixv2.ApisixRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo"},
		Spec: apisixv2.ApisixRouteSpec{HTTP: []apisixv2.HTTPRoute{{
			Name:     "method",
			Match:    &apiextensionsv1.JSON{Raw: []byte(`{"hosts":["app.example.com"],"paths":["/*"]}`)},
			Backends: []apisixv2.Backend{{ServiceName: "podinfo", ServicePort: intstr.FromInt(9898)}},
		}}},
	}
}

// releaseThrough runs a canary release (0 → 20 → 40 → promotion) of the
// Deployment podinfo and checks the canary weights the routing object held
// along the way.
func releaseThrough(t *testing.T, h *harness, provider string, weight weightsOf, mutate func(*flaggerv1beta1.Canary)) {
	t.Helper()
	h.metrics.set(0)
	h.create(newDeployment("podinfo", 1), newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Provider = provider
		cd.Spec.Analysis.Iterations = nil
		cd.Spec.Analysis.StepWeight, cd.Spec.Analysis.MaxWeight = ptr.To[int32](20), ptr.To[int32](40)
		// Each weight is held for an interval, while the test polls the
		// routing object: two seconds, so that a loaded machine stalling
		// the poll for a second does not hide a step.
		cd.Spec.Analysis.Interval = "2s"
		mutate(cd)
	}))
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	// The status is written before the routing objects (write-ahead).
	h.eventually("the routing object after initialization", func() (bool, string) {
		w := weight(h)
		return w == 0, fmt.Sprintf("canary weight %d", w)
	})
	h.setImage("podinfo", "ghcr.io/example/podinfo:6.1.0")
	var seen []int32
	h.eventually("the release to be promoted", func() (bool, string) {
		if w := weight(h); len(seen) == 0 || seen[len(seen)-1] != w {
			seen = append(seen, w)
		}
		cd := h.canary("podinfo")
		return cd.Status.Phase == flaggerv1beta1.CanaryPhaseSucceeded, fmt.Sprintf("%s, weights so far %v", cd.Status.Phase, seen)
	})
	for _, w := range []int32{20, 40} {
		if !slices.Contains(seen, w) {
			t.Errorf("the route never held canary weight %d; weights seen: %v", w, seen)
		}
	}
	if slices.ContainsFunc(seen, func(w int32) bool { return w > 40 }) {
		t.Errorf("the canary weight exceeded maxWeight 40: %v", seen)
	}
	if w := weight(h); w != 0 {
		t.Errorf("after promotion the canary weight is %d, want 0", w)
	}
}

// TestEngine_CanaryReleaseShiftsWeightsThroughEachNewRouter runs a full
// canary release per provider added for Flagger's remaining names. The
// knative provider is missing: its Canaries target a Knative Service, for
// which the engine has no workload yet.
func TestEngine_CanaryReleaseShiftsWeightsThroughEachNewRouter(t *testing.T) {
	tests := []struct {
		provider string
		weight   weightsOf
		setup    func(h *harness)
		mutate   func(*flaggerv1beta1.Canary)
	}{
		{flaggerv1beta1.ProviderGloo, glooWeight, nil, func(*flaggerv1beta1.Canary) {}},
		{flaggerv1beta1.ProviderKuma, kumaWeight, nil, func(cd *flaggerv1beta1.Canary) {
			// TrafficRoutes are cluster-scoped: name the apex after the
			// test's namespace.
			cd.Spec.Service.Name = cd.Namespace
		}},
		{flaggerv1beta1.ProviderAPISIX, apisixWeight, func(h *harness) { h.create(userApisixRoute()) }, func(cd *flaggerv1beta1.Canary) {
			cd.Spec.RouteRef = &flaggerv1beta1.RouteReference{APIVersion: "apisix.apache.org/v2", Kind: "ApisixRoute", Name: "podinfo"}
		}},
		{flaggerv1beta1.ProviderSkipper, skipperWeight, func(h *harness) { h.create(userIngress()) }, func(cd *flaggerv1beta1.Canary) {
			cd.Spec.IngressRef = &flaggerv1beta1.IngressReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "podinfo"}
		}},
		{flaggerv1beta1.ProviderAppMesh, appMeshWeight, nil, func(cd *flaggerv1beta1.Canary) { cd.Spec.Service.MeshName = "global" }},
		{flaggerv1beta1.ProviderAppMeshV1beta2, appMeshV1beta2Weight, nil, func(*flaggerv1beta1.Canary) {}},
	}
	for _, tt := range tests {
		t.Run(tt.provider, func(t *testing.T) {
			t.Parallel() // each provider has its namespace and manager
			h := newHarness(t)
			if tt.setup != nil {
				tt.setup(h)
			}
			if tt.provider == flaggerv1beta1.ProviderKuma {
				t.Cleanup(func() {
					_ = env.Client.Delete(context.Background(), &kumav1alpha1.TrafficRoute{ObjectMeta: metav1.ObjectMeta{Name: h.ns}})
				})
			}
			releaseThrough(t, h, tt.provider, tt.weight, func(cd *flaggerv1beta1.Canary) {
				cd.Namespace = h.ns
				tt.mutate(cd)
			})
		})
	}
}

// TestEngine_RoutingObjectsGoToTheMeshCluster runs an Istio release with
// the reconciler's MeshClient on a second API server, as
// -kubeconfig-service-mesh sets it: the workloads and Services stay in the
// Canary's cluster, the VirtualService is in the mesh cluster, and the
// weights move there.
func TestEngine_RoutingObjectsGoToTheMeshCluster(t *testing.T) {
	mesh, err := testenv.Start(testenv.Options{Istio: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mesh.Stop(); err != nil {
			t.Errorf("stopping the mesh API server: %v", err)
		}
	})
	if err := router.AddToScheme(mesh.Scheme); err != nil {
		t.Fatal(err)
	}
	meshClient, err := client.New(mesh.Config, client.Options{Scheme: mesh.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(r *CanaryReconciler) { r.MeshClient, r.MeshAPIReader = meshClient, meshClient })
	if err := meshClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.ns}}); err != nil {
		t.Fatal(err)
	}
	meshHarness := &harness{t: t, ns: h.ns, c: meshClient}
	releaseThrough(t, h, flaggerv1beta1.ProviderIstio, func(*harness) int32 { return istioWeight(meshHarness) }, func(*flaggerv1beta1.Canary) {})

	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, &networkingv1beta1.VirtualService{}); err == nil {
		t.Error("a VirtualService podinfo exists in the Canary's cluster too")
	}
	var svc corev1.Service
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo-primary"}, &svc); err != nil {
		t.Errorf("the primary Service is not in the Canary's cluster: %v", err)
	}
	if err := meshClient.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo-primary"}, &svc); err == nil {
		t.Error("the primary Service was written to the mesh cluster")
	}
}
