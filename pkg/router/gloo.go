package router

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	gloogatewayv1 "github.com/sluicedev/sluice/pkg/apis/gloo/gateway/v1"
	gloov1 "github.com/sluicedev/sluice/pkg/apis/gloo/v1"
)

// glooRouter is the router of provider "gloo" (Gloo Edge). It owns, for a
// Canary with apex Service <apex> and port <port> in namespace <ns>:
//
//   - the Upstreams <ns>-<apex>-primaryupstream-<port> and
//     <ns>-<apex>-canaryupstream-<port>, for the primary and canary
//     Services, with the settings of the Upstream named in
//     spec.upstreamRef, if any (Flagger's names, which its builtin metrics
//     match);
//   - the RouteTable <apex>, which a Gloo VirtualService of the user's
//     delegates to, and whose routes split the requests between the two
//     upstreams by weight.
//
// During an A/B test the first route takes the requests that match one of
// the analysis.match entries and carries the split; the last route sends
// the rest to the primary. Gloo cannot mirror requests through a route
// table, so a mirrored split is refused. Rendering is pure (renderUpstream,
// renderRouteTable); the objects are written with Ensure, so an edit of
// someone else to their spec is reverted on the next Reconcile or
// SetRoutes.
type glooRouter struct {
	client client.Client
	// reader reads the template Upstream of spec.upstreamRef, which may be
	// in a namespace the cache does not cover.
	reader client.Reader
}

// OwnedObjects implements ObjectOwner.
func (r *glooRouter) OwnedObjects() []client.Object {
	return []client.Object{&gloogatewayv1.RouteTable{}, &gloov1.Upstream{}}
}

func newGlooRouter(d Deps) Interface {
	return &glooRouter{client: meshClientOf(d), reader: meshReaderOf(d)}
}

// glooUpstreamName is the name of the Upstream of the primary or canary
// Service (role "primary" or "canary").
func glooUpstreamName(cd *flaggerv1beta1.Canary, role string) string {
	apex, _, _ := ServiceNames(cd)
	return fmt.Sprintf("%s-%s-%supstream-%d", cd.Namespace, apex, role, cd.Spec.Service.Port)
}

// Reconcile creates or updates the two Upstreams and the RouteTable. The
// RouteTable keeps the split it holds, or routes all traffic to the
// primary when it is new or its split cannot be read.
func (r *glooRouter) Reconcile(ctx context.Context, cd *flaggerv1beta1.Canary, t Target) error {
	template, err := r.templateUpstream(ctx, cd)
	if err != nil {
		return fmt.Errorf("reconciling the Gloo routing of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	_, primary, canary := ServiceNames(cd)
	for _, u := range []struct {
		role, service string
		selector      map[string]string
	}{
		{"primary", primary, primarySelector(t)},
		{"canary", canary, canarySelector(t)},
	} {
		up := &gloov1.Upstream{ObjectMeta: metav1.ObjectMeta{Name: glooUpstreamName(cd, u.role), Namespace: cd.Namespace}}
		if _, err := Ensure(ctx, r.client, cd, up, func() error {
			up.Spec = renderUpstream(cd, u.service, u.selector, template)
			return nil
		}); err != nil {
			return fmt.Errorf("reconciling the Gloo routing of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
		}
	}
	if err := r.ensureRouteTable(ctx, cd, nil); err != nil {
		return fmt.Errorf("reconciling the Gloo routing of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	return nil
}

// SetRoutes writes the split into the RouteTable.
func (r *glooRouter) SetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target, routes Routes) error {
	if err := checkSplit(cd, routes); err != nil {
		return err
	}
	if err := r.ensureRouteTable(ctx, cd, &routes); err != nil {
		return fmt.Errorf("routing Canary %s/%s to primary %d%%, canary %d%% (mirrored: %t): %w",
			cd.Namespace, cd.Name, routes.Primary, routes.Canary, routes.Mirrored, err)
	}
	return nil
}

// GetRoutes reads the split from the RouteTable: from its first route
// during an A/B test, else from its last.
func (r *glooRouter) GetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) (Routes, error) {
	apex, _, _ := ServiceNames(cd)
	rt := &gloogatewayv1.RouteTable{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: apex}, rt); err != nil {
		return Routes{}, fmt.Errorf("reading the RouteTable %s/%s of Canary %s: %w", cd.Namespace, apex, cd.Name, err)
	}
	routes, err := glooRoutes(&rt.Spec, cd)
	if err != nil {
		return Routes{}, fmt.Errorf("reading the split of the RouteTable %s/%s of Canary %s: %w", cd.Namespace, apex, cd.Name, err)
	}
	return routes, nil
}

// Finalize does nothing: the RouteTable and Upstreams are Sluice's own
// and are deleted with the Canary.
func (r *glooRouter) Finalize(context.Context, *flaggerv1beta1.Canary, Target) error {
	return nil
}

// templateUpstream reads the Upstream of spec.upstreamRef, or returns nil
// without one.
func (r *glooRouter) templateUpstream(ctx context.Context, cd *flaggerv1beta1.Canary) (*gloov1.Upstream, error) {
	ref := cd.Spec.UpstreamRef
	if ref == nil {
		return nil, nil
	}
	if ref.APIVersion != gloov1.GroupVersion.String() || ref.Kind != "Upstream" {
		return nil, configError(fmt.Errorf("spec.upstreamRef is %s %s, but the gloo provider reads an Upstream of %s", ref.APIVersion, ref.Kind, gloov1.GroupVersion))
	}
	key := client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}
	if key.Namespace == "" {
		key.Namespace = cd.Namespace
	}
	up := &gloov1.Upstream{}
	if err := r.reader.Get(ctx, key, up); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, configError(fmt.Errorf("the Upstream %s named in spec.upstreamRef does not exist: create it or fix spec.upstreamRef", key))
		}
		return nil, fmt.Errorf("reading the Upstream %s of spec.upstreamRef: %w", key, err)
	}
	return up, nil
}

// ensureRouteTable creates or updates the RouteTable with routes, or with
// the split it holds when routes is nil.
func (r *glooRouter) ensureRouteTable(ctx context.Context, cd *flaggerv1beta1.Canary, routes *Routes) error {
	apex, _, _ := ServiceNames(cd)
	rt := &gloogatewayv1.RouteTable{ObjectMeta: metav1.ObjectMeta{Name: apex, Namespace: cd.Namespace}}
	return ensureSplit(ctx, r.client, cd, rt, routes,
		func() (Routes, error) { return glooRoutes(&rt.Spec, cd) },
		func(want Routes) error {
			spec, err := renderRouteTable(cd, want)
			if err != nil {
				return configError(err)
			}
			rt.Spec = *spec
			setApexMetadata(rt, cd)
			return nil
		})
}

// renderUpstream returns the spec of the Upstream of a Service: the
// connection settings of the template Upstream, if any, copied as they
// are, and the Service with its port and pod selector.
func renderUpstream(cd *flaggerv1beta1.Canary, service string, selector map[string]string, template *gloov1.Upstream) gloov1.UpstreamSpec {
	var spec gloov1.UpstreamSpec
	if template != nil {
		t := template.Spec.DeepCopy()
		spec = gloov1.UpstreamSpec{
			Labels: t.Labels, SslConfig: t.SslConfig, CircuitBreakers: t.CircuitBreakers, ConnectionConfig: t.ConnectionConfig,
			LoadBalancerConfig: t.LoadBalancerConfig, UseHTTP2: t.UseHTTP2, InitialStreamWindowSize: t.InitialStreamWindowSize,
			InitialConnectionWindowSize: t.InitialConnectionWindowSize, HTTPProxyHostname: t.HTTPProxyHostname,
		}
	}
	spec.Kube = &gloov1.KubeUpstream{ServiceName: service, ServiceNamespace: cd.Namespace, ServicePort: cd.Spec.Service.Port, Selector: selector}
	return spec
}

// renderRouteTable returns the spec of the RouteTable <apex> for a split:
// one route that carries the split or, during an A/B test, a route with
// one matcher per analysis.match entry that carries the split and a last
// route to the primary. Every route inherits the path matchers of the
// route that delegates to the table.
func renderRouteTable(cd *flaggerv1beta1.Canary, routes Routes) (*gloogatewayv1.RouteTableSpec, error) {
	if routes.Mirrored {
		return nil, errors.New("gloo cannot mirror traffic through a RouteTable; remove analysis.mirror")
	}
	route := func(matchers []gloogatewayv1.Matcher, r Routes) gloogatewayv1.Route {
		return gloogatewayv1.Route{
			Matchers:                matchers,
			InheritablePathMatchers: ptr.To(true),
			RouteAction: &gloogatewayv1.RouteAction{Multi: &gloogatewayv1.MultiDestination{Destinations: []gloogatewayv1.WeightedDestination{
				glooDestination(cd, "primary", r.Primary),
				glooDestination(cd, "canary", r.Canary),
			}}},
		}
	}
	spec := &gloogatewayv1.RouteTableSpec{}
	if !abTesting(cd) {
		spec.Routes = []gloogatewayv1.Route{route(nil, routes)}
		return spec, nil
	}
	f := &fieldErrors{}
	var matchers []gloogatewayv1.Matcher
	for i, m := range cd.Spec.Analysis.Match {
		matchers = append(matchers, glooMatcher(f, fmt.Sprintf("spec.analysis.match[%d]", i), m))
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	spec.Routes = []gloogatewayv1.Route{route(matchers, routes), route(nil, Routes{Primary: 100})}
	return spec, nil
}

// glooDestination is the upstream of the primary or canary Service with
// its weight.
func glooDestination(cd *flaggerv1beta1.Canary, role string, weight int) gloogatewayv1.WeightedDestination {
	return gloogatewayv1.WeightedDestination{
		Destination: gloogatewayv1.Destination{Upstream: gloogatewayv1.ResourceRef{Name: glooUpstreamName(cd, role), Namespace: cd.Namespace}},
		Weight:      percent[uint32](weight),
	}
}

// glooMatcher converts an analysis.match entry. Gloo matches headers and
// query parameters exactly or by a regular expression of the whole value,
// so a prefix or suffix becomes such an expression.
func glooMatcher(f *fieldErrors, field string, m flaggerv1beta1.HTTPMatchConditions) gloogatewayv1.Matcher {
	var out gloogatewayv1.Matcher
	if len(m.SourceLabels) > 0 {
		f.fail(field+".sourceLabels", errors.New("gloo cannot match the labels of the requests' source"))
	}
	for _, name := range sortedKeys(m.Headers) {
		value, regex, err := glooValue(flaggerv1beta1.StringMatch(m.Headers[name]))
		if err != nil {
			f.fail(field+".headers."+name, err)
			continue
		}
		out.Headers = append(out.Headers, gloogatewayv1.HeaderMatcher{Name: name, Value: value, Regex: regex})
	}
	for _, name := range sortedKeys(m.QueryParams) {
		value, regex, err := glooValue(m.QueryParams[name])
		if err != nil {
			f.fail(field+".queryParams."+name, err)
			continue
		}
		out.QueryParameters = append(out.QueryParameters, gloogatewayv1.QueryParameterMatcher{Name: name, Value: value, Regex: regex})
	}
	return out
}

// glooValue returns the value of a Gloo matcher for a string match, and
// whether it is a regular expression.
func glooValue(m flaggerv1beta1.StringMatch) (string, bool, error) {
	switch {
	case m.Exact != nil:
		return *m.Exact, false, nil
	case m.Regex != nil:
		return *m.Regex, true, nil
	case m.Prefix != nil:
		return regexp.QuoteMeta(*m.Prefix) + ".*", true, nil
	case m.Suffix != nil:
		return ".*" + regexp.QuoteMeta(*m.Suffix), true, nil
	}
	return "", false, errors.New("give exact, prefix, suffix or regex")
}

// glooRoutes reads the split of a RouteTable spec (see GetRoutes).
func glooRoutes(spec *gloogatewayv1.RouteTableSpec, cd *flaggerv1beta1.Canary) (Routes, error) {
	if len(spec.Routes) == 0 {
		return Routes{}, errors.New("it has no routes")
	}
	route := spec.Routes[len(spec.Routes)-1]
	if abTesting(cd) {
		route = spec.Routes[0]
	}
	if route.RouteAction == nil || route.RouteAction.Multi == nil {
		return Routes{}, errors.New("its route has no weighted destinations")
	}
	var backends []weightedBackend
	for _, d := range route.RouteAction.Multi.Destinations {
		backends = append(backends, weightedBackend{name: d.Destination.Upstream.Name, weight: int(d.Weight)})
	}
	return splitOf(backends, glooUpstreamName(cd, "primary"), glooUpstreamName(cd, "canary"), false), nil
}
