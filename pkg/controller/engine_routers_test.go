package controller

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingk8sv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	contourv1 "github.com/sluicedev/sluice/pkg/apis/contour/v1"
	smiv1alpha1 "github.com/sluicedev/sluice/pkg/apis/smi/v1alpha1"
	traefikv1alpha1 "github.com/sluicedev/sluice/pkg/apis/traefik/v1alpha1"
)

// weightsOf reads the canary weight a router object holds now, or -1.
type weightsOf func(h *harness) int32

func istioWeight(h *harness) int32 {
	var vs networkingv1.VirtualService
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, &vs); err != nil || len(vs.Spec.Http) == 0 {
		return -1
	}
	for _, d := range vs.Spec.Http[len(vs.Spec.Http)-1].Route {
		if d.Destination.GetHost() == "podinfo-canary" {
			return d.Weight
		}
	}
	return -1
}

func gatewayWeight(h *harness) int32 {
	var route gatewayv1.HTTPRoute
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, &route); err != nil || len(route.Spec.Rules) == 0 {
		return -1
	}
	for _, b := range route.Spec.Rules[len(route.Spec.Rules)-1].BackendRefs {
		if string(b.Name) == "podinfo-canary" {
			return ptr.Deref(b.Weight, 0)
		}
	}
	return -1
}

func nginxWeight(h *harness) int32 {
	var ing networkingk8sv1.Ingress
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo-canary"}, &ing); err != nil {
		return -1
	}
	w, err := strconv.Atoi(ing.Annotations["nginx.ingress.kubernetes.io/canary-weight"])
	if err != nil {
		return -1
	}
	return int32(w)
}

func linkerdWeight(h *harness) int32 {
	var ts smiv1alpha1.TrafficSplit
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, &ts); err != nil {
		return -1
	}
	for _, b := range ts.Spec.Backends {
		if b.Service == "podinfo-canary" && b.Weight != nil {
			return int32(b.Weight.Value())
		}
	}
	return -1
}

func contourWeight(h *harness) int32 {
	var proxy contourv1.HTTPProxy
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, &proxy); err != nil || len(proxy.Spec.Routes) == 0 {
		return -1
	}
	for _, s := range proxy.Spec.Routes[len(proxy.Spec.Routes)-1].Services {
		if s.Name == "podinfo-canary" {
			return int32(s.Weight)
		}
	}
	return -1
}

func traefikWeight(h *harness) int32 {
	var ts traefikv1alpha1.TraefikService
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, &ts); err != nil || ts.Spec.Weighted == nil {
		return -1
	}
	for _, s := range ts.Spec.Weighted.Services {
		if s.Name == "podinfo-canary" {
			return int32(s.Weight)
		}
	}
	return -1
}

// userIngress is the Ingress a user owns for the NGINX provider.
func userIngress() *networkingk8sv1.Ingress {
	return &networkingk8sv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo"},
		Spec: networkingk8sv1.IngressSpec{Rules: []networkingk8sv1.IngressRule{{
			Host: "app.example.com",
			IngressRuleValue: networkingk8sv1.IngressRuleValue{HTTP: &networkingk8sv1.HTTPIngressRuleValue{Paths: []networkingk8sv1.HTTPIngressPath{{
				Path: "/", PathType: ptr.To(networkingk8sv1.PathTypePrefix),
				Backend: networkingk8sv1.IngressBackend{Service: &networkingk8sv1.IngressServiceBackend{
					Name: "podinfo", Port: networkingk8sv1.ServiceBackendPort{Number: 9898},
				}},
			}}}},
		}}},
	}
}

// userGateway is the Gateway a user owns for the Gateway API provider.
func userGateway(name string) *gatewayv1.Gateway {
	return &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: gatewayv1.GatewaySpec{GatewayClassName: "example", Listeners: []gatewayv1.Listener{
			{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType},
		}},
	}
}

// TestEngine_CanaryReleaseShiftsWeightsThroughEachRouter runs a full canary
// release (0 → 20 → 40 → promotion) per traffic provider and records the
// weights the routing object held along the way.
func TestEngine_CanaryReleaseShiftsWeightsThroughEachRouter(t *testing.T) {
	tests := []struct {
		provider string
		weight   weightsOf
		mutate   func(*flaggerv1beta1.Canary)
	}{
		{flaggerv1beta1.ProviderIstio, istioWeight, func(*flaggerv1beta1.Canary) {}},
		{flaggerv1beta1.ProviderGatewayAPIV1, gatewayWeight, func(cd *flaggerv1beta1.Canary) {
			cd.Spec.Service.GatewayRefs = []flaggerv1beta1.ParentReference{{Name: "public"}}
		}},
		{flaggerv1beta1.ProviderNGINX, nginxWeight, func(cd *flaggerv1beta1.Canary) {
			cd.Spec.IngressRef = &flaggerv1beta1.IngressReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "podinfo"}
		}},
		{flaggerv1beta1.ProviderLinkerd, linkerdWeight, func(*flaggerv1beta1.Canary) {}},
		{flaggerv1beta1.ProviderContour, contourWeight, func(*flaggerv1beta1.Canary) {}},
		{flaggerv1beta1.ProviderTraefik, traefikWeight, func(*flaggerv1beta1.Canary) {}},
	}
	for _, tt := range tests {
		t.Run(tt.provider, func(t *testing.T) {
			t.Parallel() // each provider has its namespace and manager
			h := newHarness(t)
			h.metrics.set(0)
			switch tt.provider {
			case flaggerv1beta1.ProviderNGINX:
				h.create(userIngress())
			case flaggerv1beta1.ProviderGatewayAPIV1:
				h.create(userGateway("public"))
			}
			h.create(newDeployment("podinfo", 1), newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
				cd.Spec.Provider = tt.provider
				cd.Spec.Analysis.Iterations = nil
				// Steps two seconds apart, so that a loaded machine still
				// samples every weight.
				cd.Spec.Analysis.Interval = "2s"
				cd.Spec.Analysis.StepWeight, cd.Spec.Analysis.MaxWeight = ptr.To[int32](20), ptr.To[int32](40)
				tt.mutate(cd)
			}))
			h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
			// The status is written before the routing objects (write-ahead).
			h.eventually("the routing object after initialization", func() (bool, string) {
				w := tt.weight(h)
				return w == 0, fmt.Sprintf("canary weight %d", w)
			})
			h.setImage("podinfo", "ghcr.io/example/podinfo:6.1.0")
			var seen []int32
			h.eventually("the release to be promoted", func() (bool, string) {
				if w := tt.weight(h); len(seen) == 0 || seen[len(seen)-1] != w {
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
			if w := tt.weight(h); w != 0 {
				t.Errorf("after promotion the canary weight is %d, want 0", w)
			}
		})
	}
}

// TestEngine_RoutingThatCannotBeBuiltIsReported checks that a routing
// problem in the spec becomes a condition and an event, not a retry loop.
func TestEngine_RoutingThatCannotBeBuiltIsReported(t *testing.T) {
	tests := []struct {
		provider string
		mutate   func(*flaggerv1beta1.Canary)
		want     string
	}{
		{flaggerv1beta1.ProviderNGINX, func(*flaggerv1beta1.Canary) {}, "nginx needs spec.ingressRef"},
		{flaggerv1beta1.ProviderNGINX, func(cd *flaggerv1beta1.Canary) {
			cd.Spec.IngressRef = &flaggerv1beta1.IngressReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "missing"}
		}, "named in spec.ingressRef does not exist"},
		{flaggerv1beta1.ProviderGatewayAPIV1, func(*flaggerv1beta1.Canary) {}, "gatewayapi needs spec.service.gatewayRefs"},
		{flaggerv1beta1.ProviderGatewayAPIV1, func(cd *flaggerv1beta1.Canary) {
			cd.Spec.Service.GatewayRefs = []flaggerv1beta1.ParentReference{{Name: "missing", Namespace: ptr.To("gateways")}}
		}, "the Gateway gateways/missing does not exist"},
		{flaggerv1beta1.ProviderContour, func(cd *flaggerv1beta1.Canary) {
			cd.Spec.Analysis.SessionAffinity = &flaggerv1beta1.SessionAffinity{CookieName: "canary-user"}
		}, "provider contour cannot pin users to a version with cookies"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			h := newHarness(t)
			h.metrics.set(0)
			h.create(newDeployment("podinfo", 1), newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
				cd.Spec.Provider = tt.provider
				cd.Spec.Analysis.Iterations = nil
				cd.Spec.Analysis.StepWeight, cd.Spec.Analysis.MaxWeight = ptr.To[int32](20), ptr.To[int32](40)
				tt.mutate(cd)
			}))
			h.eventually("a Valid=False UnsupportedRouting condition", func() (bool, string) {
				cd := h.canary("podinfo")
				for _, c := range cd.Status.Conditions {
					if c.Type == flaggerv1beta1.ValidType && c.Reason == "UnsupportedRouting" && strings.Contains(c.Message, tt.want) {
						return true, ""
					}
				}
				return false, fmt.Sprintf("%+v", cd.Status.Conditions)
			})
			h.waitEvent("podinfo", tt.want)
		})
	}
}

// TestEngine_SessionAffinityPinsUsersDuringTheReleaseOnly runs an Istio
// release with session affinity: while the canary takes traffic, the
// VirtualService sends requests with the analysis's cookie to it and sets
// the cookie on its responses; after the promotion the cookie is expired
// for the users who still send it.
func TestEngine_SessionAffinityPinsUsersDuringTheReleaseOnly(t *testing.T) {
	h := newHarness(t)
	h.metrics.set(0)
	h.create(newDeployment("podinfo", 1), newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Provider = flaggerv1beta1.ProviderIstio
		cd.Spec.Analysis.Iterations = nil
		cd.Spec.Analysis.StepWeight, cd.Spec.Analysis.MaxWeight = ptr.To[int32](20), ptr.To[int32](40)
		cd.Spec.Analysis.SessionAffinity = &flaggerv1beta1.SessionAffinity{CookieName: "canary-user", PrimaryCookieName: "primary-user", MaxAge: 3600}
	}))
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	h.setImage("podinfo", "ghcr.io/example/podinfo:6.1.0")

	var cookie string
	h.eventually("the canary cookie in the status and the VirtualService", func() (bool, string) {
		cd := h.canary("podinfo")
		cookie = cd.Status.SessionAffinityCookie
		vs := h.virtualService()
		if cookie == "" || cd.Status.PrimarySessionAffinityCookie == "" || len(vs.Spec.Http) != 3 {
			return false, fmt.Sprintf("status cookies %q %q, %d HTTP routes", cookie, cd.Status.PrimarySessionAffinityCookie, len(vs.Spec.Http))
		}
		sticky, def := vs.Spec.Http[0], vs.Spec.Http[2]
		pinned := sticky.Name == "sticky-canary" && strings.Contains(sticky.Match[0].Headers["cookie"].GetRegex(), cookie) &&
			sticky.Route[1].Weight == 100
		setsCookie := strings.HasPrefix(def.Route[1].GetHeaders().GetResponse().GetAdd()["Set-Cookie"], cookie+"; Max-Age=3600")
		return pinned && setsCookie, fmt.Sprintf("routes %v", vs.Spec.Http)
	})
	if !strings.HasPrefix(cookie, "canary-user=") {
		t.Errorf("sessionAffinityCookie = %q, want canary-user=<value>", cookie)
	}

	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseSucceeded)
	cd := h.canary("podinfo")
	if cd.Status.SessionAffinityCookie != "" || cd.Status.PrimarySessionAffinityCookie != "" || cd.Status.PreviousSessionAffinityCookie != cookie {
		t.Errorf("after the promotion the cookies are %q, %q, previous %q; want none, none, previous %q", cd.Status.SessionAffinityCookie,
			cd.Status.PrimarySessionAffinityCookie, cd.Status.PreviousSessionAffinityCookie, cookie)
	}
	// The status is written before the routes it implies (write-ahead).
	var vs *networkingv1.VirtualService
	h.eventually("the expire-cookie route after the promotion", func() (bool, string) {
		vs = h.virtualService()
		return len(vs.Spec.Http) == 2 && vs.Spec.Http[0].Name == "expire-cookie", fmt.Sprintf("routes %v", vs.Spec.Http)
	})
	expire := vs.Spec.Http[0]
	if got := expire.Route[0].GetHeaders().GetResponse().GetAdd()["Set-Cookie"]; got != cookie+"; Max-Age=-1" || expire.Route[0].Weight != 100 {
		t.Errorf("the expire-cookie route sends weight %d to the primary with Set-Cookie %q, want 100 and %q", expire.Route[0].Weight, got, cookie+"; Max-Age=-1")
	}
}

// virtualService reads the VirtualService podinfo.
func (h *harness) virtualService() *networkingv1.VirtualService {
	h.t.Helper()
	var vs networkingv1.VirtualService
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, &vs); err != nil {
		h.t.Fatalf("reading the VirtualService: %v", err)
	}
	return &vs
}
