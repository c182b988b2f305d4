package router_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/router"
)

// benchCanary is the Canary podinfo of the split tests, in memory: a canary
// release with the provider's Service fields (matches, rewrite, timeouts,
// retries, header operations, CORS where the provider has them), changed by
// edit.
func benchCanary(p splitProvider, edit func(*flaggerv1beta1.CanaryAnalysis)) *flaggerv1beta1.Canary {
	cd := &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "bench"},
		Spec: flaggerv1beta1.CanarySpec{
			TargetRef: flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:   flaggerv1beta1.CanaryService{Port: 9898},
			Analysis: &flaggerv1beta1.CanaryAnalysis{
				Interval: "1m", Threshold: 5, StepWeight: ptr.To[int32](10), MaxWeight: ptr.To[int32](50),
			},
		},
	}
	p.spec(&cd.Spec)
	if edit != nil {
		edit(cd.Spec.Analysis)
	}
	return cd
}

// renderStep is a split to render and the analysis that leads to it.
type renderStep struct {
	name   string
	edit   func(*flaggerv1beta1.CanaryAnalysis)
	routes router.Routes
}

// BenchmarkRender measures the pure renderers that turn a Canary and a
// split into a provider's routing object, the work of every SetRoutes and
// Reconcile before the diff with the live object: a weighted step of a
// canary release for each provider, and the A/B-testing and mirroring
// routes where the provider has them. The nginx, skipper and apisix
// renderers are given the user's object they copy; its construction is not
// measured.
func BenchmarkRender(b *testing.B) {
	source, apisixSource, skipperSource := userIngress("bench"), userApisixRoute("bench"), skipperIngress("bench")
	renderers := []struct {
		name   string
		p      splitProvider
		render func(*flaggerv1beta1.Canary, router.Routes) (any, error)
		// splitFree renderers do not depend on the split: one step is enough.
		splitFree bool
	}{
		{name: "istio-virtualservice", p: istioProvider, render: func(cd *flaggerv1beta1.Canary, r router.Routes) (any, error) {
			return router.RenderVirtualService(cd, r)
		}},
		{name: "istio-destinationrule", p: istioProvider, render: func(cd *flaggerv1beta1.Canary, _ router.Routes) (any, error) {
			return router.RenderDestinationRule(cd, "podinfo-canary")
		}, splitFree: true},
		{name: "gatewayapi-httproute", p: gatewayAPIProvider, render: func(cd *flaggerv1beta1.Canary, r router.Routes) (any, error) {
			return router.RenderHTTPRoute(cd, r)
		}},
		{name: "nginx-ingress", p: nginxProvider, render: func(cd *flaggerv1beta1.Canary, r router.Routes) (any, error) {
			return router.RenderCanaryIngress(cd, source, nginxPrefix, r)
		}},
		{name: "contour-httpproxy", p: contourProvider, render: func(cd *flaggerv1beta1.Canary, r router.Routes) (any, error) {
			return router.RenderHTTPProxy(cd, "", r)
		}},
		{name: "traefik-service", p: traefikProvider, render: func(cd *flaggerv1beta1.Canary, r router.Routes) (any, error) {
			return router.RenderTraefikService(cd, r)
		}},
		{name: "smi-trafficsplit-v1alpha3", p: smiProviders[3], render: func(cd *flaggerv1beta1.Canary, r router.Routes) (any, error) {
			return router.RenderTrafficSplit("v1alpha3", cd, r)
		}},
		{name: "gloo-routetable", p: glooProvider, render: glooProvider.render},
		{name: "kuma-trafficroute", p: splitProvider{spec: func(*flaggerv1beta1.CanarySpec) {}}, render: func(cd *flaggerv1beta1.Canary, r router.Routes) (any, error) {
			return router.RenderTrafficRoute(cd, r)
		}},
		{name: "apisix-route", p: apisixProvider, render: func(cd *flaggerv1beta1.Canary, r router.Routes) (any, error) {
			return router.RenderApisixRoute(cd, apisixSource, r)
		}},
		{name: "skipper-ingress", p: skipperProvider, render: func(cd *flaggerv1beta1.Canary, r router.Routes) (any, error) {
			return router.RenderSkipperIngress(cd, skipperSource, r)
		}},
		{name: "appmesh-virtualservice", p: appMeshProvider, render: appMeshProvider.render},
		{name: "appmesh-v1beta2-virtualrouter", p: appMeshV1beta2Provider, render: appMeshV1beta2Provider.render},
	}
	for _, rd := range renderers {
		steps := []renderStep{{name: "weight-80-20", routes: router.Routes{Primary: 80, Canary: 20}}}
		if rd.p.abTesting != nil && !rd.splitFree {
			steps = append(steps, renderStep{"ab-testing", rd.p.abTesting, router.Routes{Canary: 100}})
		}
		if rd.p.mirrors && !rd.splitFree {
			steps = append(steps, renderStep{"mirrored", mirroring, router.Routes{Primary: 100, Mirrored: true}})
		}
		for _, st := range steps {
			b.Run(rd.name+"/"+st.name, func(b *testing.B) {
				cd := benchCanary(rd.p, st.edit)
				if _, err := rd.render(cd, st.routes); err != nil {
					b.Fatalf("render: %v", err)
				}
				b.ReportAllocs()
				for b.Loop() {
					_, _ = rd.render(cd, st.routes)
				}
			})
		}
	}
}
