package router_test

import (
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	apisixv2 "github.com/sluicedev/sluice/pkg/apis/apisix/v2"
	"github.com/sluicedev/sluice/pkg/problem"
	"github.com/sluicedev/sluice/pkg/router"
)

var apisixProvider = splitProvider{
	name: flaggerv1beta1.ProviderAPISIX,
	dir:  "apisix",
	spec: func(s *flaggerv1beta1.CanarySpec) {
		s.RouteRef = &flaggerv1beta1.RouteReference{APIVersion: "apisix.apache.org/v2", Kind: "ApisixRoute", Name: "public"}
	},
	setup: func(t *testing.T, ns string) {
		t.Helper()
		if err := env.Client.Create(t.Context(), userApisixRoute(ns)); err != nil {
			t.Fatalf("creating the user's ApisixRoute: %v", err)
		}
	},
	object: func(ns string) client.Object {
		return &apisixv2.ApisixRoute{ObjectMeta: metav1.ObjectMeta{Name: "public-podinfo-canary", Namespace: ns}}
	},
	specOf: func(t *testing.T, obj client.Object) []byte {
		return specYAML(t, obj.(*apisixv2.ApisixRoute).Spec)
	},
	render: func(cd *flaggerv1beta1.Canary, r router.Routes) (any, error) {
		route, err := router.RenderApisixRoute(cd, userApisixRoute(cd.Namespace), r)
		if err != nil {
			return nil, err
		}
		return route.Spec, nil
	},
	edit: `{"spec":{"http":[{"name":"podinfo","backends":[{"serviceName":"podinfo-primary","servicePort":9898,"weight":50},` +
		`{"serviceName":"podinfo-canary","servicePort":9898,"weight":50}]}]}}`,
}

// userApisixRoute is the user's ApisixRoute "public": a route to another
// Service, then a route to the apex Service with a match, a plugin and a
// timeout, which the canary route copies.
func userApisixRoute(ns string) *apisixv2.ApisixRoute {
	return &apisixv2.ApisixRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "public", Namespace: ns, Labels: map[string]string{"team": "web"},
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}", "note": "copied"}},
		Spec: apisixv2.ApisixRouteSpec{IngressClassName: "apisix", HTTP: []apisixv2.HTTPRoute{
			{Name: "status", Match: &apiextensionsv1.JSON{Raw: []byte(`{"paths":["/status"]}`)},
				Backends: []apisixv2.Backend{{ServiceName: "status", ServicePort: intstr.FromInt(80)}}},
			{
				Name:     "podinfo",
				Match:    &apiextensionsv1.JSON{Raw: []byte(`{"hosts":["app.example.com"],"paths":["/*"]}`)},
				Timeout:  &apiextensionsv1.JSON{Raw: []byte(`{"read":"15s"}`)},
				Plugins:  []apiextensionsv1.JSON{{Raw: []byte(`{"config":{"count":100,"time_window":60},"enable":true,"name":"limit-count"}`)}},
				Backends: []apisixv2.Backend{{ServiceName: "podinfo", ServicePort: intstr.FromInt(9898), ResolveGranularity: "service"}},
			},
		}},
	}
}

func TestAPISIXRouter_CopiesOnlyTheApexRouteAndItsMetadata(t *testing.T) {
	t.Parallel()
	cd, r, _ := newSplitCanary(t, apisixProvider)
	if err := r.Reconcile(testContext(t), cd, podinfo); err != nil {
		t.Fatal(err)
	}
	route := apisixProvider.object(cd.Namespace).(*apisixv2.ApisixRoute)
	assertOwnedBy(t, cd, route)
	if route.Labels["team"] != "web" || route.Annotations["note"] != "copied" || route.Annotations["kubectl.kubernetes.io/last-applied-configuration"] != "" {
		t.Errorf("metadata = %v %v, want the user's labels and annotations without kubectl's", route.Labels, route.Annotations)
	}
	if len(route.Spec.HTTP) != 1 || route.Spec.HTTP[0].Name != "podinfo" || route.Spec.HTTP[0].Priority != 10000 || len(route.Spec.HTTP[0].Plugins) != 1 {
		t.Errorf("http routes = %+v, want only the podinfo route, priority 10000, with its plugin", route.Spec.HTTP)
	}
}

func TestAPISIXRouter_RefusesMissingOrUnsplittableRoutes(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	two := userApisixRoute(ns)
	two.Name = "two-backends"
	two.Spec.HTTP[1].Backends = append(two.Spec.HTTP[1].Backends, apisixv2.Backend{ServiceName: "other", ServicePort: intstr.FromInt(80), Weight: ptr.To(10)})
	if err := env.Client.Create(t.Context(), two); err != nil {
		t.Fatal(err)
	}
	r, err := router.New(flaggerv1beta1.ProviderAPISIX, router.Deps{Client: env.Client})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref  *flaggerv1beta1.RouteReference
		want string
	}{
		{nil, "apisix needs spec.routeRef"},
		{&flaggerv1beta1.RouteReference{APIVersion: "apisix.apache.org/v2", Kind: "ApisixRoute", Name: "missing"}, "named in spec.routeRef does not exist"},
		{&flaggerv1beta1.RouteReference{APIVersion: "apisix.apache.org/v2", Kind: "ApisixRoute", Name: "two-backends"}, "has 2 backends"},
	} {
		cd := &flaggerv1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns}, Spec: flaggerv1beta1.CanarySpec{
			TargetRef: flaggerv1beta1.LocalObjectReference{Name: "podinfo"}, Service: flaggerv1beta1.CanaryService{Port: 9898}, RouteRef: tc.ref,
		}}
		if err := r.Reconcile(testContext(t), cd, podinfo); !problem.Is(err, problem.UnsupportedRouting) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("routeRef %+v: error = %v, want a ConfigError containing %q", tc.ref, err, tc.want)
		}
	}
}
