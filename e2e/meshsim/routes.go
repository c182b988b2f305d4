package meshsim

import (
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strings"

	istionetworking "istio.io/api/networking/v1alpha3"
)

// version is one destination of the split: the primary, the canary, or
// the baseline that Sluice runs beside the canary with analysis.baseline.
type version int

const (
	primary version = iota
	canary
	baseline
	// numVersions is how many versions there are, the size of the arrays
	// indexed by version.
	numVersions
)

// versions are every version, in index order.
var versions = [numVersions]version{primary, canary, baseline}

// String is the version's name as the sim's response headers say it.
func (v version) String() string {
	switch v {
	case canary:
		return "canary"
	case baseline:
		return "baseline"
	}
	return "primary"
}

// Routes is the traffic split the simulator currently applies.
type Routes struct {
	// Primary is the weight, 0 to 100, of the primary in the default route
	// (the last route without a match, which takes the requests no A/B
	// route matched).
	Primary int
	// Canary is the weight, 0 to 100, of the canary in the default route.
	Canary int
	// Baseline is the weight, 0 to 100, of the baseline (<apex>-baseline,
	// which Sluice routes to with analysis.baseline) in the default route.
	Baseline int
	// Mirrored is true when the default route copies its requests to the
	// canary.
	Mirrored bool
	// Matches is how many routes with matches (A/B routes) come before the
	// default route.
	Matches int
	// Found is false while there is no VirtualService: every request then
	// fails with 404.
	Found bool
}

// table is the compiled HTTP routing of a VirtualService.
type table struct {
	routes []route
	// summary is what Sim.Routes reports.
	summary Routes
}

// route is one HTTP route: the first whose matches fit a request takes it.
type route struct {
	// matches are alternatives; none means every request.
	matches []matcher
	dests   []dest
	// mirror, when set, copies this share (0 to 1) of the requests to
	// mirrorTo.
	mirror   float64
	mirrorTo dest
}

// dest is a weighted destination of a route.
type dest struct {
	// service is the short name of the destination host.
	service string
	version version
	// known is false when the host is neither the apex, primary, canary
	// nor baseline Service: no pod backs it.
	known  bool
	weight int
	// respond are the header operations on the responses of this
	// destination.
	respond headerOps
}

// headerOps are the operations on the response headers of a destination
// (Istio's HTTPRouteDestination headers.response, Gateway API's
// ResponseHeaderModifier filter of a backendRef). Envoy applies them in
// this order: removals, then sets (which replace a header's values), then
// adds (which append to them).
type headerOps struct {
	remove   []string
	set, add http.Header
}

// apply applies the operations to the headers of a response.
func (o headerOps) apply(h http.Header) {
	for _, name := range o.remove {
		h.Del(name)
	}
	for name, vs := range o.set {
		h[name] = slices.Clone(vs)
	}
	for name, vs := range o.add {
		h[name] = append(h[name], vs...)
	}
}

// matcher is one HTTPMatchRequest: all of its conditions must hold.
type matcher []func(*http.Request) bool

// compile turns the HTTP routes of a VirtualService spec into a table.
// apex is the apex Service name; hosts <apex>-primary and <apex> are the
// primary, <apex>-canary the canary, <apex>-baseline the baseline.
func compile(spec *istionetworking.VirtualService, apex string) *table {
	t := &table{summary: Routes{Found: true}}
	for _, hr := range spec.GetHttp() {
		r := route{}
		for _, m := range hr.GetMatch() {
			r.matches = append(r.matches, compileMatch(m))
		}
		for _, d := range hr.GetRoute() {
			dst := destOf(d.GetDestination().GetHost(), int(d.GetWeight()), apex)
			dst.respond = istioHeaderOps(d.GetHeaders().GetResponse())
			r.dests = append(r.dests, dst)
		}
		if hr.GetMirror() != nil {
			r.mirror, r.mirrorTo = 1, destOf(hr.GetMirror().GetHost(), 0, apex)
			if p := hr.GetMirrorPercentage(); p != nil {
				r.mirror = p.GetValue() / 100
			}
		}
		t.routes = append(t.routes, r)
	}
	t.summarize()
	return t
}

// istioHeaderOps compiles the response header operations of an
// HTTPRouteDestination; nil has none.
func istioHeaderOps(ops *istionetworking.Headers_HeaderOperations) headerOps {
	out := headerOps{remove: ops.GetRemove(), set: http.Header{}, add: http.Header{}}
	for name, v := range ops.GetSet() {
		out.set.Set(name, v)
	}
	for name, v := range ops.GetAdd() {
		out.add.Add(name, v)
	}
	return out
}

// summarize fills the summary from the default route.
func (t *table) summarize() {
	def := -1
	for i, r := range t.routes {
		if len(r.matches) == 0 {
			def = i
		}
	}
	if def < 0 {
		def = len(t.routes) - 1
	}
	t.summary.Matches = max(def, 0)
	if def < 0 {
		return
	}
	r := t.routes[def]
	total := 0
	for _, d := range r.dests {
		total += d.weight
	}
	for _, d := range r.dests {
		w := d.weight
		if len(r.dests) == 1 || total == 0 {
			w = 100 // a sole destination takes everything, as in Istio
		}
		if d.known {
			*t.summary.weight(d.version) += w
		}
		if total == 0 {
			break
		}
	}
	t.summary.Mirrored = r.mirror > 0 && r.mirrorTo.known && r.mirrorTo.version == canary
}

// weight is the field of r that holds the weight of version v.
func (r *Routes) weight(v version) *int {
	switch v {
	case canary:
		return &r.Canary
	case baseline:
		return &r.Baseline
	}
	return &r.Primary
}

// destOf maps a destination host to a version.
func destOf(host string, weight int, apex string) dest {
	short, _, _ := strings.Cut(host, ".")
	d := dest{service: short, weight: weight, known: true}
	switch short {
	case apex + "-canary":
		d.version = canary
	case apex + "-baseline":
		d.version = baseline
	case apex + "-primary", apex:
		// Flagger's apex Service selects the primary's pods.
		d.version = primary
	default:
		d.known = false
	}
	return d
}

// match returns the first route that takes r, or nil.
func (t *table) match(r *http.Request) *route {
	for i := range t.routes {
		rt := &t.routes[i]
		if len(rt.matches) == 0 {
			return rt
		}
		for _, m := range rt.matches {
			if m.fits(r) {
				return rt
			}
		}
	}
	return nil
}

// fits reports whether every condition of m holds for r.
func (m matcher) fits(r *http.Request) bool {
	for _, cond := range m {
		if !cond(r) {
			return false
		}
	}
	return true
}

// pick chooses a destination by weight; a sole destination takes every
// request. It returns false when the route has no destination.
func (r *route) pick() (dest, bool) {
	switch len(r.dests) {
	case 0:
		return dest{}, false
	case 1:
		return r.dests[0], true
	}
	total := 0
	for _, d := range r.dests {
		total += d.weight
	}
	if total <= 0 {
		return r.dests[0], true
	}
	n := rand.IntN(total)
	for _, d := range r.dests {
		if n < d.weight {
			return d, true
		}
		n -= d.weight
	}
	return r.dests[len(r.dests)-1], true
}

// compileMatch turns one HTTPMatchRequest into conditions on a request.
// Conditions on things the sim does not model (ports, source labels,
// gateways, source namespaces) hold for every request.
func compileMatch(m *istionetworking.HTTPMatchRequest) matcher {
	var out matcher
	if u := m.GetUri(); u != nil {
		sm, fold := compileString(u), m.GetIgnoreUriCase()
		out = append(out, func(r *http.Request) bool {
			if fold {
				return sm(strings.ToLower(r.URL.Path), true, true)
			}
			return sm(r.URL.Path, true, false)
		})
	}
	if s := m.GetMethod(); s != nil {
		sm := compileString(s)
		out = append(out, func(r *http.Request) bool { return sm(r.Method, true, false) })
	}
	if s := m.GetAuthority(); s != nil {
		sm := compileString(s)
		out = append(out, func(r *http.Request) bool { return sm(r.Host, true, false) })
	}
	if s := m.GetScheme(); s != nil {
		sm := compileString(s)
		out = append(out, func(*http.Request) bool { return sm("http", true, false) })
	}
	for name, s := range m.GetHeaders() {
		sm := compileString(s)
		out = append(out, func(r *http.Request) bool {
			v, ok := header(r, name)
			return sm(v, ok, false)
		})
	}
	for name, s := range m.GetWithoutHeaders() {
		sm := compileString(s)
		out = append(out, func(r *http.Request) bool {
			v, ok := header(r, name)
			return !sm(v, ok, false)
		})
	}
	for name, s := range m.GetQueryParams() {
		sm := compileString(s)
		out = append(out, func(r *http.Request) bool {
			q := r.URL.Query()
			return sm(q.Get(name), q.Has(name), false)
		})
	}
	return out
}

// header returns a request header, with the pseudo-headers Envoy exposes.
func header(r *http.Request, name string) (string, bool) {
	switch strings.ToLower(name) {
	case ":authority", "host":
		return r.Host, true
	case ":path":
		return r.URL.RequestURI(), true
	case ":method":
		return r.Method, true
	}
	vs, ok := r.Header[http.CanonicalHeaderKey(name)]
	return strings.Join(vs, ","), ok
}

// stringMatcher tests a value that may be absent; lower says the value was
// lowered, so an exact or prefix pattern is lowered too.
type stringMatcher func(value string, present, lower bool) bool

// compileString compiles a StringMatch. An empty StringMatch matches any
// present value; a regex is matched against the whole value (RE2, as
// Envoy); an invalid regex matches nothing.
func compileString(s *istionetworking.StringMatch) stringMatcher {
	switch mt := s.GetMatchType().(type) {
	case *istionetworking.StringMatch_Exact:
		return func(v string, ok, lower bool) bool { return ok && v == lowerIf(mt.Exact, lower) }
	case *istionetworking.StringMatch_Prefix:
		return func(v string, ok, lower bool) bool { return ok && strings.HasPrefix(v, lowerIf(mt.Prefix, lower)) }
	case *istionetworking.StringMatch_Regex:
		re, err := regexp.Compile("^(?:" + mt.Regex + ")$")
		if err != nil {
			return func(string, bool, bool) bool { return false }
		}
		return func(v string, ok, _ bool) bool { return ok && re.MatchString(v) }
	default:
		return func(_ string, ok, _ bool) bool { return ok }
	}
}

// lowerIf lowers s when lower is true.
func lowerIf(s string, lower bool) string {
	if lower {
		return strings.ToLower(s)
	}
	return s
}
