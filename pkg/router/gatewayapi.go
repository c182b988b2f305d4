package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// errNoGatewayRefs is returned for a Canary without a parent Gateway.
var errNoGatewayRefs = errors.New("gatewayapi needs spec.service.gatewayRefs: the HTTPRoute must attach to a Gateway")

// gatewayAPIRouter is the router of providers "gatewayapi:v1" and
// "gatewayapi:v1beta1". It owns the HTTPRoute <apex>, attached to the
// Gateways of spec.service.gatewayRefs, which splits the traffic for
// spec.service.hosts between the primary and canary Services, and the
// baseline Service while the baseline has a share.
//
// The two providers differ only in the API version of the HTTPRoute; the
// v1beta1 kind is the v1 kind under another name, still served by the
// standard-channel CRD. Rendering is pure (renderHTTPRoute); the object is
// written with Ensure, which sets the whole spec and Sluice's metadata, so
// an edit of someone else to the spec is reverted on the next Reconcile or
// SetRoutes, while annotations and status set by other controllers stay.
type gatewayAPIRouter struct {
	client client.Client
	// reader checks that the parent Gateways exist.
	reader client.Reader
	// newRoute returns an empty HTTPRoute of the router's API version and
	// a v1 view of the same object.
	newRoute func() (client.Object, *gatewayv1.HTTPRoute)
}

// rendersSessionAffinity marks the router as one that pins users with
// cookies (see affinity.go).
func (r *gatewayAPIRouter) rendersSessionAffinity() {}

// rendersBaseline marks the router as one that routes to a baseline (see
// baseline.go).
func (r *gatewayAPIRouter) rendersBaseline() {}

// OwnedObjects implements ObjectOwner.
func (r *gatewayAPIRouter) OwnedObjects() []client.Object {
	obj, _ := r.newRoute()
	return []client.Object{obj}
}

func newGatewayAPIV1Router(d Deps) Interface {
	return &gatewayAPIRouter{client: meshClientOf(d), reader: meshReaderOf(d), newRoute: func() (client.Object, *gatewayv1.HTTPRoute) {
		r := &gatewayv1.HTTPRoute{}
		return r, r
	}}
}

func newGatewayAPIV1beta1Router(d Deps) Interface {
	return &gatewayAPIRouter{client: meshClientOf(d), reader: meshReaderOf(d), newRoute: func() (client.Object, *gatewayv1.HTTPRoute) {
		r := &gatewayv1beta1.HTTPRoute{}
		return r, (*gatewayv1.HTTPRoute)(r)
	}}
}

// Reconcile creates or updates the HTTPRoute. It keeps the split the
// HTTPRoute holds, or routes all traffic to the primary when it is new or
// its split cannot be read.
func (r *gatewayAPIRouter) Reconcile(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) error {
	if err := r.checkParents(ctx, cd); err != nil {
		return fmt.Errorf("reconciling the HTTPRoute of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	if err := r.ensureHTTPRoute(ctx, cd, nil); err != nil {
		return fmt.Errorf("reconciling the HTTPRoute of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	return nil
}

// checkParents reports a parent Gateway of spec.service.gatewayRefs that
// does not exist: the HTTPRoute would attach to nothing and no request
// would reach either version. Parents of other kinds (a Service, for a
// mesh) are not checked.
func (r *gatewayAPIRouter) checkParents(ctx context.Context, cd *flaggerv1beta1.Canary) error {
	for i, p := range cd.Spec.Service.GatewayRefs {
		if cmp.Or(ptr.Deref(p.Group, ""), gatewayv1.GroupName) != gatewayv1.GroupName || cmp.Or(ptr.Deref(p.Kind, ""), "Gateway") != "Gateway" {
			continue
		}
		key := client.ObjectKey{Namespace: cmp.Or(ptr.Deref(p.Namespace, ""), cd.Namespace), Name: p.Name}
		err := r.reader.Get(ctx, key, &gatewayv1.Gateway{})
		switch {
		case apierrors.IsNotFound(err):
			return configError(fmt.Errorf("spec.service.gatewayRefs[%d]: the Gateway %s does not exist; create it or point gatewayRefs at an existing one", i, key))
		case err != nil:
			return fmt.Errorf("reading the Gateway %s of spec.service.gatewayRefs[%d]: %w", key, i, err)
		}
	}
	return nil
}

// SetRoutes writes the split into the HTTPRoute, together with the rest
// of its spec.
func (r *gatewayAPIRouter) SetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target, routes Routes) error {
	if err := checkShares(cd, routes); err != nil {
		return err
	}
	if err := r.ensureHTTPRoute(ctx, cd, &routes); err != nil {
		return fmt.Errorf("routing Canary %s/%s to %s: %w", cd.Namespace, cd.Name, describeSplit(routes), err)
	}
	return nil
}

// GetRoutes reads the split from the HTTPRoute's backend weights: from its
// first (A/B) rule during an A/B test, else from its last (default) rule.
// Weights are reported as written; Sluice writes percentages.
func (r *gatewayAPIRouter) GetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) (Routes, error) {
	apex, _, _ := ServiceNames(cd)
	obj, route := r.newRoute()
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: apex}, obj); err != nil {
		return Routes{}, fmt.Errorf("reading the HTTPRoute %s/%s of Canary %s: %w", cd.Namespace, apex, cd.Name, err)
	}
	routes, err := httpRouteRoutes(&route.Spec, cd)
	if err != nil {
		return Routes{}, fmt.Errorf("reading the split of the HTTPRoute %s/%s of Canary %s: %w", cd.Namespace, apex, cd.Name, err)
	}
	return routes, nil
}

// Finalize does nothing, for the reasons given at istioRouter.Finalize:
// the HTTPRoute is Sluice's own and is deleted with the Canary; the
// Gateways it attached to are the user's and were never edited.
func (r *gatewayAPIRouter) Finalize(context.Context, *flaggerv1beta1.Canary, Target) error {
	return nil
}

// ensureHTTPRoute creates or updates the HTTPRoute with routes, or with
// the split it holds when routes is nil.
func (r *gatewayAPIRouter) ensureHTTPRoute(ctx context.Context, cd *flaggerv1beta1.Canary, routes *Routes) error {
	apex, _, _ := ServiceNames(cd)
	obj, route := r.newRoute()
	route.ObjectMeta = metav1.ObjectMeta{Name: apex, Namespace: cd.Namespace}
	return ensureSplit(ctx, r.client, cd, obj, routes,
		func() (Routes, error) { return httpRouteRoutes(&route.Spec, cd) },
		func(want Routes) error {
			spec, err := renderHTTPRoute(cd, want)
			if err != nil {
				return configError(err)
			}
			route.Spec = spec
			setApexMetadata(obj, cd)
			return nil
		})
}

// renderHTTPRoute returns the spec of the HTTPRoute <apex> for a split:
//
//   - parentRefs are spec.service.gatewayRefs, hostnames spec.service.hosts;
//   - during an A/B test, one rule per analysis.match entry that carries
//     the split, then the default rule to the primary; otherwise only the
//     default rule, which carries the split. The A/B rules match more
//     conditions than the default rule, so they take precedence.
//   - Every rule has the matches of spec.service.match (a prefix match on
//     / without), header modifiers from spec.service.headers, a URL rewrite
//     from spec.service.rewrite, a CORS filter from spec.service.corsPolicy
//     and timeouts from spec.service.timeout and backendTimeout. The
//     default rule also has the request mirrors of spec.service.mirror and,
//     for a mirrored split, a mirror to the canary (percent from
//     analysis.mirrorWeight).
//   - With analysis.sessionAffinity, the cookie rules of affinityOf come
//     first (their header match makes them more specific than the default
//     rule too), and the default rule's backends set the cookies.
//   - A split with a baseline share adds the baseline Service as a third
//     backend of the weighted rule.
//
// Fields the API server would default are written out, so that the stored
// object equals the rendered one and an unchanged spec causes no write.
func renderHTTPRoute(cd *flaggerv1beta1.Canary, routes Routes) (gatewayv1.HTTPRouteSpec, error) {
	svc := cd.Spec.Service
	if len(svc.GatewayRefs) == 0 {
		return gatewayv1.HTTPRouteSpec{}, errNoGatewayRefs
	}
	_, primary, canary := ServiceNames(cd)
	baseline := BaselineServiceName(cd)
	c := &gatewayConverter{}
	spec := gatewayv1.HTTPRouteSpec{}
	for _, p := range svc.GatewayRefs {
		spec.ParentRefs = append(spec.ParentRefs, gatewayv1.ParentReference{
			Group:       ptr.To(gatewayv1.Group(cmp.Or(ptr.Deref(p.Group, ""), gatewayv1.GroupName))),
			Kind:        ptr.To(gatewayv1.Kind(cmp.Or(ptr.Deref(p.Kind, ""), "Gateway"))),
			Namespace:   (*gatewayv1.Namespace)(p.Namespace),
			Name:        gatewayv1.ObjectName(p.Name),
			SectionName: (*gatewayv1.SectionName)(p.SectionName),
			Port:        p.Port,
		})
	}
	for _, h := range svc.Hosts {
		spec.Hostnames = append(spec.Hostnames, gatewayv1.Hostname(h))
	}

	filters := c.filters(svc)
	def := gatewayv1.HTTPRouteRule{
		Matches:     c.matches("spec.service.match", svc.Match),
		Filters:     filters,
		BackendRefs: gatewaySplit(primary, canary, baseline, svc.Port, routes),
		Timeouts:    gatewayTimeouts(svc),
	}
	for _, m := range svc.Mirror {
		def.Filters = append(def.Filters, gatewayMirror(m.BackendRef, nil))
	}
	if routes.Mirrored {
		var percent *int32
		if a := cd.Spec.Analysis; a != nil && a.MirrorWeight > 0 {
			percent = ptr.To(a.MirrorWeight)
		}
		def.Filters = append(def.Filters, gatewayMirror(flaggerv1beta1.BackendObjectReference{Name: canary, Port: ptr.To(svc.Port)}, percent))
	}
	aff := affinityOf(cd, routes)
	for _, cr := range aff.routes {
		sticky := gatewayv1.HTTPRouteRule{
			Matches:     c.abMatches("spec.analysis.sessionAffinity", cr.match(), def.Matches),
			Filters:     slices.Clone(filters),
			BackendRefs: gatewaySplit(primary, canary, baseline, svc.Port, cr.routes()),
			Timeouts:    gatewayTimeouts(svc),
		}
		if cr.setCookie != "" {
			for i := range sticky.BackendRefs {
				if ptr.Deref(sticky.BackendRefs[i].Weight, 0) == 100 {
					sticky.BackendRefs[i].Filters = gatewaySetCookie(cr.setCookie)
				}
			}
		}
		spec.Rules = append(spec.Rules, sticky)
	}
	if aff.primarySetCookie != "" {
		def.BackendRefs[0].Filters = gatewaySetCookie(aff.primarySetCookie)
	}
	if aff.canarySetCookie != "" {
		def.BackendRefs[1].Filters = gatewaySetCookie(aff.canarySetCookie)
	}
	if abTesting(cd) {
		for i, cond := range cd.Spec.Analysis.Match {
			spec.Rules = append(spec.Rules, gatewayv1.HTTPRouteRule{
				Matches:     c.abMatches(fmt.Sprintf("spec.analysis.match[%d]", i), cond, def.Matches),
				Filters:     slices.Clone(filters),
				BackendRefs: gatewaySplit(primary, canary, baseline, svc.Port, routes),
				Timeouts:    gatewayTimeouts(svc),
			})
		}
		def.BackendRefs = gatewaySplit(primary, canary, baseline, svc.Port, Routes{Primary: 100})
	}
	spec.Rules = append(spec.Rules, def)
	if err := c.Err(); err != nil {
		return gatewayv1.HTTPRouteSpec{}, err
	}
	return spec, nil
}

// gatewayBackend is a Service backend, with the API server's defaults.
func gatewayBackend(ref flaggerv1beta1.BackendObjectReference) gatewayv1.BackendObjectReference {
	return gatewayv1.BackendObjectReference{
		Group:     ptr.To(gatewayv1.Group(ptr.Deref(ref.Group, ""))),
		Kind:      ptr.To(gatewayv1.Kind(cmp.Or(ptr.Deref(ref.Kind, ""), "Service"))),
		Name:      gatewayv1.ObjectName(ref.Name),
		Namespace: (*gatewayv1.Namespace)(ref.Namespace),
		Port:      ref.Port,
	}
}

// gatewaySplit returns the weighted backends of a rule: the primary and
// the canary, and the baseline when it has a share.
func gatewaySplit(primary, canary, baseline string, port int32, r Routes) []gatewayv1.HTTPBackendRef {
	ref := func(name string, weight int) gatewayv1.HTTPBackendRef {
		return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
			BackendObjectReference: gatewayBackend(flaggerv1beta1.BackendObjectReference{Name: name, Port: ptr.To(port)}),
			Weight:                 ptr.To(percent[int32](weight)),
		}}
	}
	out := []gatewayv1.HTTPBackendRef{ref(primary, r.Primary), ref(canary, r.Canary)}
	if r.Baseline > 0 {
		out = append(out, ref(baseline, r.Baseline))
	}
	return out
}

// gatewaySetCookie is a backend filter that adds a Set-Cookie header to
// the backend's responses.
func gatewaySetCookie(value string) []gatewayv1.HTTPRouteFilter {
	return []gatewayv1.HTTPRouteFilter{{
		Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier,
		ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{
			Add: []gatewayv1.HTTPHeader{{Name: "Set-Cookie", Value: value}},
		},
	}}
}

// gatewayMirror is a RequestMirror filter.
func gatewayMirror(ref flaggerv1beta1.BackendObjectReference, percent *int32) gatewayv1.HTTPRouteFilter {
	return gatewayv1.HTTPRouteFilter{
		Type:          gatewayv1.HTTPRouteFilterRequestMirror,
		RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{BackendRef: gatewayBackend(ref), Percent: percent},
	}
}

// gatewayTimeouts returns the timeouts of a rule, or nil.
func gatewayTimeouts(svc flaggerv1beta1.CanaryService) *gatewayv1.HTTPRouteTimeouts {
	if svc.Timeout == "" && svc.BackendTimeout == "" {
		return nil
	}
	t := &gatewayv1.HTTPRouteTimeouts{}
	if svc.Timeout != "" {
		t.Request = ptr.To(gatewayv1.Duration(svc.Timeout))
	}
	if svc.BackendTimeout != "" {
		t.BackendRequest = ptr.To(gatewayv1.Duration(svc.BackendTimeout))
	}
	return t
}

// httpRouteRoutes reads the split of an HTTPRoute spec (see GetRoutes). A
// backend without a weight has the API's default weight, 1.
func httpRouteRoutes(spec *gatewayv1.HTTPRouteSpec, cd *flaggerv1beta1.Canary) (Routes, error) {
	if len(spec.Rules) == 0 {
		return Routes{}, errors.New("it has no rules")
	}
	_, primary, canary := ServiceNames(cd)
	rule := spec.Rules[len(spec.Rules)-1]
	if abTesting(cd) {
		rule = spec.Rules[0]
	}
	backends := make([]weightedBackend, 0, len(rule.BackendRefs))
	for _, b := range rule.BackendRefs {
		if ptr.Deref(b.Group, "") == "" && ptr.Deref(b.Kind, "Service") == "Service" {
			backends = append(backends, weightedBackend{name: string(b.Name), weight: int(ptr.Deref(b.Weight, 1))})
		}
	}
	mirrored := slices.ContainsFunc(rule.Filters, func(f gatewayv1.HTTPRouteFilter) bool {
		return f.Type == gatewayv1.HTTPRouteFilterRequestMirror && f.RequestMirror != nil && string(f.RequestMirror.BackendRef.Name) == canary
	})
	return splitWithBaseline(backends, primary, canary, BaselineServiceName(cd), mirrored), nil
}
