package router_test

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/router"
)

var skipperProvider = splitProvider{
	name: flaggerv1beta1.ProviderSkipper,
	dir:  "skipper",
	spec: func(s *flaggerv1beta1.CanarySpec) {
		s.IngressRef = &flaggerv1beta1.IngressReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "public"}
	},
	setup: func(t *testing.T, ns string) {
		t.Helper()
		if err := env.Client.Create(t.Context(), skipperIngress(ns)); err != nil {
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
		ing, err := router.RenderSkipperIngress(cd, skipperIngress(cd.Namespace), r)
		if err != nil {
			return nil, err
		}
		return ingressView{Annotations: ing.Annotations, Spec: ing.Spec}, nil
	},
	edit: `{"metadata":{"annotations":{"zalando.org/backend-weights":"{\"podinfo-canary\":50,\"podinfo-primary\":50}"}},` +
		`"spec":{"ingressClassName":"someone-else"}}`,
}

// skipperIngress is the user's Ingress "public" of the skipper tests: a
// path to the apex Service, one to another Service, and a predicate of
// the user's.
func skipperIngress(ns string) *networkingv1.Ingress {
	ing := userIngress(ns)
	ing.Spec.IngressClassName = ptr.To("skipper")
	ing.Annotations = map[string]string{
		"zalando.org/skipper-predicate":                    `Header("X-Env", "prod")`,
		"kubectl.kubernetes.io/last-applied-configuration": "{}",
	}
	return ing
}
