package router_test

import (
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/router"
)

// nginxPrefix is the default prefix of the NGINX annotations.
const nginxPrefix = router.DefaultIngressAnnotationsPrefix

var nginxProvider = splitProvider{
	name: flaggerv1beta1.ProviderNGINX,
	dir:  "nginx",
	spec: func(s *flaggerv1beta1.CanarySpec) {
		s.IngressRef = &flaggerv1beta1.IngressReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "public"}
	},
	setup: func(t *testing.T, ns string) {
		t.Helper()
		if err := env.Client.Create(t.Context(), userIngress(ns)); err != nil {
			t.Fatalf("creating the user's Ingress: %v", err)
		}
	},
	object: func(ns string) client.Object {
		return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "public-canary", Namespace: ns}}
	},
	specOf: func(t *testing.T, obj client.Object) []byte {
		ing := obj.(*networkingv1.Ingress)
		return specYAML(t, ingressView{Annotations: ing.Annotations, Spec: ing.Spec})
	},
	render: func(cd *flaggerv1beta1.Canary, r router.Routes) (any, error) {
		ing, err := router.RenderCanaryIngress(cd, userIngress(cd.Namespace), nginxPrefix, r)
		if err != nil {
			return nil, err
		}
		return ingressView{Annotations: ing.Annotations, Spec: ing.Spec}, nil
	},
	abTesting: func(a *flaggerv1beta1.CanaryAnalysis) {
		a.Iterations = ptr.To[int32](10)
		a.Match = []flaggerv1beta1.HTTPMatchConditions{
			{Headers: map[string]flaggerv1beta1.HeaderMatch{"x-canary": {Exact: ptr.To("insider")}}},
			{Headers: map[string]flaggerv1beta1.HeaderMatch{"cookie": {Exact: ptr.To("canary")}}},
		}
	},
	edit: `{"metadata":{"annotations":{"nginx.ingress.kubernetes.io/canary-weight":"50"}},"spec":{"ingressClassName":"someone-else"}}`,
}

// ingressView is what the nginx golden files show of a canary Ingress.
type ingressView struct {
	Annotations map[string]string        `json:"annotations"`
	Spec        networkingv1.IngressSpec `json:"spec"`
}

// userIngress is the user's Ingress "public" of the nginx tests: a host
// and a TLS secret, a path to the apex Service and one to another Service,
// an annotation to copy and some not to copy.
func userIngress(ns string) *networkingv1.Ingress {
	backend := func(name string) networkingv1.IngressBackend {
		return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: name, Port: networkingv1.ServiceBackendPort{Number: 9898}}}
	}
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{
			Name: "public", Namespace: ns,
			Labels: map[string]string{"team": "web"},
			Annotations: map[string]string{
				"nginx.ingress.kubernetes.io/proxy-body-size":      "8m",
				"nginx.ingress.kubernetes.io/canary-weight":        "30",
				"kubectl.kubernetes.io/last-applied-configuration": "{}",
			},
		},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To("nginx"),
			TLS:              []networkingv1.IngressTLS{{Hosts: []string{"podinfo.example.com"}, SecretName: "podinfo-tls"}},
			Rules: []networkingv1.IngressRule{{
				Host: "podinfo.example.com",
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
					{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix), Backend: backend("podinfo")},
					{Path: "/status", PathType: ptr.To(networkingv1.PathTypeExact), Backend: backend("status")},
				}}},
			}},
		},
	}
}

// getIngress reads an Ingress or fails the test.
func getIngress(t *testing.T, ns, name string) *networkingv1.Ingress {
	t.Helper()
	ing := &networkingv1.Ingress{}
	if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, ing); err != nil {
		t.Fatalf("reading Ingress %s/%s: %v", ns, name, err)
	}
	return ing
}

func TestNGINXRouter_CopiesTheUserIngressAndNeverEditsIt(t *testing.T) {
	t.Parallel()
	cd, r, _ := newSplitCanary(t, nginxProvider)
	ctx := testContext(t)
	before := getIngress(t, cd.Namespace, "public")
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	canary := getIngress(t, cd.Namespace, "public-canary")
	if canary.Labels["team"] != "web" {
		t.Errorf("canary Ingress labels = %v, want the user's", canary.Labels)
	}
	paths := canary.Spec.Rules[0].HTTP.Paths
	if got := []string{paths[0].Backend.Service.Name, paths[1].Backend.Service.Name}; got[0] != "podinfo-canary" || got[1] != "status" {
		t.Errorf("canary Ingress backends = %v, want the apex's rewritten to podinfo-canary and the others kept", got)
	}
	for _, routes := range []router.Routes{{Primary: 90, Canary: 10}, {Primary: 100}} {
		if err := r.SetRoutes(ctx, cd, podinfo, routes); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Finalize(ctx, cd, podinfo); err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	after := getIngress(t, cd.Namespace, "public")
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("the user's Ingress changed: resourceVersion %s, was %s", after.ResourceVersion, before.ResourceVersion)
	}
	if string(specYAML(t, after.Spec)) != string(specYAML(t, before.Spec)) || len(after.OwnerReferences) != 0 {
		t.Errorf("the user's Ingress changed: %+v, was %+v", after, before)
	}
}

func TestNGINXRouter_UsesTheConfiguredAnnotationsPrefix(t *testing.T) {
	t.Parallel()
	cd, _, _ := newSplitCanary(t, nginxProvider)
	r, err := router.New(flaggerv1beta1.ProviderNGINX, router.Deps{Client: env.Client, IngressAnnotationsPrefix: "custom.ingress.kubernetes.io"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	if err := r.SetRoutes(ctx, cd, podinfo, router.Routes{Primary: 70, Canary: 30}); err != nil {
		t.Fatal(err)
	}
	got := getIngress(t, cd.Namespace, "public-canary").Annotations
	want := map[string]string{
		"custom.ingress.kubernetes.io/canary":        "true",
		"custom.ingress.kubernetes.io/canary-weight": "30",
		// Under another prefix these are not canary annotations: copied.
		"nginx.ingress.kubernetes.io/proxy-body-size": "8m",
		"nginx.ingress.kubernetes.io/canary-weight":   "30",
	}
	if d := cmpDiff(want, got); d != "" {
		t.Errorf("annotations differ:\n%s", d)
	}
	if routes, err := r.GetRoutes(ctx, cd, podinfo); err != nil || routes != (router.Routes{Primary: 70, Canary: 30}) {
		t.Errorf("GetRoutes = %+v, %v; want 70/30", routes, err)
	}
}

func TestNGINXRouter_FailsClearlyWithoutTheUserIngress(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	for _, tc := range []struct {
		name    string
		edit    func(cd *flaggerv1beta1.Canary)
		wantErr string
	}{
		{name: "no ingressRef", edit: func(cd *flaggerv1beta1.Canary) { cd.Spec.IngressRef = nil }, wantErr: "nginx needs spec.ingressRef"},
		{name: "no such Ingress", edit: func(cd *flaggerv1beta1.Canary) { cd.Spec.IngressRef.Name = "missing" }, wantErr: "named in spec.ingressRef does not exist"},
		{name: "no backend on the apex", edit: func(cd *flaggerv1beta1.Canary) { cd.Spec.Service.Name = "frontend" }, wantErr: "has no backend on the Service frontend"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cd, r, writes := newSplitCanary(t, nginxProvider)
			tc.edit(cd)
			if err := r.Reconcile(ctx, cd, podinfo); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Reconcile error = %v, want one containing %q", err, tc.wantErr)
			}
			if err := r.SetRoutes(ctx, cd, podinfo, router.Routes{Primary: 100}); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("SetRoutes error = %v, want one containing %q", err, tc.wantErr)
			}
			if n := writes(); n != 0 {
				t.Errorf("wrote %d times", n)
			}
		})
	}
	cd, r, _ := newSplitCanary(t, nginxProvider)
	cd.Spec.IngressRef = nil
	if _, err := r.GetRoutes(ctx, cd, podinfo); err == nil || !strings.Contains(err.Error(), "nginx needs spec.ingressRef") {
		t.Errorf("GetRoutes error = %v, want one about spec.ingressRef", err)
	}
	err := env.Client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: "public-canary"}, &networkingv1.Ingress{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("reading the canary Ingress: %v, want not found", err)
	}
}

func TestRenderCanaryIngress_RoutesABTestsByHeaderOrCookie(t *testing.T) {
	t.Parallel()
	header := func(name string, m flaggerv1beta1.HeaderMatch) flaggerv1beta1.HTTPMatchConditions {
		return flaggerv1beta1.HTTPMatchConditions{Headers: map[string]flaggerv1beta1.HeaderMatch{name: m}}
	}
	p := nginxPrefix + "/"
	for _, tc := range []struct {
		name    string
		match   []flaggerv1beta1.HTTPMatchConditions
		want    map[string]string
		wantErr string
	}{
		{
			name:  "exact header",
			match: []flaggerv1beta1.HTTPMatchConditions{header("x-canary", flaggerv1beta1.HeaderMatch{Exact: ptr.To("insider")})},
			want:  map[string]string{p + "canary-by-header": "x-canary", p + "canary-by-header-value": "insider"},
		},
		{
			name:  "regex header",
			match: []flaggerv1beta1.HTTPMatchConditions{header("user-agent", flaggerv1beta1.HeaderMatch{Regex: ptr.To(".*Firefox.*")})},
			want:  map[string]string{p + "canary-by-header": "user-agent", p + "canary-by-header-pattern": ".*Firefox.*"},
		},
		{
			name:  "cookie by name",
			match: []flaggerv1beta1.HTTPMatchConditions{header("cookie", flaggerv1beta1.HeaderMatch{Exact: ptr.To("canary")})},
			want:  map[string]string{p + "canary-by-cookie": "canary"},
		},
		{
			name:  "cookie by regex",
			match: []flaggerv1beta1.HTTPMatchConditions{header("cookie", flaggerv1beta1.HeaderMatch{Regex: ptr.To("^(.*?;)?(beta=always)(;.*)?$")})},
			want:  map[string]string{p + "canary-by-cookie": "beta"},
		},
		{
			name: "header or cookie",
			match: []flaggerv1beta1.HTTPMatchConditions{
				header("x-canary", flaggerv1beta1.HeaderMatch{Exact: ptr.To("insider")}),
				header("Cookie", flaggerv1beta1.HeaderMatch{Exact: ptr.To("canary")}),
			},
			want: map[string]string{p + "canary-by-header": "x-canary", p + "canary-by-header-value": "insider", p + "canary-by-cookie": "canary"},
		},
		{
			name:    "prefix header",
			match:   []flaggerv1beta1.HTTPMatchConditions{header("x-canary", flaggerv1beta1.HeaderMatch{Prefix: ptr.To("in")})},
			wantErr: "spec.analysis.match[0].headers.x-canary: nginx matches headers exactly or by regex only",
		},
		{
			name: "two headers",
			match: []flaggerv1beta1.HTTPMatchConditions{
				header("x-a", flaggerv1beta1.HeaderMatch{Exact: ptr.To("1")}),
				header("x-b", flaggerv1beta1.HeaderMatch{Exact: ptr.To("2")}),
			},
			wantErr: "spec.analysis.match[1].headers.x-b: nginx routes by one header and one cookie only",
		},
		{
			name:    "query parameter",
			match:   []flaggerv1beta1.HTTPMatchConditions{{QueryParams: map[string]flaggerv1beta1.StringMatch{"beta": {Exact: ptr.To("on")}}}},
			wantErr: "spec.analysis.match[0]: nginx routes A/B tests by header or cookie only",
		},
		{
			name:    "cookie regex without a name",
			match:   []flaggerv1beta1.HTTPMatchConditions{header("cookie", flaggerv1beta1.HeaderMatch{Regex: ptr.To(".*")})},
			wantErr: "nginx needs the cookie's name",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cd := &flaggerv1beta1.Canary{
				ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"},
				Spec: flaggerv1beta1.CanarySpec{
					TargetRef: flaggerv1beta1.LocalObjectReference{Name: "podinfo"},
					Analysis:  &flaggerv1beta1.CanaryAnalysis{Iterations: ptr.To[int32](10), Match: tc.match},
				},
			}
			ing, err := router.RenderCanaryIngress(cd, userIngress("test"), nginxPrefix, router.Routes{Canary: 100})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.want[p+"canary"], tc.want[p+"canary-weight"], tc.want[p+"proxy-body-size"] = "true", "0", "8m"
			if d := cmpDiff(tc.want, ing.Annotations); d != "" {
				t.Errorf("annotations differ:\n%s", d)
			}
			// Back on the primary, the A/B annotations go.
			ing, err = router.RenderCanaryIngress(cd, userIngress("test"), nginxPrefix, router.Routes{Primary: 100})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{p + "canary": "true", p + "canary-weight": "0", p + "proxy-body-size": "8m"}
			if d := cmpDiff(want, ing.Annotations); d != "" {
				t.Errorf("annotations on the primary differ:\n%s", d)
			}
		})
	}
}
