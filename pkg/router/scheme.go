package router

import (
	"errors"
	"fmt"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	contourv1 "github.com/sluicedev/sluice/pkg/apis/contour/v1"
	smiv1alpha1 "github.com/sluicedev/sluice/pkg/apis/smi/v1alpha1"
	smiv1alpha2 "github.com/sluicedev/sluice/pkg/apis/smi/v1alpha2"
	smiv1alpha3 "github.com/sluicedev/sluice/pkg/apis/smi/v1alpha3"
	traefikv1alpha1 "github.com/sluicedev/sluice/pkg/apis/traefik/v1alpha1"
)

// AddToScheme registers the third-party kinds that the routers read and
// write: Istio's networking v1 (VirtualService, DestinationRule) and
// Gateway API's v1 and v1beta1 (HTTPRoute), and SMI's TrafficSplit in
// v1alpha1, v1alpha2 and v1alpha3, Contour's HTTPProxy and Traefik's
// TraefikService. The client given to New must know them for the istio,
// gatewayapi, linkerd, smi, osm, contour and traefik providers.
func AddToScheme(s *runtime.Scheme) error {
	if err := errors.Join(networkingv1.AddToScheme(s), gatewayv1.Install(s), gatewayv1beta1.Install(s),
		smiv1alpha1.AddToScheme(s), smiv1alpha2.AddToScheme(s), smiv1alpha3.AddToScheme(s), contourv1.AddToScheme(s),
		traefikv1alpha1.AddToScheme(s)); err != nil {
		return fmt.Errorf("registering the routers' kinds: %w", err)
	}
	return nil
}
