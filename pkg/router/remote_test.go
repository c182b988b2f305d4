package router_test

import (
	"strings"
	"testing"

	networkingv1beta1 "istio.io/client-go/pkg/apis/networking/v1beta1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	kumav1alpha1 "github.com/sluicedev/sluice/pkg/apis/kuma/v1alpha1"
	traefikv1alpha1 "github.com/sluicedev/sluice/pkg/apis/traefik/v1alpha1"
	"github.com/sluicedev/sluice/pkg/problem"
	"github.com/sluicedev/sluice/pkg/router"
)

// TestMeshCluster_RoutingObjectsGoToTheMeshClusterAndServicesStay plays
// -kubeconfig-service-mesh with two API servers: the Canary, its Services
// and the Ingress-based routing stay in the shared test cluster, while the
// mesh providers' objects go to a second cluster (whose Istio serves
// v1beta1 only), owned through OwnerAnnotation since the Canary is not
// there. It starts an API server, so it is not parallel.
func TestMeshCluster_RoutingObjectsGoToTheMeshClusterAndServicesStay(t *testing.T) {
	mesh := startCluster(t, "v1beta1")
	ns := newNamespace(t)
	ctx := testContext(t)
	if err := mesh.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	canaryRelease := func(s *flaggerv1beta1.CanarySpec) {
		s.Analysis.Iterations, s.Analysis.StepWeight = nil, ptr.To[int32](10)
	}
	cd := newCanary(t, ns, func(s *flaggerv1beta1.CanarySpec) {
		canaryRelease(s)
		s.IngressRef = &flaggerv1beta1.IngressReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "public"}
	})
	if err := env.Client.Create(ctx, skipperIngress(ns)); err != nil {
		t.Fatal(err)
	}
	deps := router.Deps{Client: env.Client, MeshClient: mesh}
	ensureServices(t, cd, podinfo)
	split := router.Routes{Primary: 80, Canary: 20}
	for _, provider := range []string{flaggerv1beta1.ProviderIstio, flaggerv1beta1.ProviderTraefik, flaggerv1beta1.ProviderKuma, flaggerv1beta1.ProviderSkipper} {
		r, err := router.New(provider, deps)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Reconcile(ctx, cd, podinfo); err != nil {
			t.Fatalf("%s: Reconcile: %v", provider, err)
		}
		if err := r.SetRoutes(ctx, cd, podinfo, split); err != nil {
			t.Fatalf("%s: SetRoutes: %v", provider, err)
		}
		if got, err := r.GetRoutes(ctx, cd, podinfo); err != nil || got != split {
			t.Errorf("%s: GetRoutes = %+v, %v; want %+v", provider, got, err, split)
		}
	}
	t.Cleanup(func() {
		_ = mesh.Delete(ctx, &kumav1alpha1.TrafficRoute{ObjectMeta: metav1.ObjectMeta{Name: "podinfo"}})
	})

	// The mesh providers' objects are in the mesh cluster, not here, and
	// name their Canary in an annotation, with no owner reference the mesh
	// cluster's garbage collector would act on.
	owner := ns + "/podinfo"
	for _, obj := range []client.Object{
		&networkingv1beta1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns}},
		&networkingv1beta1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-primary", Namespace: ns}},
		&traefikv1alpha1.TraefikService{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns}},
		&kumav1alpha1.TrafficRoute{ObjectMeta: metav1.ObjectMeta{Name: "podinfo"}},
	} {
		if err := mesh.Get(ctx, objectKey(obj), obj); err != nil {
			t.Errorf("%T %s in the mesh cluster: %v", obj, obj.GetName(), err)
			continue
		}
		if got := obj.GetAnnotations()[router.OwnerAnnotation]; got != owner || len(obj.GetOwnerReferences()) != 0 {
			t.Errorf("%T %s: owner annotation %q, owner references %v; want %q and none", obj, obj.GetName(), got, obj.GetOwnerReferences(), owner)
		}
		if obj.GetNamespace() != "" {
			if err := env.Client.Get(ctx, objectKey(obj), obj.DeepCopyObject().(client.Object)); err == nil || apierrors.IsNotFound(err) == false && !strings.Contains(err.Error(), "no matches for kind") {
				t.Errorf("%T %s exists in the Canary's cluster too (%v)", obj, obj.GetName(), err)
			}
		}
	}
	// Services and the skipper Ingress stay in the Canary's cluster.
	getService(t, ns, "podinfo-primary")
	getIngress(t, ns, "public-canary")
	for _, obj := range []client.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-primary", Namespace: ns}},
		&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "public-canary", Namespace: ns}},
	} {
		if err := mesh.Get(ctx, objectKey(obj), obj); !apierrors.IsNotFound(err) {
			t.Errorf("%T %s in the mesh cluster: %v, want not found", obj, obj.GetName(), err)
		}
	}

	istio, err := router.New(flaggerv1beta1.ProviderIstio, deps)
	if err != nil {
		t.Fatal(err)
	}
	// A user's edit in the mesh cluster is reported, then reverted.
	vs := &networkingv1beta1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns}}
	if err := mesh.Patch(ctx, vs, client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"gateways":["elsewhere"],"http":[{"name":"default","route":[`+
		`{"destination":{"host":"podinfo-primary"},"weight":50},{"destination":{"host":"podinfo-canary"},"weight":50}]}]}}`)), client.FieldOwner("someone-else")); err != nil {
		t.Fatal(err)
	}
	if got, err := istio.GetRoutes(ctx, cd, podinfo); err != nil || got != (router.Routes{Primary: 50, Canary: 50}) {
		t.Errorf("GetRoutes after the edit = %+v, %v; want 50/50", got, err)
	}
	if err := istio.SetRoutes(ctx, cd, podinfo, split); err != nil {
		t.Fatal(err)
	}
	if err := mesh.Get(ctx, objectKey(vs), vs); err != nil {
		t.Fatal(err)
	}
	if len(vs.Spec.Gateways) != 1 || vs.Spec.Gateways[0] != "mesh" || vs.Annotations[router.OwnerAnnotation] != owner {
		t.Errorf("after SetRoutes gateways %v, owner %q; want [mesh] and %q", vs.Spec.Gateways, vs.Annotations[router.OwnerAnnotation], owner)
	}

	// Another Canary with the same apex name may not take the objects over.
	other := cd.DeepCopy()
	other.Name, other.ResourceVersion, other.UID = "other", "", ""
	if err := env.Client.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := istio.Reconcile(ctx, other, podinfo); !problem.Is(err, problem.NotOwned) {
		t.Errorf("Reconcile of another Canary: error = %v, want NotOwned", err)
	}

	// A Canary deleted and created again owns what its predecessor left,
	// since the mesh cluster knows it by name.
	if err := env.Client.Delete(ctx, cd); err != nil {
		t.Fatal(err)
	}
	again := newCanary(t, ns, canaryRelease)
	if again.UID == cd.UID {
		t.Fatal("the Canary created again has the old UID")
	}
	if err := istio.Reconcile(ctx, again, podinfo); err != nil {
		t.Errorf("Reconcile of the Canary created again: %v", err)
	}
}
