package router_test

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	contourv1 "github.com/sluicedev/sluice/pkg/apis/contour/v1"
	"github.com/sluicedev/sluice/pkg/router"
)

var contourProvider = splitProvider{
	name: flaggerv1beta1.ProviderContour,
	dir:  "contour",
	spec: func(s *flaggerv1beta1.CanarySpec) {
		s.Service.Match = []flaggerv1beta1.HTTPMatchRequest{{URI: &flaggerv1beta1.StringMatch{Prefix: ptr.To("/api")}}}
		s.Service.Timeout = "30s"
		s.Service.Retries = &flaggerv1beta1.HTTPRetry{Attempts: 3, PerTryTimeout: "5s", RetryOn: "gateway-error, connect-failure"}
		s.Service.Headers = serviceHeaders()
	},
	object: func(ns string) client.Object {
		return &contourv1.HTTPProxy{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns}}
	},
	specOf: func(t *testing.T, obj client.Object) []byte {
		return specYAML(t, obj.(*contourv1.HTTPProxy).Spec)
	},
	render: func(cd *flaggerv1beta1.Canary, r router.Routes) (any, error) {
		return router.RenderHTTPProxy(cd, "", r)
	},
	mirrors: true,
	abTesting: func(a *flaggerv1beta1.CanaryAnalysis) {
		a.Iterations = ptr.To[int32](10)
		a.Match = []flaggerv1beta1.HTTPMatchConditions{
			{Headers: map[string]flaggerv1beta1.HeaderMatch{"x-canary": {Exact: ptr.To("insider")}}},
			{Headers: map[string]flaggerv1beta1.HeaderMatch{"x-user": {Exact: ptr.To("beta")}, "x-region": {Exact: ptr.To("eu")}}},
		}
	},
	edit: `{"spec":{"ingressClassName":"someone-else","routes":[{"conditions":[{"prefix":"/"}],"services":[` +
		`{"name":"podinfo-primary","port":9898,"weight":50},{"name":"podinfo-canary","port":9898,"weight":50}]}]}}`,
}

func TestContourRouter_SetsIngressClassAndVirtualHost(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	cd := newCanary(t, ns, func(s *flaggerv1beta1.CanarySpec) { s.Service.Hosts = []string{"podinfo.example.com"} })
	r, err := router.New(flaggerv1beta1.ProviderContour, router.Deps{Client: env.Client, IngressClass: "contour-internal"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Reconcile(testContext(t), cd, podinfo); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	proxy := &contourv1.HTTPProxy{}
	if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "podinfo"}, proxy); err != nil {
		t.Fatal(err)
	}
	if proxy.Spec.IngressClassName != "contour-internal" {
		t.Errorf("ingressClassName = %q, want contour-internal", proxy.Spec.IngressClassName)
	}
	if vh := proxy.Spec.VirtualHost; vh == nil || vh.Fqdn != "podinfo.example.com" {
		t.Errorf("virtualhost = %+v, want fqdn podinfo.example.com", vh)
	}
}

func TestRenderHTTPProxy_RefusesWhatContourCannotMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*flaggerv1beta1.CanarySpec)
		want []string
	}{
		{
			name: "A/B regex, query and source matches",
			edit: func(s *flaggerv1beta1.CanarySpec) { abTesting(s.Analysis) },
			want: []string{
				"spec.analysis.match[1].headers.cookie: contour matches headers exactly only",
				"spec.analysis.match[1]: contour routes A/B tests by header only",
			},
		},
		{
			name: "two hosts",
			edit: func(s *flaggerv1beta1.CanarySpec) { s.Service.Hosts = []string{"a.example.com", "b.example.com"} },
			want: []string{"spec.service.hosts: a Contour HTTPProxy is served for one host name"},
		},
		{
			name: "service match on the method and by exact path",
			edit: func(s *flaggerv1beta1.CanarySpec) {
				s.Service.Match = []flaggerv1beta1.HTTPMatchRequest{{
					URI: &flaggerv1beta1.StringMatch{Exact: ptr.To("/")}, Method: &flaggerv1beta1.StringMatch{Exact: ptr.To("GET")},
				}}
			},
			want: []string{"spec.service.match[0]: contour matches the path prefix and headers only", "spec.service.match[0].uri: contour matches the path by prefix only"},
		},
		{
			name: "bad durations and added headers",
			edit: func(s *flaggerv1beta1.CanarySpec) {
				s.Service.Timeout = "soon"
				s.Service.Retries = &flaggerv1beta1.HTTPRetry{Attempts: 2, PerTryTimeout: "1 minute"}
				s.Service.Headers = &flaggerv1beta1.Headers{Request: &flaggerv1beta1.HeaderOperations{Add: map[string]string{"x-a": "b"}}}
			},
			want: []string{"spec.service.timeout: ", "spec.service.retries.perTryTimeout: ", "spec.service.headers.request.add: contour cannot add header values"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cd := &flaggerv1beta1.Canary{Spec: flaggerv1beta1.CanarySpec{
				TargetRef: flaggerv1beta1.LocalObjectReference{Name: "podinfo"},
				Service:   flaggerv1beta1.CanaryService{Port: 9898},
				Analysis:  &flaggerv1beta1.CanaryAnalysis{},
			}}
			tc.edit(&cd.Spec)
			_, err := router.RenderHTTPProxy(cd, "", router.Routes{Canary: 100})
			for _, want := range tc.want {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error = %v, want one containing %q", err, want)
				}
			}
		})
	}
}
