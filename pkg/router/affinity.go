package router

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// This file holds the session affinity that the cookie-capable routers
// (istio, gatewayapi) render. The engine keeps the cookies of an analysis
// in the Canary's status as "<name>=<value>"; at a split these become:
//
//   - while the canary takes part of the traffic: a Set-Cookie on the
//     canary's responses in the weighted route, and a route before it that
//     sends every request carrying that cookie to the canary; with
//     primaryCookieName also a Set-Cookie on the primary's responses
//     (lasting one analysis interval, so that its users are re-drawn at
//     the next step) and a route that keeps those requests on the primary;
//   - once the canary takes no traffic: a route that sends requests still
//     carrying the previous analysis's canary cookie to the primary and
//     expires that cookie.

// cookieRouter is implemented by the routers that render session affinity.
type cookieRouter interface {
	rendersSessionAffinity()
}

// SupportsSessionAffinity reports whether a router can pin users with
// cookies (analysis.sessionAffinity).
func SupportsSessionAffinity(r Interface) bool {
	_, ok := r.(cookieRouter)
	return ok
}

// cookieRoute is one route of the session affinity: requests whose Cookie
// header contains cookie go to one side, all of them.
type cookieRoute struct {
	// name names the route in objects that name routes.
	name string
	// cookie is "<name>=<value>".
	cookie string
	// toCanary sends the requests to the canary; otherwise to the primary.
	toCanary bool
	// setCookie, when not empty, is added as a Set-Cookie response header.
	setCookie string
}

// match is the A/B condition that selects the requests of the route.
func (c cookieRoute) match() flaggerv1beta1.HTTPMatchConditions {
	re := ".*" + regexp.QuoteMeta(c.cookie) + ".*"
	return flaggerv1beta1.HTTPMatchConditions{Headers: map[string]flaggerv1beta1.HeaderMatch{"cookie": {Regex: &re}}}
}

// routes returns the split of the route.
func (c cookieRoute) routes() Routes {
	if c.toCanary {
		return Routes{Canary: 100}
	}
	return Routes{Primary: 100}
}

// affinity is the session affinity of a Canary at one split.
type affinity struct {
	// routes come before the weighted route, in order.
	routes []cookieRoute
	// canarySetCookie and primarySetCookie are added to the responses of
	// the canary and the primary in the weighted route.
	canarySetCookie, primarySetCookie string
}

// affinityOf returns the session affinity to render for a split, from the
// cookies in the Canary's status. A Canary without sessionAffinity, or
// during an A/B test, has none.
func affinityOf(cd *flaggerv1beta1.Canary, r Routes) affinity {
	a := cd.Spec.Analysis
	if a == nil || a.SessionAffinity == nil || abTesting(cd) {
		return affinity{}
	}
	sa, st := a.SessionAffinity, cd.Status
	var out affinity
	switch {
	case r.Canary > 0 && r.Primary > 0 && st.SessionAffinityCookie != "":
		out.routes = append(out.routes, cookieRoute{name: "sticky-canary", cookie: st.SessionAffinityCookie, toCanary: true})
		out.canarySetCookie = setCookie(sa, st.SessionAffinityCookie, int64(maxAgeOf(sa)))
		if st.PrimarySessionAffinityCookie != "" {
			out.routes = append(out.routes, cookieRoute{name: "sticky-primary", cookie: st.PrimarySessionAffinityCookie})
			out.primarySetCookie = setCookie(sa, st.PrimarySessionAffinityCookie, int64(intervalOf(a).Seconds()))
		}
	case r.Canary == 0 && st.PreviousSessionAffinityCookie != "":
		out.routes = append(out.routes, cookieRoute{name: "expire-cookie", cookie: st.PreviousSessionAffinityCookie,
			setCookie: setCookie(sa, st.PreviousSessionAffinityCookie, -1)})
	}
	return out
}

// maxAgeOf is the lifetime of the canary cookie, in seconds.
func maxAgeOf(sa *flaggerv1beta1.SessionAffinity) int32 {
	if sa.MaxAge > 0 {
		return sa.MaxAge
	}
	return 86400
}

// intervalOf is the analysis interval, one minute when unset or unreadable.
func intervalOf(a *flaggerv1beta1.CanaryAnalysis) time.Duration {
	if d, err := time.ParseDuration(a.Interval); err == nil && d > 0 {
		return d
	}
	return time.Minute
}

// setCookie renders a Set-Cookie header value for cookie ("<name>=<value>")
// with the attributes of sa and a Max-Age; -1 expires the cookie.
func setCookie(sa *flaggerv1beta1.SessionAffinity, cookie string, maxAge int64) string {
	parts := []string{cookie, fmt.Sprintf("Max-Age=%d", maxAge)}
	if sa.Domain != "" {
		parts = append(parts, "Domain="+sa.Domain)
	}
	if sa.Path != "" {
		parts = append(parts, "Path="+sa.Path)
	}
	if sa.SameSite != "" {
		parts = append(parts, "SameSite="+sa.SameSite)
	}
	if sa.Secure {
		parts = append(parts, "Secure")
	}
	if sa.HTTPOnly {
		parts = append(parts, "HttpOnly")
	}
	if sa.Partitioned {
		parts = append(parts, "Partitioned")
	}
	return strings.Join(parts, "; ")
}
