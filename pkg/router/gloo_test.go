package router_test

import (
	"fmt"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	gloogatewayv1 "github.com/sluicedev/sluice/pkg/apis/gloo/gateway/v1"
	gloov1 "github.com/sluicedev/sluice/pkg/apis/gloo/v1"
	"github.com/sluicedev/sluice/pkg/problem"
	"github.com/sluicedev/sluice/pkg/router"
)

var glooProvider = splitProvider{
	name: flaggerv1beta1.ProviderGloo,
	dir:  "gloo",
	spec: func(*flaggerv1beta1.CanarySpec) {},
	object: func(ns string) client.Object {
		return &gloogatewayv1.RouteTable{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns}}
	},
	specOf: func(t *testing.T, obj client.Object) []byte {
		return specYAML(t, obj.(*gloogatewayv1.RouteTable).Spec)
	},
	render: func(cd *flaggerv1beta1.Canary, r router.Routes) (any, error) {
		return router.RenderRouteTable(cd, r)
	},
	abTesting: abTesting,
	editIn: func(ns string) string {
		return fmt.Sprintf(`{"spec":{"routes":[{"routeAction":{"multi":{"destinations":[`+
			`{"destination":{"upstream":{"name":"%[1]s-podinfo-primaryupstream-9898","namespace":"%[1]s"}},"weight":50},`+
			`{"destination":{"upstream":{"name":"%[1]s-podinfo-canaryupstream-9898","namespace":"%[1]s"}},"weight":50}]}}}]}}`, ns)
	},
}

func TestGlooRouter_UpstreamsCopyTheTemplateAndSelectThePods(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	template := &gloov1.Upstream{
		ObjectMeta: metav1.ObjectMeta{Name: "template", Namespace: ns},
		Spec: gloov1.UpstreamSpec{
			LoadBalancerConfig: &apiextensionsv1.JSON{Raw: []byte(`{"roundRobin":{"slowStartConfig":{"slowStartWindow":"10s"}}}`)},
			ConnectionConfig:   &apiextensionsv1.JSON{Raw: []byte(`{"maxRequestsPerConnection":10}`)},
			Kube:               &gloov1.KubeUpstream{ServiceName: "ignored", ServiceNamespace: ns, ServicePort: 80},
		},
	}
	if err := env.Client.Create(t.Context(), template); err != nil {
		t.Fatal(err)
	}
	cd := newCanary(t, ns, func(s *flaggerv1beta1.CanarySpec) {
		s.UpstreamRef = &flaggerv1beta1.UpstreamReference{APIVersion: "gloo.solo.io/v1", Kind: "Upstream", Name: "template"}
	})
	r, err := router.New(flaggerv1beta1.ProviderGloo, router.Deps{Client: env.Client})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Reconcile(testContext(t), cd, podinfo); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	for name, want := range map[string]struct{ service, pods string }{
		ns + "-podinfo-primaryupstream-9898": {"podinfo-primary", "podinfo-primary"},
		ns + "-podinfo-canaryupstream-9898":  {"podinfo-canary", "podinfo"},
	} {
		up := &gloov1.Upstream{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		assertOwnedBy(t, cd, up)
		k := up.Spec.Kube
		if k == nil || k.ServiceName != want.service || k.ServiceNamespace != ns || k.ServicePort != 9898 || len(k.Selector) != 1 || k.Selector["app"] != want.pods {
			t.Errorf("Upstream %s kube = %+v, want Service %s port 9898 selecting app=%s", name, k, want.service, want.pods)
		}
		if got := string(up.Spec.LoadBalancerConfig.Raw); got != `{"roundRobin":{"slowStartConfig":{"slowStartWindow":"10s"}}}` {
			t.Errorf("Upstream %s loadBalancerConfig = %s, want the template's", name, got)
		}
		if up.Spec.ConnectionConfig == nil || string(up.Spec.ConnectionConfig.Raw) != `{"maxRequestsPerConnection":10}` {
			t.Errorf("Upstream %s connectionConfig = %v, want the template's", name, up.Spec.ConnectionConfig)
		}
	}
}

func TestGlooRouter_MissingTemplateUpstreamIsAConfigError(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	for _, ref := range []flaggerv1beta1.UpstreamReference{
		{APIVersion: "gloo.solo.io/v1", Kind: "Upstream", Name: "missing"},
		{APIVersion: "gloo.solo.io/v2", Kind: "Upstream", Name: "template"},
	} {
		cd := newCanary(t, ns, func(s *flaggerv1beta1.CanarySpec) { s.UpstreamRef = &ref })
		r, err := router.New(flaggerv1beta1.ProviderGloo, router.Deps{Client: env.Client})
		if err != nil {
			t.Fatal(err)
		}
		err = r.Reconcile(testContext(t), cd, podinfo)
		if !problem.Is(err, problem.UnsupportedRouting) || !strings.Contains(err.Error(), "spec.upstreamRef") {
			t.Errorf("Reconcile with upstreamRef %+v: error = %v, want a ConfigError naming spec.upstreamRef", ref, err)
		}
		if err := env.Client.Delete(t.Context(), cd); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRenderRouteTable_MatchesByRegexWhereGlooHasNoPrefix(t *testing.T) {
	t.Parallel()
	cd := &flaggerv1beta1.Canary{Spec: flaggerv1beta1.CanarySpec{
		TargetRef: flaggerv1beta1.LocalObjectReference{Name: "podinfo"},
		Service:   flaggerv1beta1.CanaryService{Port: 9898},
		Analysis:  &flaggerv1beta1.CanaryAnalysis{},
	}}
	cd.Namespace = "test"
	abTesting(cd.Spec.Analysis)
	prefix, suffix := "beta.", "-eu"
	cd.Spec.Analysis.Match = append(cd.Spec.Analysis.Match, flaggerv1beta1.HTTPMatchConditions{
		Headers:      map[string]flaggerv1beta1.HeaderMatch{"x-user": {Prefix: &prefix}},
		QueryParams:  map[string]flaggerv1beta1.StringMatch{"region": {Suffix: &suffix}},
		SourceLabels: map[string]string{"app": "frontend"},
	})
	_, err := router.RenderRouteTable(cd, router.Routes{Canary: 100})
	if err == nil || !strings.Contains(err.Error(), "spec.analysis.match[2].sourceLabels: gloo cannot match") {
		t.Fatalf("error = %v, want one about source labels", err)
	}
	cd.Spec.Analysis.Match[2].SourceLabels = nil
	spec, err := router.RenderRouteTable(cd, router.Routes{Canary: 100})
	if err != nil {
		t.Fatal(err)
	}
	m := spec.Routes[0].Matchers[2]
	if h := m.Headers[0]; h.Value != `beta\..*` || !h.Regex {
		t.Errorf("prefix header matcher = %+v, want the regex beta\\..*", h)
	}
	if q := m.QueryParameters[0]; q.Value != `.*-eu` || !q.Regex {
		t.Errorf("suffix query matcher = %+v, want the regex .*-eu", q)
	}
}
