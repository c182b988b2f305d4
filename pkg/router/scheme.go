package router

import (
	"errors"
	"fmt"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// AddToScheme registers the third-party kinds that the routers read and
// write: Istio's networking v1 (VirtualService, DestinationRule) and
// Gateway API's v1 and v1beta1 (HTTPRoute). The client given to New must
// know them for the istio and gatewayapi providers.
func AddToScheme(s *runtime.Scheme) error {
	if err := errors.Join(networkingv1.AddToScheme(s), gatewayv1.Install(s), gatewayv1beta1.Install(s)); err != nil {
		return fmt.Errorf("registering the routers' kinds: %w", err)
	}
	return nil
}
