package router_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	smiv1alpha1 "github.com/sluicedev/sluice/pkg/apis/smi/v1alpha1"
	smiv1alpha2 "github.com/sluicedev/sluice/pkg/apis/smi/v1alpha2"
	smiv1alpha3 "github.com/sluicedev/sluice/pkg/apis/smi/v1alpha3"
	"github.com/sluicedev/sluice/pkg/router"
)

// smiProvider describes the provider name of an SMI version; the golden
// files of a version are shared by the providers that write it.
func smiProvider(name, version string, object func() client.Object, spec func(client.Object) any) splitProvider {
	return splitProvider{
		name: name,
		dir:  "smi-" + version,
		spec: func(*flaggerv1beta1.CanarySpec) {},
		object: func(ns string) client.Object {
			obj := object()
			obj.SetName("podinfo")
			obj.SetNamespace(ns)
			return obj
		},
		specOf: func(t *testing.T, obj client.Object) []byte { return specYAML(t, spec(obj)) },
		render: func(cd *flaggerv1beta1.Canary, r router.Routes) (any, error) {
			return router.RenderTrafficSplit(version, cd, r)
		},
		edit: `{"metadata":{"labels":{"edited":"yes"}},"spec":{"service":"elsewhere","backends":[` +
			`{"service":"podinfo-primary","weight":50},{"service":"podinfo-canary","weight":50}]}}`,
	}
}

var smiProviders = func() []splitProvider {
	v1alpha1 := func() client.Object { return &smiv1alpha1.TrafficSplit{} }
	v1alpha1Spec := func(o client.Object) any { return o.(*smiv1alpha1.TrafficSplit).Spec }
	v1alpha2 := func() client.Object { return &smiv1alpha2.TrafficSplit{} }
	v1alpha2Spec := func(o client.Object) any { return o.(*smiv1alpha2.TrafficSplit).Spec }
	v1alpha3 := func() client.Object { return &smiv1alpha3.TrafficSplit{} }
	v1alpha3Spec := func(o client.Object) any { return o.(*smiv1alpha3.TrafficSplit).Spec }
	ps := []splitProvider{
		smiProvider(flaggerv1beta1.ProviderLinkerd, "v1alpha1", v1alpha1, v1alpha1Spec),
		smiProvider(flaggerv1beta1.ProviderSMIV1alpha1, "v1alpha1", v1alpha1, v1alpha1Spec),
		smiProvider(flaggerv1beta1.ProviderSMIV1alpha2, "v1alpha2", v1alpha2, v1alpha2Spec),
		smiProvider(flaggerv1beta1.ProviderSMIV1alpha3, "v1alpha3", v1alpha3, v1alpha3Spec),
		smiProvider(flaggerv1beta1.ProviderOSM, "v1alpha2", v1alpha2, v1alpha2Spec),
	}
	// v1alpha1's weights are quantities: strings in JSON.
	ps[0].edit = `{"spec":{"service":"elsewhere","backends":[` +
		`{"service":"podinfo-primary","weight":"50"},{"service":"podinfo-canary","weight":"50"}]}}`
	ps[1].edit = ps[0].edit
	return ps
}()

func TestSMIRouters_WriteWeightsInTheTypeOfTheirVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		provider, version string
		// want is the backends as the API server stores them: quantity
		// strings in v1alpha1, integers later.
		want []any
	}{
		{provider: flaggerv1beta1.ProviderLinkerd, version: "v1alpha1", want: []any{
			map[string]any{"service": "podinfo-primary", "weight": "70"}, map[string]any{"service": "podinfo-canary", "weight": "30"},
		}},
		{provider: flaggerv1beta1.ProviderOSM, version: "v1alpha2", want: []any{
			map[string]any{"service": "podinfo-primary", "weight": int64(70)}, map[string]any{"service": "podinfo-canary", "weight": int64(30)},
		}},
		{provider: flaggerv1beta1.ProviderSMIV1alpha3, version: "v1alpha3", want: []any{
			map[string]any{"service": "podinfo-primary", "weight": int64(70)}, map[string]any{"service": "podinfo-canary", "weight": int64(30)},
		}},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			t.Parallel()
			cd, r, _ := newSplitCanary(t, splitProvider{name: tc.provider, spec: func(*flaggerv1beta1.CanarySpec) {}})
			ctx := testContext(t)
			if err := r.SetRoutes(ctx, cd, podinfo, router.Routes{Primary: 70, Canary: 30}); err != nil {
				t.Fatal(err)
			}
			// Read the object unstructured, so that the test sees the JSON types.
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(schema.GroupVersionKind{Group: "split.smi-spec.io", Version: tc.version, Kind: "TrafficSplit"})
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: "podinfo"}, u); err != nil {
				t.Fatal(err)
			}
			if got := u.Object["spec"].(map[string]any)["backends"]; cmpDiff(tc.want, got) != "" {
				t.Errorf("backends = %#v, want %#v", got, tc.want)
			}
			if got := u.Object["spec"].(map[string]any)["service"]; got != "podinfo" {
				t.Errorf("service = %v, want podinfo", got)
			}
			assertOwnedBy(t, cd, u)
		})
	}
}
