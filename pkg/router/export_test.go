package router

// The pure renderers, for the golden tests of package router_test.
var (
	// RenderVirtualService is renderVirtualService.
	RenderVirtualService = renderVirtualService
	// RenderDestinationRule is renderDestinationRule.
	RenderDestinationRule = renderDestinationRule
	// RenderHTTPRoute is renderHTTPRoute.
	RenderHTTPRoute = renderHTTPRoute
)
