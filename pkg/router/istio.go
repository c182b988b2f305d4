package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	istionetworking "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

const (
	// istioMeshGateway is the gateway name of the mesh's sidecars, the
	// default of spec.service.gateways.
	istioMeshGateway = "mesh"
	// istioDefaultRoute names the last HTTP route of the VirtualService,
	// the one that takes the requests no A/B route matched.
	istioDefaultRoute = "default"
)

// istioRouter is the router of provider "istio". It owns, for a Canary
// with apex Service <apex>:
//
//   - the DestinationRules <apex>-primary and <apex>-canary, for the
//     primary and canary Services, with spec.service.trafficPolicy, and
//     <apex>-baseline with analysis.baseline;
//   - the VirtualService <apex>, which splits the traffic for the apex
//     host (and spec.service.hosts) between the two Services, and the
//     baseline Service while the baseline has a share.
//
// They are written in networking.istio.io/v1 or, on clusters whose Istio
// is older than 1.22, v1beta1: the newest version the API server serves
// (istioAPIOf).
//
// Rendering is pure (renderVirtualService, renderDestinationRule); the
// objects are written with Ensure, which sets the whole spec, so an edit
// of someone else is reverted on the next Reconcile or SetRoutes.
type istioRouter struct {
	client client.Client
}

// rendersSessionAffinity marks the router as one that pins users with
// cookies (see affinity.go).
func (r *istioRouter) rendersSessionAffinity() {}

// rendersBaseline marks the router as one that routes to a baseline (see
// baseline.go).
func (r *istioRouter) rendersBaseline() {}

// OwnedObjects implements ObjectOwner.
func (r *istioRouter) OwnedObjects() []client.Object {
	return []client.Object{&networkingv1.VirtualService{}, &networkingv1.DestinationRule{}}
}

func newIstioRouter(d Deps) Interface {
	return &istioRouter{client: meshClientOf(d)}
}

// Reconcile creates or updates the DestinationRules and the
// VirtualService. The VirtualService keeps the split it holds, or routes
// all traffic to the primary when it is new or its split cannot be read.
func (r *istioRouter) Reconcile(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) error {
	api, err := istioAPIOf(r.client)
	if err != nil {
		return fmt.Errorf("reconciling the Istio routing of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	_, primary, canary := ServiceNames(cd)
	hosts := []string{primary, canary}
	if wantsBaseline(cd) {
		hosts = append(hosts, BaselineServiceName(cd))
	} else {
		dr, _ := api.destinationRule(metav1.ObjectMeta{Name: BaselineServiceName(cd), Namespace: cd.Namespace})
		if err := deleteOwned(ctx, r.client, cd, dr, "DestinationRule"); err != nil {
			return fmt.Errorf("reconciling the Istio routing of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
		}
	}
	for _, host := range hosts {
		dr, drSpec := api.destinationRule(metav1.ObjectMeta{Name: host, Namespace: cd.Namespace})
		_, err := Ensure(ctx, r.client, cd, dr, func() error {
			spec, err := renderDestinationRule(cd, host)
			if err != nil {
				return configError(err)
			}
			spec.DeepCopyInto(drSpec)
			return nil
		})
		if err != nil {
			return fmt.Errorf("reconciling the Istio routing of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
		}
	}
	if err := r.ensureVirtualService(ctx, cd, nil); err != nil {
		return fmt.Errorf("reconciling the Istio routing of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	return nil
}

// SetRoutes writes the split into the VirtualService, together with the
// rest of its spec.
func (r *istioRouter) SetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target, routes Routes) error {
	if err := checkShares(cd, routes); err != nil {
		return err
	}
	if err := r.ensureVirtualService(ctx, cd, &routes); err != nil {
		return fmt.Errorf("routing Canary %s/%s to %s: %w", cd.Namespace, cd.Name, describeSplit(routes), err)
	}
	return nil
}

// GetRoutes reads the split from the VirtualService: from its first (A/B)
// route during an A/B test, else from its last (default) route, or from
// its TCP route.
func (r *istioRouter) GetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) (Routes, error) {
	apex, _, _ := ServiceNames(cd)
	api, err := istioAPIOf(r.client)
	if err != nil {
		return Routes{}, err
	}
	vs, spec := api.virtualService(metav1.ObjectMeta{})
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: apex}, vs); err != nil {
		return Routes{}, fmt.Errorf("reading the VirtualService %s/%s of Canary %s: %w", cd.Namespace, apex, cd.Name, err)
	}
	routes, err := istioRoutes(spec, cd)
	if err != nil {
		return Routes{}, fmt.Errorf("reading the split of the VirtualService %s/%s of Canary %s: %w", cd.Namespace, apex, cd.Name, err)
	}
	return routes, nil
}

// Finalize does nothing. Sluice never takes over a VirtualService or
// DestinationRule it did not create (Ensure refuses them), so unlike
// Flagger, which may have taken over a user's VirtualService and restores
// it from an annotation, there is no earlier configuration to put back.
// The objects are owned by the Canary and the garbage collector deletes
// them after it; from then on the traffic for the apex host follows the
// apex Service, which is pointed at the restored target. Until then they
// keep routing to the primary, which is still running.
func (r *istioRouter) Finalize(context.Context, *flaggerv1beta1.Canary, Target) error {
	return nil
}

// ensureVirtualService creates or updates the VirtualService with routes,
// or with the split it holds when routes is nil.
func (r *istioRouter) ensureVirtualService(ctx context.Context, cd *flaggerv1beta1.Canary, routes *Routes) error {
	apex, _, _ := ServiceNames(cd)
	api, err := istioAPIOf(r.client)
	if err != nil {
		return err
	}
	vs, vsSpec := api.virtualService(metav1.ObjectMeta{Name: apex, Namespace: cd.Namespace})
	return ensureSplit(ctx, r.client, cd, vs, routes,
		func() (Routes, error) { return istioRoutes(vsSpec, cd) },
		func(want Routes) error {
			spec, err := renderVirtualService(cd, want)
			if err != nil {
				return configError(err)
			}
			spec.DeepCopyInto(vsSpec)
			setApexMetadata(vs, cd)
			return nil
		})
}

// renderDestinationRule returns the spec of the DestinationRule of the
// primary or canary Service host.
func renderDestinationRule(cd *flaggerv1beta1.Canary, host string) (*istionetworking.DestinationRule, error) {
	c := &istioConverter{}
	spec := &istionetworking.DestinationRule{Host: host, TrafficPolicy: c.trafficPolicy(cd.Spec.Service.TrafficPolicy)}
	return spec, c.Err()
}

// renderVirtualService returns the spec of the VirtualService <apex> for
// a split:
//
//   - hosts are spec.service.hosts and the apex name, gateways
//     spec.service.gateways or mesh; neither with delegation;
//   - with appProtocol tcp, one TCP route with the weighted destinations;
//   - else, during an A/B test, one route per analysis.match entry that
//     carries the split, then the default route to the primary; otherwise
//     only the default route, which carries the split. Every HTTP route has
//     spec.service's rewrite, timeout, retries, CORS policy and header
//     operations, and the default route has spec.service.match.
//   - A mirrored split copies the default route's requests to the canary
//     (mirrorPercentage from analysis.mirrorWeight).
//   - A split with a baseline share adds the baseline Service as a third
//     destination of the weighted route (or of the TCP route).
//   - With analysis.sessionAffinity, the cookie routes of affinityOf come
//     first, and the default route's destinations set the cookies.
func renderVirtualService(cd *flaggerv1beta1.Canary, routes Routes) (*istionetworking.VirtualService, error) {
	apex, primary, canary := ServiceNames(cd)
	baseline := BaselineServiceName(cd)
	svc := cd.Spec.Service
	port := uint32(svc.Port) //nolint:gosec // spec.service.port is checked to be within 0..65535 (canary.SpecProblemFor)
	spec := &istionetworking.VirtualService{}
	if !svc.Delegation {
		spec.Hosts = svc.Hosts
		if !slices.Contains(spec.Hosts, apex) {
			spec.Hosts = append(slices.Clip(spec.Hosts), apex)
		}
		spec.Gateways = svc.Gateways
		if len(spec.Gateways) == 0 {
			spec.Gateways = []string{istioMeshGateway}
		}
	}

	if strings.EqualFold(svc.AppProtocol, "tcp") {
		switch {
		case routes.Mirrored:
			return nil, errors.New("istio cannot mirror TCP traffic (spec.service.appProtocol is tcp)")
		case abTesting(cd):
			return nil, errors.New("A/B testing matches HTTP requests, but spec.service.appProtocol is tcp")
		case cd.Spec.Analysis != nil && cd.Spec.Analysis.SessionAffinity != nil:
			return nil, errors.New("session affinity sets HTTP cookies, but spec.service.appProtocol is tcp")
		}
		tcp := &istionetworking.TCPRoute{Route: []*istionetworking.RouteDestination{
			{Destination: istioDestination(primary, port), Weight: percent[int32](routes.Primary)},
			{Destination: istioDestination(canary, port), Weight: percent[int32](routes.Canary)},
		}}
		if routes.Baseline > 0 {
			tcp.Route = append(tcp.Route, &istionetworking.RouteDestination{Destination: istioDestination(baseline, port), Weight: percent[int32](routes.Baseline)})
		}
		spec.Tcp = []*istionetworking.TCPRoute{tcp}
		return spec, nil
	}

	c := &istioConverter{}
	def := &istionetworking.HTTPRoute{
		Name:       istioDefaultRoute,
		Match:      c.matches("spec.service.match", svc.Match),
		Route:      istioSplit(primary, canary, baseline, port, routes),
		Rewrite:    c.rewrite(svc.Rewrite),
		Timeout:    c.duration("spec.service.timeout", svc.Timeout),
		Retries:    c.retries(svc.Retries),
		CorsPolicy: c.corsPolicy(svc.CorsPolicy),
		Headers:    c.headers(svc.Headers),
	}
	if routes.Mirrored {
		def.Mirror = istioDestination(canary, port)
		if a := cd.Spec.Analysis; a != nil && a.MirrorWeight > 0 {
			def.MirrorPercentage = &istionetworking.Percent{Value: float64(a.MirrorWeight)}
		}
	}
	spec.Http = append(spec.Http, istioCookieRoutes(c, cd, def, routes)...)
	if abTesting(cd) {
		for i, cond := range cd.Spec.Analysis.Match {
			ab := proto.Clone(def).(*istionetworking.HTTPRoute)
			ab.Name = fmt.Sprintf("ab-%d", i)
			ab.Match = c.abMatches(fmt.Sprintf("spec.analysis.match[%d]", i), cond, def.Match)
			ab.Mirror, ab.MirrorPercentage = nil, nil
			spec.Http = append(spec.Http, ab)
		}
		def.Route = istioSplit(primary, canary, baseline, port, Routes{Primary: 100})
	}
	spec.Http = append(spec.Http, def)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return spec, nil
}

// istioDestination is a Service host and port.
func istioDestination(host string, port uint32) *istionetworking.Destination {
	return &istionetworking.Destination{Host: host, Port: &istionetworking.PortSelector{Number: port}}
}

// istioCookieRoutes returns the session affinity routes of a split (see
// affinityOf), built from the default route, and makes the default route's
// destinations set the cookies.
func istioCookieRoutes(c *istioConverter, cd *flaggerv1beta1.Canary, def *istionetworking.HTTPRoute, routes Routes) []*istionetworking.HTTPRoute {
	_, primary, canary := ServiceNames(cd)
	baseline := BaselineServiceName(cd)
	port := uint32(cd.Spec.Service.Port) //nolint:gosec // checked to be within 0..65535, as above
	aff := affinityOf(cd, routes)
	out := make([]*istionetworking.HTTPRoute, 0, len(aff.routes))
	for _, cr := range aff.routes {
		sticky := proto.Clone(def).(*istionetworking.HTTPRoute)
		sticky.Name = cr.name
		sticky.Match = c.abMatches("spec.analysis.sessionAffinity", cr.match(), def.Match)
		sticky.Mirror, sticky.MirrorPercentage = nil, nil
		sticky.Route = istioSplit(primary, canary, baseline, port, cr.routes())
		if cr.setCookie != "" {
			for _, d := range sticky.Route {
				if d.Weight == 100 {
					d.Headers = istioSetCookie(cr.setCookie)
				}
			}
		}
		out = append(out, sticky)
	}
	if aff.primarySetCookie != "" {
		def.Route[0].Headers = istioSetCookie(aff.primarySetCookie)
	}
	if aff.canarySetCookie != "" {
		def.Route[1].Headers = istioSetCookie(aff.canarySetCookie)
	}
	return out
}

// istioSetCookie adds a Set-Cookie header to the responses of a destination.
func istioSetCookie(value string) *istionetworking.Headers {
	return &istionetworking.Headers{Response: &istionetworking.Headers_HeaderOperations{Add: map[string]string{"Set-Cookie": value}}}
}

// istioSplit returns the weighted destinations of an HTTP route: the
// primary and the canary, and the baseline when it has a share.
func istioSplit(primary, canary, baseline string, port uint32, r Routes) []*istionetworking.HTTPRouteDestination {
	out := []*istionetworking.HTTPRouteDestination{
		{Destination: istioDestination(primary, port), Weight: percent[int32](r.Primary)},
		{Destination: istioDestination(canary, port), Weight: percent[int32](r.Canary)},
	}
	if r.Baseline > 0 {
		out = append(out, &istionetworking.HTTPRouteDestination{Destination: istioDestination(baseline, port), Weight: percent[int32](r.Baseline)})
	}
	return out
}

// istioRoutes reads the split of a VirtualService spec (see GetRoutes). A
// sole destination gets all traffic, whatever its weight, as in Istio.
func istioRoutes(spec *istionetworking.VirtualService, cd *flaggerv1beta1.Canary) (Routes, error) {
	_, primary, canary := ServiceNames(cd)
	var backends []weightedBackend
	mirrored := false
	switch {
	case len(spec.Http) > 0:
		route := spec.Http[len(spec.Http)-1]
		if abTesting(cd) {
			route = spec.Http[0]
		}
		for _, d := range route.Route {
			backends = append(backends, weightedBackend{name: d.GetDestination().GetHost(), weight: int(d.Weight)})
		}
		mirrored = route.GetMirror().GetHost() == canary || slices.ContainsFunc(route.Mirrors, func(m *istionetworking.HTTPMirrorPolicy) bool {
			return m.GetDestination().GetHost() == canary
		})
	case len(spec.Tcp) > 0:
		for _, d := range spec.Tcp[0].Route {
			backends = append(backends, weightedBackend{name: d.GetDestination().GetHost(), weight: int(d.Weight)})
		}
	default:
		return Routes{}, errors.New("it has neither HTTP nor TCP routes")
	}
	if len(backends) == 1 && backends[0].weight == 0 {
		backends[0].weight = 100
	}
	return splitWithBaseline(backends, primary, canary, BaselineServiceName(cd), mirrored), nil
}

// setApexMetadata sets the labels and annotations of spec.service.apex
// on a routing object, as SetMetadata does.
func setApexMetadata(obj client.Object, cd *flaggerv1beta1.Canary) {
	var labels, annotations map[string]string
	if m := cd.Spec.Service.Apex; m != nil {
		labels, annotations = m.Labels, m.Annotations
	}
	SetMetadata(obj, labels, annotations, cd.Spec.Service.UnmanagedMetadata)
}
