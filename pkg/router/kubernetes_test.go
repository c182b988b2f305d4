package router_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/router"
)

// kubernetesRouter returns the router of provider kubernetes with a
// counting client.
func kubernetesRouter(t *testing.T) (router.Interface, func() int32) {
	t.Helper()
	c, writes := countingClient(t)
	r, err := router.New(flaggerv1beta1.ProviderKubernetes, router.Deps{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	return r, func() int32 { return writes.Swap(0) }
}

func TestKubernetesRouter_KeepsTheApexOnThePrimary(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	cd := newCanary(t, ns, nil)
	r, writes := kubernetesRouter(t)
	ctx := testContext(t)
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatal(err)
	}
	writes()
	// Someone points the apex at the canary; the router puts it back.
	patchAs(t, getService(t, ns, "podinfo"), `{"spec":{"selector":{"app":"podinfo"}}}`)
	if got, err := r.GetRoutes(ctx, cd, podinfo); err != nil || got != (router.Routes{Canary: 100}) {
		t.Fatalf("GetRoutes of an apex on the canary = %+v, %v", got, err)
	}
	if err := r.SetRoutes(ctx, cd, podinfo, router.Routes{Primary: 100}); err != nil {
		t.Fatal(err)
	}
	if got := writes(); got != 1 {
		t.Errorf("%d writes restoring the apex, want 1", got)
	}
	if sel := getService(t, ns, "podinfo").Spec.Selector["app"]; sel != "podinfo-primary" {
		t.Errorf("apex selects app=%s, want podinfo-primary", sel)
	}
	if err := r.SetRoutes(ctx, cd, podinfo, router.Routes{Primary: 100}); err != nil || writes() != 0 {
		t.Errorf("setting the same routes again: err %v or a write", err)
	}
}

// Flagger's kubernetes provider never points the apex Service at the
// canary: blue/green is tested through <apex>-canary and the primary's
// rolling update is the switch.
func TestKubernetesRouter_RefusesAnySplitButAllOnThePrimary(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	cd := newCanary(t, ns, nil)
	r, writes := kubernetesRouter(t)
	ctx := testContext(t)
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatal(err)
	}
	writes()
	for _, tc := range []struct {
		routes  router.Routes
		wantErr string
	}{
		{routes: router.Routes{Canary: 100}, wantErr: "cannot route 0/100"},
		{routes: router.Routes{Primary: 50, Canary: 50}, wantErr: "cannot route 50/50"},
		{routes: router.Routes{Primary: 90, Canary: 10}, wantErr: "cannot route 90/10"},
		{routes: router.Routes{}, wantErr: "cannot route 0/0"},
		{routes: router.Routes{Primary: 100, Mirrored: true}, wantErr: "cannot route 100/0 mirrored"},
	} {
		err := r.SetRoutes(ctx, cd, podinfo, tc.routes)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("SetRoutes(%+v) error = %v, want one containing %q", tc.routes, err, tc.wantErr)
		}
	}
	if got := writes(); got != 0 {
		t.Errorf("refused routes wrote %d times", got)
	}
}

func TestKubernetesRouter_GetRoutesFailsWithoutKnownApexSelector(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	cd := newCanary(t, ns, nil)
	r, _ := kubernetesRouter(t)
	ctx := testContext(t)
	if _, err := r.GetRoutes(ctx, cd, podinfo); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("GetRoutes without apex Service: error = %v, want not found", err)
	}
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatal(err)
	}
	patchAs(t, getService(t, ns, "podinfo"), `{"spec":{"selector":{"app":"elsewhere"}}}`)
	if _, err := r.GetRoutes(ctx, cd, podinfo); err == nil || !strings.Contains(err.Error(), "neither the primary's pods nor the canary's") {
		t.Errorf("GetRoutes with a foreign selector: error = %v", err)
	}
}

func TestKubernetesRouter_FinalizePointsApexAtTarget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// setup prepares the namespace and returns the apex selector
		// expected after Finalize, or "" when there is no apex Service.
		setup func(t *testing.T, r router.Interface, cd *flaggerv1beta1.Canary) string
	}{
		{
			name: "owned apex on the primary",
			setup: func(t *testing.T, r router.Interface, cd *flaggerv1beta1.Canary) string {
				if err := r.Reconcile(testContext(t), cd, podinfo); err != nil {
					t.Fatal(err)
				}
				return "podinfo"
			},
		},
		{
			name:  "no apex",
			setup: func(*testing.T, router.Interface, *flaggerv1beta1.Canary) string { return "" },
		},
		{
			name: "apex of someone else",
			setup: func(t *testing.T, _ router.Interface, cd *flaggerv1beta1.Canary) string {
				svc := &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: cd.Namespace, OwnerReferences: []metav1.OwnerReference{
						{APIVersion: "apps/v1", Kind: "Deployment", Name: "other", UID: "1234", Controller: ptr.To(true)},
					}},
					Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "mine"}, Ports: []corev1.ServicePort{{Port: 80}}},
				}
				if err := env.Client.Create(t.Context(), svc); err != nil {
					t.Fatal(err)
				}
				return "mine"
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			cd := newCanary(t, ns, func(s *flaggerv1beta1.CanarySpec) { s.RevertOnDeletion = true })
			r, _ := kubernetesRouter(t)
			want := tc.setup(t, r, cd)
			if err := r.Finalize(testContext(t), cd, podinfo); err != nil {
				t.Fatalf("Finalize: %v", err)
			}
			if want == "" {
				svc := &corev1.Service{}
				if err := env.Client.Get(t.Context(), objectKey(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns}}), svc); err == nil {
					t.Errorf("Finalize created the apex Service")
				}
				return
			}
			if got := getService(t, ns, "podinfo").Spec.Selector["app"]; got != want {
				t.Errorf("apex selects app=%s, want %s", got, want)
			}
		})
	}
}
