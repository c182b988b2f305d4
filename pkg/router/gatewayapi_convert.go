package router

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// gatewayConverter converts the Canary's request conditions and route
// options to Gateway API types, collecting the problems it finds (see
// fieldErrors). Conditions Gateway API cannot express are errors rather
// than dropped, since dropping one would widen the route.
type gatewayConverter struct {
	fieldErrors
}

// matches converts request conditions; no conditions is the API's default
// match, a prefix match on /.
func (c *gatewayConverter) matches(field string, ms []flaggerv1beta1.HTTPMatchRequest) []gatewayv1.HTTPRouteMatch {
	if len(ms) == 0 {
		return []gatewayv1.HTTPRouteMatch{{Path: defaultPathMatch()}}
	}
	out := make([]gatewayv1.HTTPRouteMatch, 0, len(ms))
	for i, m := range ms {
		f := fmt.Sprintf("%s[%d]", field, i)
		c.unsupported(f, m)
		match := gatewayv1.HTTPRouteMatch{Path: defaultPathMatch()}
		if m.URI != nil {
			match.Path = c.pathMatch(f+".uri", *m.URI)
		}
		if m.Method != nil {
			if m.Method.Exact == nil {
				c.fail(f+".method", errors.New("gateway API matches methods exactly only"))
			} else {
				match.Method = ptr.To(gatewayv1.HTTPMethod(*m.Method.Exact))
			}
		}
		match.Headers = c.headers(f+".headers", m.Headers)
		match.QueryParams = c.queryParams(f+".queryParams", m.QueryParams)
		out = append(out, match)
	}
	return out
}

// abMatches returns the matches of an A/B rule: each of the default
// rule's matches with the A/B conditions added.
func (c *gatewayConverter) abMatches(field string, cond flaggerv1beta1.HTTPMatchConditions, service []gatewayv1.HTTPRouteMatch) []gatewayv1.HTTPRouteMatch {
	headers := c.headers(field+".headers", headerMatches(cond.Headers))
	query := c.queryParams(field+".queryParams", cond.QueryParams)
	if len(cond.SourceLabels) > 0 {
		c.fail(field+".sourceLabels", errors.New("gateway API has no such request condition"))
	}
	out := make([]gatewayv1.HTTPRouteMatch, 0, len(service))
	for _, m := range service {
		m = *m.DeepCopy()
		m.Headers = mergeByName(m.Headers, headers, func(h gatewayv1.HTTPHeaderMatch) gatewayv1.HTTPHeaderName { return h.Name })
		m.QueryParams = mergeByName(m.QueryParams, query, func(q gatewayv1.HTTPQueryParamMatch) gatewayv1.HTTPHeaderName { return q.Name })
		out = append(out, m)
	}
	return out
}

// mergeByName returns base with the entries of extra, which replace those
// of base with the same name, sorted by name.
func mergeByName[T any](base, extra []T, name func(T) gatewayv1.HTTPHeaderName) []T {
	if len(extra) == 0 {
		return base
	}
	out := slices.DeleteFunc(slices.Clone(base), func(b T) bool {
		return slices.ContainsFunc(extra, func(e T) bool { return name(e) == name(b) })
	})
	out = append(out, extra...)
	slices.SortStableFunc(out, func(a, b T) int { return cmp.Compare(name(a), name(b)) })
	return out
}

// headers converts header conditions, sorted by name.
func (c *gatewayConverter) headers(field string, ms map[string]flaggerv1beta1.StringMatch) []gatewayv1.HTTPHeaderMatch {
	var out []gatewayv1.HTTPHeaderMatch
	for _, name := range sortedKeys(ms) {
		typ, value := c.valueMatch(field+"."+name, ms[name])
		out = append(out, gatewayv1.HTTPHeaderMatch{Type: ptr.To(gatewayv1.HeaderMatchType(typ)), Name: gatewayv1.HTTPHeaderName(name), Value: value})
	}
	return out
}

// queryParams converts query parameter conditions, sorted by name.
func (c *gatewayConverter) queryParams(field string, ms map[string]flaggerv1beta1.StringMatch) []gatewayv1.HTTPQueryParamMatch {
	var out []gatewayv1.HTTPQueryParamMatch
	for _, name := range sortedKeys(ms) {
		typ, value := c.valueMatch(field+"."+name, ms[name])
		out = append(out, gatewayv1.HTTPQueryParamMatch{Type: ptr.To(gatewayv1.QueryParamMatchType(typ)), Name: gatewayv1.HTTPHeaderName(name), Value: value})
	}
	return out
}

// unsupported fails on the conditions of an Istio-shaped match that
// Gateway API has no field for.
func (c *gatewayConverter) unsupported(field string, m flaggerv1beta1.HTTPMatchRequest) {
	for _, cond := range []struct {
		name string
		set  bool
	}{
		{"scheme", m.Scheme != nil},
		{"authority", m.Authority != nil},
		{"port", m.Port != 0},
		{"sourceLabels", len(m.SourceLabels) > 0},
		{"gateways", len(m.Gateways) > 0},
		{"ignoreUriCase", m.IgnoreURICase},
		{"withoutHeaders", len(m.WithoutHeaders) > 0},
		{"sourceNamespace", m.SourceNamespace != ""},
	} {
		if cond.set {
			c.fail(field+"."+cond.name, errors.New("gateway API has no such request condition"))
		}
	}
}

// defaultPathMatch is the path match the API server defaults to.
func defaultPathMatch() *gatewayv1.HTTPPathMatch {
	return &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To("/")}
}

func (c *gatewayConverter) pathMatch(field string, m flaggerv1beta1.StringMatch) *gatewayv1.HTTPPathMatch {
	switch {
	case m.Exact != nil:
		return &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchExact), Value: m.Exact}
	case m.Prefix != nil:
		return &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: m.Prefix}
	case m.Regex != nil:
		return &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchRegularExpression), Value: m.Regex}
	case m.Suffix != nil:
		c.fail(field, errors.New("gateway API has no suffix path match; use a regex"))
	}
	return defaultPathMatch()
}

// valueMatch converts a header or query parameter match to its match type
// (Exact or RegularExpression) and value. Gateway API has no prefix,
// suffix or presence match for them.
func (c *gatewayConverter) valueMatch(field string, m flaggerv1beta1.StringMatch) (typ, value string) {
	switch {
	case m.Exact != nil:
		return string(gatewayv1.HeaderMatchExact), *m.Exact
	case m.Regex != nil:
		return string(gatewayv1.HeaderMatchRegularExpression), *m.Regex
	}
	c.fail(field, errors.New("gateway API matches headers and query parameters exactly or by regex only; set exact or regex"))
	return string(gatewayv1.HeaderMatchExact), ""
}

// filters returns the filters of every rule: header modifiers, URL
// rewrite and CORS.
func (c *gatewayConverter) filters(svc flaggerv1beta1.CanaryService) []gatewayv1.HTTPRouteFilter {
	var out []gatewayv1.HTTPRouteFilter
	if h := svc.Headers; h != nil && h.Request != nil {
		out = append(out, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: headerFilter(h.Request)})
	}
	if h := svc.Headers; h != nil && h.Response != nil {
		out = append(out, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: headerFilter(h.Response)})
	}
	if rw := svc.Rewrite; rw != nil && (rw.URI != "" || rw.Authority != "") {
		f := &gatewayv1.HTTPURLRewriteFilter{}
		if rw.Authority != "" {
			f.Hostname = ptr.To(gatewayv1.PreciseHostname(rw.Authority))
		}
		if rw.URI != "" {
			switch gatewayv1.HTTPPathModifierType(rw.Type) {
			case gatewayv1.FullPathHTTPPathModifier:
				f.Path = &gatewayv1.HTTPPathModifier{Type: gatewayv1.FullPathHTTPPathModifier, ReplaceFullPath: ptr.To(rw.URI)}
			case "", gatewayv1.PrefixMatchHTTPPathModifier:
				f.Path = &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr.To(rw.URI)}
			default:
				c.fail("spec.service.rewrite.type", fmt.Errorf("%q is neither ReplaceFullPath nor ReplacePrefixMatch", rw.Type))
			}
		}
		out = append(out, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterURLRewrite, URLRewrite: f})
	}
	if p := svc.CorsPolicy; p != nil {
		out = append(out, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterCORS, CORS: c.cors(p)})
	}
	return out
}

// headerFilter converts header operations, sorted by header name.
func headerFilter(o *flaggerv1beta1.HeaderOperations) *gatewayv1.HTTPHeaderFilter {
	headers := func(m map[string]string) []gatewayv1.HTTPHeader {
		var out []gatewayv1.HTTPHeader
		for _, k := range sortedKeys(m) {
			out = append(out, gatewayv1.HTTPHeader{Name: gatewayv1.HTTPHeaderName(k), Value: m[k]})
		}
		return out
	}
	return &gatewayv1.HTTPHeaderFilter{Set: headers(o.Set), Add: headers(o.Add), Remove: o.Remove}
}

// corsDefaultMaxAge is the API server's default of a CORS filter's maxAge,
// in seconds.
const corsDefaultMaxAge = 5

// cors converts a CORS policy. Gateway API matches origins exactly (with
// wildcards) and counts the preflight cache time in seconds.
func (c *gatewayConverter) cors(p *flaggerv1beta1.CorsPolicy) *gatewayv1.HTTPCORSFilter {
	const field = "spec.service.corsPolicy"
	out := &gatewayv1.HTTPCORSFilter{AllowCredentials: p.AllowCredentials, MaxAge: corsDefaultMaxAge}
	for _, o := range p.AllowOrigin {
		out.AllowOrigins = append(out.AllowOrigins, gatewayv1.CORSOrigin(o))
	}
	for i, o := range p.AllowOrigins {
		if o.Exact == nil {
			c.fail(fmt.Sprintf("%s.allowOrigins[%d]", field, i), errors.New("gateway API matches origins exactly only"))
			continue
		}
		out.AllowOrigins = append(out.AllowOrigins, gatewayv1.CORSOrigin(*o.Exact))
	}
	for _, m := range p.AllowMethods {
		out.AllowMethods = append(out.AllowMethods, gatewayv1.HTTPMethodWithWildcard(m))
	}
	for _, h := range p.AllowHeaders {
		out.AllowHeaders = append(out.AllowHeaders, gatewayv1.HTTPHeaderName(h))
	}
	for _, h := range p.ExposeHeaders {
		out.ExposeHeaders = append(out.ExposeHeaders, gatewayv1.HTTPHeaderName(h))
	}
	if p.MaxAge != "" {
		d, err := time.ParseDuration(p.MaxAge)
		switch {
		case err != nil:
			c.fail(field+".maxAge", err)
		case d < 0 || d/time.Second > math.MaxInt32:
			c.fail(field+".maxAge", fmt.Errorf("%q is out of range: gateway API takes 0s to %d seconds", p.MaxAge, math.MaxInt32))
		default:
			out.MaxAge = int32(d / time.Second)
		}
	}
	return out
}
