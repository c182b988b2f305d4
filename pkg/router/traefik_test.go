package router_test

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	traefikv1alpha1 "github.com/sluicedev/sluice/pkg/apis/traefik/v1alpha1"
	"github.com/sluicedev/sluice/pkg/router"
)

var traefikProvider = splitProvider{
	name: flaggerv1beta1.ProviderTraefik,
	dir:  "traefik",
	spec: func(*flaggerv1beta1.CanarySpec) {},
	object: func(ns string) client.Object {
		return &traefikv1alpha1.TraefikService{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns}}
	},
	specOf: func(t *testing.T, obj client.Object) []byte {
		return specYAML(t, obj.(*traefikv1alpha1.TraefikService).Spec)
	},
	render: func(cd *flaggerv1beta1.Canary, r router.Routes) (any, error) {
		return router.RenderTraefikService(cd, r)
	},
	mirrors: true,
	edit: `{"spec":{"weighted":{"services":[{"name":"podinfo-primary","port":9898,"weight":50},` +
		`{"name":"podinfo-canary","port":9898,"weight":50},{"name":"elsewhere","port":80,"weight":0}]}}}`,
}

func TestRenderTraefikService_MirrorsOnlyWhileThePrimaryAnswersAll(t *testing.T) {
	t.Parallel()
	cd := &flaggerv1beta1.Canary{Spec: flaggerv1beta1.CanarySpec{
		TargetRef: flaggerv1beta1.LocalObjectReference{Name: "podinfo"},
		Service:   flaggerv1beta1.CanaryService{Port: 9898},
		Analysis:  &flaggerv1beta1.CanaryAnalysis{},
	}}
	mirroring(cd.Spec.Analysis)
	_, err := router.RenderTraefikService(cd, router.Routes{Primary: 90, Canary: 10, Mirrored: true})
	if err == nil || !strings.Contains(err.Error(), "mirrors to the canary only while the primary answers all requests") {
		t.Errorf("error = %v, want one about mirroring only at 100%% primary", err)
	}
}
