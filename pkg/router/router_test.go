package router_test

import (
	"strings"
	"testing"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/router"
)

func TestServiceNames_DefaultsToTargetName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, service, target        string
		wantApex, wantPrim, wantCana string
	}{
		{name: "target name", target: "podinfo", wantApex: "podinfo", wantPrim: "podinfo-primary", wantCana: "podinfo-canary"},
		{name: "service name", service: "frontend", target: "podinfo", wantApex: "frontend", wantPrim: "frontend-primary", wantCana: "frontend-canary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cd := &flaggerv1beta1.Canary{Spec: flaggerv1beta1.CanarySpec{
				TargetRef: flaggerv1beta1.LocalObjectReference{Name: tc.target},
				Service:   flaggerv1beta1.CanaryService{Name: tc.service},
			}}
			apex, primary, canary := router.ServiceNames(cd)
			if apex != tc.wantApex || primary != tc.wantPrim || canary != tc.wantCana {
				t.Errorf("ServiceNames = %s, %s, %s; want %s, %s, %s", apex, primary, canary, tc.wantApex, tc.wantPrim, tc.wantCana)
			}
		})
	}
}

func TestNew_ReturnsKnownProvidersAndRejectsOthers(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		"kubernetes", "istio", "gatewayapi:v1", "gatewayapi:v1beta1", "nginx",
		"linkerd", "smi:v1alpha1", "smi:v1alpha2", "smi:v1alpha3", "osm", "contour", "traefik",
		"gloo", "kuma", "apisix", "skipper", "knative", "appmesh", "appmesh:v1beta2",
		"smi:v1alpha3:linkerd", "smi:v1alpha2:osm", // SMI with the mesh named, as -mesh-provider takes it
	} {
		if r, err := router.New(name, router.Deps{Client: env.Client}); err != nil || r == nil {
			t.Errorf("New(%q) = %v, %v; want a router", name, r, err)
		}
	}
	// Bare gatewayapi is mapped to v1 by the flag layer; the registry
	// itself has no defaults and no fallback.
	for _, name := range []string{"nosuch", "", "gatewayapi", "gatewayapi:v2", "Istio", "smi", "smi:v1alpha4", "smi:v1alpha4:linkerd", "smi:v1alpha3:", "smi:v1alpha3:a:b"} {
		_, err := router.New(name, router.Deps{Client: env.Client})
		if err == nil || !strings.Contains(err.Error(), "is not supported; supported: ") || !strings.Contains(err.Error(), "apisix, appmesh, appmesh:v1beta2, contour, gatewayapi:v1, gatewayapi:v1beta1, gloo, istio, knative, kubernetes, kuma, linkerd, nginx, osm, skipper, smi:v1alpha1, smi:v1alpha2, smi:v1alpha3, traefik") {
			t.Errorf("New(%q) error = %v, want one listing the supported providers", name, err)
		}
	}
}

// flaggerProviders are the values Flagger v1.44.0 accepts in a Canary's
// spec.provider: the enum of that field in Flagger's CRD
// (artifacts/flagger/crd.yaml, spec.versions[v1beta1].schema
// .openAPIV3Schema.properties.spec.properties.provider.enum), written here
// as literals so that a change on either side shows.
var flaggerProviders = []string{
	"apisix", "appmesh", "appmesh:v1beta2", "contour", "gatewayapi:v1", "gatewayapi:v1beta1", "gloo", "istio", "knative",
	"kubernetes", "kuma", "linkerd", "nginx", "osm", "skipper", "smi:v1alpha1", "smi:v1alpha2", "smi:v1alpha3", "traefik",
}

func TestNew_AcceptsEveryProviderFlaggerAccepts(t *testing.T) {
	t.Parallel()
	for _, name := range flaggerProviders {
		if r, err := router.New(name, router.Deps{Client: env.Client}); err != nil || r == nil {
			t.Errorf("New(%q) = %v, %v; Flagger v1.44.0 accepts this provider, so Sluice must route it", name, r, err)
		}
	}
}

func TestPercent_BoundsSharesInsteadOfWrappingAround(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		share int
		want  uint32
	}{
		{share: 0, want: 0}, {share: 35, want: 35}, {share: 100, want: 100},
		// Out of range: a negative weight must not become 4294967291.
		{share: -5, want: 0}, {share: 250, want: 100}, {share: 1 << 40, want: 100},
	} {
		if got := router.PercentUint32(tc.share); got != tc.want {
			t.Errorf("PercentUint32(%d) = %d, want %d", tc.share, got, tc.want)
		}
		if got := router.PercentInt32(tc.share); got != int32(tc.want) {
			t.Errorf("PercentInt32(%d) = %d, want %d", tc.share, got, tc.want)
		}
	}
}
