package router

import (
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// The pure renderers, for the golden tests of package router_test.
var (
	// RenderVirtualService is renderVirtualService.
	RenderVirtualService = renderVirtualService
	// RenderDestinationRule is renderDestinationRule.
	RenderDestinationRule = renderDestinationRule
	// RenderHTTPRoute is renderHTTPRoute.
	RenderHTTPRoute = renderHTTPRoute
	// RenderCanaryIngress is renderCanaryIngress.
	RenderCanaryIngress = renderCanaryIngress
	// PercentInt32 and PercentUint32 are percent for the weight types of
	// the mesh APIs.
	PercentInt32  = percent[int32]
	PercentUint32 = percent[uint32]
)

// RenderTrafficSplit renders the spec of the TrafficSplit of an SMI API
// version ("v1alpha1", "v1alpha2" or "v1alpha3") for a split.
func RenderTrafficSplit(version string, cd *flaggerv1beta1.Canary, r Routes) (any, error) {
	v := map[string]smiVersion{"v1alpha1": smiV1alpha1, "v1alpha2": smiV1alpha2, "v1alpha3": smiV1alpha3}[version]
	split, err := renderTrafficSplit(cd, r)
	if err != nil {
		return nil, err
	}
	obj := v.newObject()
	if err := v.write(obj, split); err != nil {
		return nil, err
	}
	return v.spec(obj), nil
}

// RenderHTTPProxy is renderHTTPProxy.
var RenderHTTPProxy = renderHTTPProxy

// RenderTraefikService is renderTraefikService.
var RenderTraefikService = renderTraefikService

// The renderers of the gloo, kuma, apisix, skipper and knative routers.
var (
	// RenderRouteTable is renderRouteTable.
	RenderRouteTable = renderRouteTable
	// RenderTrafficRoute is renderTrafficRoute.
	RenderTrafficRoute = renderTrafficRoute
	// RenderApisixRoute is renderApisixRoute.
	RenderApisixRoute = renderApisixRoute
	// RenderSkipperIngress is renderSkipperIngress.
	RenderSkipperIngress = renderSkipperIngress
	// RenderKnativeTraffic is renderKnativeTraffic.
	RenderKnativeTraffic = renderKnativeTraffic
)

// RenderAppMeshVirtualService renders the spec of the apex App Mesh
// v1beta1 VirtualService for a split.
func RenderAppMeshVirtualService(cd *flaggerv1beta1.Canary, r Routes) (any, error) {
	apex, _, _ := ServiceNames(cd)
	return renderAppMeshVirtualService(cd, apex, r)
}

// RenderAppMeshVirtualRouter renders the spec of the apex App Mesh
// v1beta2 VirtualRouter for a split.
func RenderAppMeshVirtualRouter(cd *flaggerv1beta1.Canary, r Routes) (any, error) {
	apex, _, _ := ServiceNames(cd)
	return renderAppMeshVirtualRouter(cd, apex, r)
}

// IstioAPIVersion returns the version of Istio's networking kinds that
// the istio router writes through c.
func IstioAPIVersion(c client.Client) (string, error) {
	api, err := istioAPIOf(c)
	return api.version, err
}
