package meshsim

import (
	"net/http"
	"regexp"
	"strings"

	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// compileHTTPRoute turns the rules of an HTTPRoute spec into a table, as
// compile does for a VirtualService: each rule is a route whose matches
// are alternatives, its backendRefs the weighted destinations (weight 1
// when unset, as the API defaults it) and a RequestMirror filter its
// mirror. Rules are tried in order; Sluice writes its A/B rules first.
// A backendRef's ResponseHeaderModifier filters change that backend's
// responses. Other filters do not change where a request goes or what
// the simulation checks, and are ignored.
func compileHTTPRoute(spec *gatewayv1.HTTPRouteSpec, apex string) *table {
	t := &table{summary: Routes{Found: true}}
	for _, rule := range spec.Rules {
		r := route{}
		for _, m := range rule.Matches {
			r.matches = append(r.matches, compileHTTPRouteMatch(m))
		}
		for _, b := range rule.BackendRefs {
			d := destOf(string(b.Name), int(ptr.Deref(b.Weight, 1)), apex)
			d.respond = gatewayHeaderOps(b.Filters)
			r.dests = append(r.dests, d)
		}
		for _, f := range rule.Filters {
			if f.Type != gatewayv1.HTTPRouteFilterRequestMirror || f.RequestMirror == nil {
				continue
			}
			m := f.RequestMirror
			r.mirror, r.mirrorTo = 1, destOf(string(m.BackendRef.Name), 0, apex)
			switch {
			case m.Percent != nil:
				r.mirror = float64(*m.Percent) / 100
			case m.Fraction != nil && ptr.Deref(m.Fraction.Denominator, 100) > 0:
				r.mirror = float64(m.Fraction.Numerator) / float64(ptr.Deref(m.Fraction.Denominator, 100))
			}
		}
		t.routes = append(t.routes, r)
	}
	t.summarize()
	return t
}

// gatewayHeaderOps compiles the ResponseHeaderModifier filters of a
// backendRef into response header operations.
func gatewayHeaderOps(filters []gatewayv1.HTTPRouteFilter) headerOps {
	out := headerOps{set: http.Header{}, add: http.Header{}}
	for _, f := range filters {
		m := f.ResponseHeaderModifier
		if f.Type != gatewayv1.HTTPRouteFilterResponseHeaderModifier || m == nil {
			continue
		}
		for _, h := range m.Set {
			out.set.Set(string(h.Name), h.Value)
		}
		for _, h := range m.Add {
			out.add.Add(string(h.Name), h.Value)
		}
		out.remove = append(out.remove, m.Remove...)
	}
	return out
}

// compileHTTPRouteMatch turns one HTTPRouteMatch into conditions on a
// request: path, headers, query parameters and method must all hold.
func compileHTTPRouteMatch(m gatewayv1.HTTPRouteMatch) matcher {
	var out matcher
	if p := m.Path; p != nil {
		value := ptr.Deref(p.Value, "/")
		switch ptr.Deref(p.Type, gatewayv1.PathMatchPathPrefix) {
		case gatewayv1.PathMatchExact:
			out = append(out, func(r *http.Request) bool { return r.URL.Path == value })
		case gatewayv1.PathMatchRegularExpression:
			sm := gatewayString(value, true)
			out = append(out, func(r *http.Request) bool { return sm(r.URL.Path, true, false) })
		default:
			// A prefix matches whole path elements: /api matches /api and
			// /api/info, not /apis.
			prefix := strings.TrimSuffix(value, "/")
			out = append(out, func(r *http.Request) bool {
				return prefix == "" || r.URL.Path == prefix || strings.HasPrefix(r.URL.Path, prefix+"/")
			})
		}
	}
	for _, h := range m.Headers {
		sm := gatewayString(h.Value, ptr.Deref(h.Type, gatewayv1.HeaderMatchExact) == gatewayv1.HeaderMatchRegularExpression)
		name := string(h.Name)
		out = append(out, func(r *http.Request) bool {
			v, ok := header(r, name)
			return sm(v, ok, false)
		})
	}
	for _, q := range m.QueryParams {
		sm := gatewayString(q.Value, ptr.Deref(q.Type, gatewayv1.QueryParamMatchExact) == gatewayv1.QueryParamMatchRegularExpression)
		name := string(q.Name)
		out = append(out, func(r *http.Request) bool {
			query := r.URL.Query()
			return sm(query.Get(name), query.Has(name), false)
		})
	}
	if m.Method != nil {
		method := string(*m.Method)
		out = append(out, func(r *http.Request) bool { return r.Method == method })
	}
	return out
}

// gatewayString matches a value exactly or, with regex, against a whole
// RE2 expression; an invalid expression matches nothing.
func gatewayString(value string, regex bool) stringMatcher {
	if !regex {
		return func(v string, ok, _ bool) bool { return ok && v == value }
	}
	re, err := regexp.Compile("^(?:" + value + ")$")
	if err != nil {
		return func(string, bool, bool) bool { return false }
	}
	return func(v string, ok, _ bool) bool { return ok && re.MatchString(v) }
}
