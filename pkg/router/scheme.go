package router

import (
	"errors"
	"fmt"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1beta1 "istio.io/client-go/pkg/apis/networking/v1beta1"
	"k8s.io/apimachinery/pkg/runtime"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	apisixv2 "github.com/sluicedev/sluice/pkg/apis/apisix/v2"
	appmeshv1beta1 "github.com/sluicedev/sluice/pkg/apis/appmesh/v1beta1"
	appmeshv1beta2 "github.com/sluicedev/sluice/pkg/apis/appmesh/v1beta2"
	contourv1 "github.com/sluicedev/sluice/pkg/apis/contour/v1"
	gloogatewayv1 "github.com/sluicedev/sluice/pkg/apis/gloo/gateway/v1"
	gloov1 "github.com/sluicedev/sluice/pkg/apis/gloo/v1"
	knativev1 "github.com/sluicedev/sluice/pkg/apis/knative/v1"
	kumav1alpha1 "github.com/sluicedev/sluice/pkg/apis/kuma/v1alpha1"
	smiv1alpha1 "github.com/sluicedev/sluice/pkg/apis/smi/v1alpha1"
	smiv1alpha2 "github.com/sluicedev/sluice/pkg/apis/smi/v1alpha2"
	smiv1alpha3 "github.com/sluicedev/sluice/pkg/apis/smi/v1alpha3"
	traefikv1alpha1 "github.com/sluicedev/sluice/pkg/apis/traefik/v1alpha1"
)

// AddToScheme registers the third-party kinds that the routers read and
// write: Istio's networking v1 and v1beta1 (VirtualService,
// DestinationRule), Gateway API's v1 and v1beta1 (HTTPRoute), SMI's
// TrafficSplit in v1alpha1, v1alpha2 and v1alpha3, Contour's HTTPProxy,
// Traefik's TraefikService, Gloo's Upstream and RouteTable, Kuma's
// TrafficRoute, APISIX's ApisixRoute, App Mesh's v1beta1 and v1beta2 kinds
// and Knative's Service. The client given to New must know them for the
// providers that use them.
func AddToScheme(s *runtime.Scheme) error {
	if err := errors.Join(networkingv1.AddToScheme(s), networkingv1beta1.AddToScheme(s), gatewayv1.Install(s), gatewayv1beta1.Install(s),
		smiv1alpha1.AddToScheme(s), smiv1alpha2.AddToScheme(s), smiv1alpha3.AddToScheme(s), contourv1.AddToScheme(s),
		traefikv1alpha1.AddToScheme(s), gloov1.AddToScheme(s), gloogatewayv1.AddToScheme(s), kumav1alpha1.AddToScheme(s),
		apisixv2.AddToScheme(s), appmeshv1beta1.AddToScheme(s), appmeshv1beta2.AddToScheme(s), knativev1.AddToScheme(s)); err != nil {
		return fmt.Errorf("registering the routers' kinds: %w", err)
	}
	return nil
}
