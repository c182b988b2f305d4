package router

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	contourv1 "github.com/sluicedev/sluice/pkg/apis/contour/v1"
)

// contourRouter is the router of provider "contour". It owns the
// HTTPProxy <apex>, whose routes split the requests between the primary
// and canary Services by weight. Without spec.service.hosts the HTTPProxy
// has no virtual host: a root HTTPProxy of the user's includes it, or a
// mesh sends the apex Service's traffic through it. Its ingressClassName
// is Deps.IngressClass.
//
// Rendering is pure (renderHTTPProxy); the object is written with Ensure,
// so an edit of someone else to the spec is reverted on the next
// Reconcile or SetRoutes.
type contourRouter struct {
	client client.Client
	// ingressClass is the HTTPProxy's ingressClassName, or empty.
	ingressClass string
}

// OwnedObjects implements ObjectOwner.
func (r *contourRouter) OwnedObjects() []client.Object {
	return []client.Object{&contourv1.HTTPProxy{}}
}

func newContourRouter(d Deps) Interface {
	return &contourRouter{client: meshClientOf(d), ingressClass: d.IngressClass}
}

// Reconcile creates or updates the HTTPProxy. It keeps the split the
// HTTPProxy holds, or routes all traffic to the primary when it is new or
// its split cannot be read.
func (r *contourRouter) Reconcile(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) error {
	if err := r.ensureHTTPProxy(ctx, cd, nil); err != nil {
		return fmt.Errorf("reconciling the HTTPProxy of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	return nil
}

// SetRoutes writes the split into the HTTPProxy's routes.
func (r *contourRouter) SetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target, routes Routes) error {
	if err := checkSplit(cd, routes); err != nil {
		return err
	}
	if err := r.ensureHTTPProxy(ctx, cd, &routes); err != nil {
		return fmt.Errorf("routing Canary %s/%s to primary %d%%, canary %d%% (mirrored: %t): %w",
			cd.Namespace, cd.Name, routes.Primary, routes.Canary, routes.Mirrored, err)
	}
	return nil
}

// GetRoutes reads the split from the HTTPProxy: from its first (A/B)
// route during an A/B test, else from its last (default) route.
func (r *contourRouter) GetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) (Routes, error) {
	apex, _, _ := ServiceNames(cd)
	proxy := &contourv1.HTTPProxy{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: apex}, proxy); err != nil {
		return Routes{}, fmt.Errorf("reading the HTTPProxy %s/%s of Canary %s: %w", cd.Namespace, apex, cd.Name, err)
	}
	routes, err := contourRoutes(&proxy.Spec, cd)
	if err != nil {
		return Routes{}, fmt.Errorf("reading the split of the HTTPProxy %s/%s of Canary %s: %w", cd.Namespace, apex, cd.Name, err)
	}
	return routes, nil
}

// Finalize does nothing: the HTTPProxy is Sluice's own and is deleted
// with the Canary.
func (r *contourRouter) Finalize(context.Context, *flaggerv1beta1.Canary, Target) error {
	return nil
}

// ensureHTTPProxy creates or updates the HTTPProxy with routes, or with
// the split it holds when routes is nil.
func (r *contourRouter) ensureHTTPProxy(ctx context.Context, cd *flaggerv1beta1.Canary, routes *Routes) error {
	apex, _, _ := ServiceNames(cd)
	proxy := &contourv1.HTTPProxy{ObjectMeta: metav1.ObjectMeta{Name: apex, Namespace: cd.Namespace}}
	return ensureSplit(ctx, r.client, cd, proxy, routes,
		func() (Routes, error) { return contourRoutes(&proxy.Spec, cd) },
		func(want Routes) error {
			spec, err := renderHTTPProxy(cd, r.ingressClass, want)
			if err != nil {
				return configError(err)
			}
			proxy.Spec = *spec
			setApexMetadata(proxy, cd)
			return nil
		})
}

// renderHTTPProxy returns the spec of the HTTPProxy <apex> for a split:
//
//   - a virtual host for the one name of spec.service.hosts, if any;
//   - ingressClassName ingressClass;
//   - during an A/B test, one route per analysis.match entry that carries
//     the split, then the default route to the primary; otherwise only the
//     default route, which carries the split. Every route has the path
//     prefix and header conditions of spec.service.match (at most one
//     entry; the prefix "/" without one), and spec.service's timeout,
//     retries and header operations;
//   - a mirrored split copies the default route's requests to the canary
//     Service, a mirror Service whose weight is analysis.mirrorWeight, or
//     100 when that is unset.
//
// Contour matches headers exactly, by substring or by presence: other
// matches, and matches on anything but the path prefix and headers, are
// refused.
func renderHTTPProxy(cd *flaggerv1beta1.Canary, ingressClass string, routes Routes) (*contourv1.HTTPProxySpec, error) {
	_, primary, canary := ServiceNames(cd)
	svc := cd.Spec.Service
	f := &fieldErrors{}
	spec := &contourv1.HTTPProxySpec{IngressClassName: ingressClass}
	switch len(svc.Hosts) {
	case 0:
	case 1:
		spec.VirtualHost = &contourv1.VirtualHost{Fqdn: svc.Hosts[0]}
	default:
		f.fail("spec.service.hosts", errors.New("a Contour HTTPProxy is served for one host name; give at most one"))
	}

	prefix, headers := contourServiceMatch(f, svc.Match)
	def := contourv1.Route{
		Conditions:            contourConditions(f, "spec.service.match[0]", prefix, headers),
		Services:              contourServices(cd.Namespace, primary, canary, svc.Port, routes, 0),
		TimeoutPolicy:         contourTimeout(f, svc.Timeout),
		RetryPolicy:           contourRetries(f, svc.Retries),
		RequestHeadersPolicy:  contourHeaders(f, "spec.service.headers.request", svc.Headers, false),
		ResponseHeadersPolicy: contourHeaders(f, "spec.service.headers.response", svc.Headers, true),
	}
	if routes.Mirrored {
		weight := int32(100)
		if a := cd.Spec.Analysis; a != nil && a.MirrorWeight > 0 {
			weight = a.MirrorWeight
		}
		def.Services = contourServices(cd.Namespace, primary, canary, svc.Port, routes, weight)
	}
	if abTesting(cd) {
		for i, m := range cd.Spec.Analysis.Match {
			field := fmt.Sprintf("spec.analysis.match[%d]", i)
			if len(m.QueryParams) > 0 || len(m.SourceLabels) > 0 {
				f.fail(field, errors.New("contour routes A/B tests by header only"))
			}
			ab := *def.DeepCopy()
			all := mergeMaps(maps.Clone(headers), headerMatches(m.Headers))
			ab.Conditions = contourConditions(f, field, prefix, all)
			ab.Services = contourServices(cd.Namespace, primary, canary, svc.Port, routes, 0)
			spec.Routes = append(spec.Routes, ab)
		}
		def.Services = contourServices(cd.Namespace, primary, canary, svc.Port, Routes{Primary: 100}, 0)
	}
	spec.Routes = append(spec.Routes, def)
	if err := f.Err(); err != nil {
		return nil, err
	}
	return spec, nil
}

// contourServices returns the weighted primary and canary Services of a
// route and, when mirrorWeight is above 0, the canary as mirror Service.
// A mirrored route lists the canary once, as mirror, unless it also takes
// a share of the requests.
//
// Each Service's requests carry Linkerd's l5d-dst-override header with the
// Service's cluster address, so that a Linkerd proxy beside Envoy sends
// them to that Service rather than balancing them again by the Host.
func contourServices(ns, primary, canary string, port int32, r Routes, mirrorWeight int32) []contourv1.Service {
	service := func(name string, weight int64, mirror bool) contourv1.Service {
		return contourv1.Service{Name: name, Port: port, Weight: weight, Mirror: mirror, RequestHeadersPolicy: &contourv1.HeadersPolicy{
			Set: []contourv1.HeaderValue{{Name: "l5d-dst-override", Value: fmt.Sprintf("%s.%s.svc.cluster.local:%d", name, ns, port)}},
		}}
	}
	out := []contourv1.Service{service(primary, int64(r.Primary), false)}
	if mirrorWeight == 0 || r.Canary > 0 {
		out = append(out, service(canary, int64(r.Canary), false))
	}
	if mirrorWeight > 0 {
		out = append(out, service(canary, int64(mirrorWeight), true))
	}
	return out
}

// contourServiceMatch returns the path prefix and header conditions of
// spec.service.match, which may have one entry with a uri prefix and
// headers only: an HTTPProxy route has one set of conditions.
func contourServiceMatch(f *fieldErrors, match []flaggerv1beta1.HTTPMatchRequest) (string, map[string]flaggerv1beta1.StringMatch) {
	if len(match) == 0 {
		return "/", nil
	}
	if len(match) > 1 {
		f.fail("spec.service.match", errors.New("contour routes by one set of conditions; give at most one entry"))
	}
	m := match[0]
	if !equality.Semantic.DeepEqual(m, flaggerv1beta1.HTTPMatchRequest{Name: m.Name, URI: m.URI, Headers: m.Headers}) {
		f.fail("spec.service.match[0]", errors.New("contour matches the path prefix and headers only"))
	}
	prefix := "/"
	if m.URI != nil {
		if m.URI.Prefix == nil || m.URI.Exact != nil || m.URI.Suffix != nil || m.URI.Regex != nil {
			f.fail("spec.service.match[0].uri", errors.New("contour matches the path by prefix only"))
		} else {
			prefix = *m.URI.Prefix
		}
	}
	return prefix, m.Headers
}

// contourConditions returns the conditions of a route: the path prefix,
// then the headers in name order, each matched exactly.
func contourConditions(f *fieldErrors, field, prefix string, headers map[string]flaggerv1beta1.StringMatch) []contourv1.MatchCondition {
	out := []contourv1.MatchCondition{{Prefix: prefix}}
	for _, name := range sortedKeys(headers) {
		h := headers[name]
		if h.Exact == nil || h.Prefix != nil || h.Suffix != nil || h.Regex != nil {
			f.fail(field+".headers."+name, errors.New("contour matches headers exactly only, not by prefix, suffix or regex"))
			continue
		}
		out = append(out, contourv1.MatchCondition{Header: &contourv1.HeaderMatchCondition{Name: name, Exact: *h.Exact}})
	}
	return out
}

// contourTimeout returns the timeout policy of spec.service.timeout.
func contourTimeout(f *fieldErrors, timeout string) *contourv1.TimeoutPolicy {
	if timeout == "" {
		return nil
	}
	return &contourv1.TimeoutPolicy{Response: contourDuration(f, "spec.service.timeout", timeout)}
}

// contourRetries returns the retry policy of spec.service.retries.
func contourRetries(f *fieldErrors, r *flaggerv1beta1.HTTPRetry) *contourv1.RetryPolicy {
	if r == nil {
		return nil
	}
	p := &contourv1.RetryPolicy{Count: int64(r.Attempts)}
	if r.PerTryTimeout != "" {
		p.PerTryTimeout = contourDuration(f, "spec.service.retries.perTryTimeout", r.PerTryTimeout)
	}
	for on := range strings.SplitSeq(r.RetryOn, ",") {
		if on = strings.TrimSpace(on); on != "" {
			p.RetryOn = append(p.RetryOn, on)
		}
	}
	return p
}

// contourDuration checks a duration for Contour, which reads Go
// durations and "infinity".
func contourDuration(f *fieldErrors, field, s string) string {
	if s != "infinity" {
		if _, err := time.ParseDuration(s); err != nil {
			f.fail(field, err)
		}
	}
	return s
}

// contourHeaders returns the header policy of the request (or, with
// response, the response) operations of spec.service.headers. Contour
// sets and removes headers but cannot add a value to one.
func contourHeaders(f *fieldErrors, field string, h *flaggerv1beta1.Headers, response bool) *contourv1.HeadersPolicy {
	if h == nil {
		return nil
	}
	ops := h.Request
	if response {
		ops = h.Response
	}
	if ops == nil {
		return nil
	}
	if len(ops.Add) > 0 {
		f.fail(field+".add", errors.New("contour cannot add header values; use set"))
	}
	if len(ops.Set) == 0 && len(ops.Remove) == 0 {
		return nil
	}
	p := &contourv1.HeadersPolicy{Remove: ops.Remove}
	for _, name := range sortedKeys(ops.Set) {
		p.Set = append(p.Set, contourv1.HeaderValue{Name: name, Value: ops.Set[name]})
	}
	return p
}

// contourRoutes reads the split of an HTTPProxy spec (see GetRoutes).
// Mirror Services count as mirroring, not towards the split.
func contourRoutes(spec *contourv1.HTTPProxySpec, cd *flaggerv1beta1.Canary) (Routes, error) {
	_, primary, canary := ServiceNames(cd)
	if len(spec.Routes) == 0 {
		return Routes{}, errors.New("it has no routes")
	}
	route := spec.Routes[len(spec.Routes)-1]
	if abTesting(cd) {
		route = spec.Routes[0]
	}
	var backends []weightedBackend
	mirrored := false
	for _, s := range route.Services {
		if s.Mirror {
			mirrored = mirrored || s.Name == canary
			continue
		}
		backends = append(backends, weightedBackend{name: s.Name, weight: int(s.Weight)})
	}
	return splitOf(backends, primary, canary, mirrored), nil
}
