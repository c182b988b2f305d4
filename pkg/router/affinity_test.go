package router_test

import (
	"testing"

	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/router"
)

// withSessionAffinity gives a Canary session affinity with every cookie
// attribute, and the cookies of an analysis in its status.
func withSessionAffinity(cd *flaggerv1beta1.Canary, canary, primary, previous string) {
	cd.Spec.Analysis.SessionAffinity = &flaggerv1beta1.SessionAffinity{
		CookieName: "canary-user", PrimaryCookieName: "primary-user", MaxAge: 21600,
		Domain: "example.com", Path: "/", SameSite: "Lax", Secure: true, HTTPOnly: true,
	}
	cd.Status.SessionAffinityCookie, cd.Status.PrimarySessionAffinityCookie, cd.Status.PreviousSessionAffinityCookie = canary, primary, previous
}

func TestCookieRouters_PinUsersDuringTheAnalysisAndExpireTheCookieAfter(t *testing.T) {
	t.Parallel()
	steps := []struct {
		golden                    string
		canary, primary, previous string
		routes                    router.Routes
	}{
		// The cookies of an analysis, at a weight step.
		{"affinity-step.golden", "canary-user=c0ffee", "primary-user=beef", "", router.Routes{Primary: 80, Canary: 20}},
		// After it: the canary cookie is now the previous one.
		{"affinity-after.golden", "", "", "canary-user=c0ffee", router.Routes{Primary: 100}},
	}
	for _, p := range []splitProvider{istioProvider, gatewayAPIProvider} {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			cd, r, writes := newSplitCanary(t, p)
			ctx := testContext(t)
			if err := r.Reconcile(ctx, cd, podinfo); err != nil {
				t.Fatal(err)
			}
			for _, st := range steps {
				withSessionAffinity(cd, st.canary, st.primary, st.previous)
				if err := r.SetRoutes(ctx, cd, podinfo, st.routes); err != nil {
					t.Fatalf("SetRoutes %+v: %v", st.routes, err)
				}
				assertGolden(t, p.dir+"/"+st.golden, liveSpec(t, p, cd.Namespace))
				if got, err := r.GetRoutes(ctx, cd, podinfo); err != nil || got != st.routes {
					t.Errorf("GetRoutes = %+v, %v; want %+v: the cookie routes must not hide the split", got, err, st.routes)
				}
				writes()
				if err := r.Reconcile(ctx, cd, podinfo); err != nil {
					t.Fatal(err)
				}
				if n := writes(); n != 0 {
					t.Errorf("Reconcile with the same cookies wrote %d times, want none", n)
				}
			}
		})
	}
}

func TestCookieRouters_RenderNoCookieRoutesWithoutCookiesOrDuringAnABTest(t *testing.T) {
	t.Parallel()
	for _, p := range []splitProvider{istioProvider, gatewayAPIProvider} {
		for _, tc := range []struct {
			name string
			edit func(*flaggerv1beta1.Canary)
		}{
			{"no cookie handed out yet", func(cd *flaggerv1beta1.Canary) { withSessionAffinity(cd, "", "", "") }},
			{"A/B test", func(cd *flaggerv1beta1.Canary) {
				withSessionAffinity(cd, "canary-user=c0ffee", "", "")
				abTesting(cd.Spec.Analysis)
			}},
		} {
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				plain := &flaggerv1beta1.Canary{Spec: flaggerv1beta1.CanarySpec{
					TargetRef: flaggerv1beta1.LocalObjectReference{Name: "podinfo"},
					Service:   flaggerv1beta1.CanaryService{Port: 9898},
					Analysis:  &flaggerv1beta1.CanaryAnalysis{Interval: "1m", StepWeight: ptr.To[int32](10), MaxWeight: ptr.To[int32](50)},
				}}
				plain.Name, plain.Namespace = "podinfo", "test"
				p.spec(&plain.Spec)
				with := plain.DeepCopy()
				tc.edit(with)
				if tc.name == "A/B test" {
					abTesting(plain.Spec.Analysis)
				}
				split := router.Routes{Primary: 80, Canary: 20}
				if got, want := renderedSpec(t, p, with, split), renderedSpec(t, p, plain, split); string(got) != string(want) {
					t.Errorf("session affinity changed the routing:\n%s", cmpDiff(string(want), string(got)))
				}
			})
		}
	}
}

func TestSupportsSessionAffinity(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		provider string
		want     bool
	}{
		{flaggerv1beta1.ProviderIstio, true},
		{flaggerv1beta1.ProviderGatewayAPIV1, true},
		{flaggerv1beta1.ProviderGatewayAPIV1beta1, true},
		{flaggerv1beta1.ProviderNGINX, false},
		{flaggerv1beta1.ProviderLinkerd, false},
		{flaggerv1beta1.ProviderContour, false},
		{flaggerv1beta1.ProviderTraefik, false},
		{flaggerv1beta1.ProviderKubernetes, false},
	} {
		r, err := router.New(tc.provider, router.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		if got := router.SupportsSessionAffinity(r); got != tc.want {
			t.Errorf("SupportsSessionAffinity(%s) = %t, want %t", tc.provider, got, tc.want)
		}
	}
}
