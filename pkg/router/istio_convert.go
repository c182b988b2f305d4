package router

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	istionetworking "istio.io/api/networking/v1"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// istioConverter converts the Canary's Istio-shaped fields to Istio's
// types, collecting the problems it finds (see fieldErrors).
type istioConverter struct {
	fieldErrors
}

// duration parses a Go duration such as 1m30s. Istio's JSON form of a
// duration is in seconds ("90s"), which Istio's Go client requires when it
// reads the object back, so durations are never copied as written.
func (c *istioConverter) duration(field, s string) *durationpb.Duration {
	if s == "" {
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		c.fail(field, err)
		return nil
	}
	return durationpb.New(d)
}

// istioEnum is an Istio enum type, named in the Canary by its value name.
type istioEnum interface {
	~int32
	Descriptor() protoreflect.EnumDescriptor
}

// enum returns the value of an Istio enum named s, or 0 when s is empty.
func enum[E istioEnum](c *istioConverter, field, s string) E {
	var zero E
	if s == "" {
		return zero
	}
	v := zero.Descriptor().Values().ByName(protoreflect.Name(s))
	if v == nil {
		c.fail(field, fmt.Errorf("unknown value %q", s))
		return zero
	}
	return E(v.Number())
}

// stringMatch converts a StringMatch. Istio has no suffix match.
func (c *istioConverter) stringMatch(field string, m flaggerv1beta1.StringMatch) *istionetworking.StringMatch {
	switch {
	case m.Exact != nil:
		return &istionetworking.StringMatch{MatchType: &istionetworking.StringMatch_Exact{Exact: *m.Exact}}
	case m.Prefix != nil:
		return &istionetworking.StringMatch{MatchType: &istionetworking.StringMatch_Prefix{Prefix: *m.Prefix}}
	case m.Regex != nil:
		return &istionetworking.StringMatch{MatchType: &istionetworking.StringMatch_Regex{Regex: *m.Regex}}
	case m.Suffix != nil:
		c.fail(field, fmt.Errorf("suffix matches are not supported by Istio; use a regex such as %q", ".*"+regexp.QuoteMeta(*m.Suffix)+"$"))
		return nil
	}
	return &istionetworking.StringMatch{}
}

func (c *istioConverter) optionalMatch(field string, m *flaggerv1beta1.StringMatch) *istionetworking.StringMatch {
	if m == nil {
		return nil
	}
	return c.stringMatch(field, *m)
}

func (c *istioConverter) stringMatches(field string, ms map[string]flaggerv1beta1.StringMatch) map[string]*istionetworking.StringMatch {
	if len(ms) == 0 {
		return nil
	}
	out := make(map[string]*istionetworking.StringMatch, len(ms))
	for _, k := range sortedKeys(ms) {
		out[k] = c.stringMatch(field+"."+k, ms[k])
	}
	return out
}

// matches converts request conditions; field names the list for errors.
func (c *istioConverter) matches(field string, ms []flaggerv1beta1.HTTPMatchRequest) []*istionetworking.HTTPMatchRequest {
	if len(ms) == 0 {
		return nil
	}
	out := make([]*istionetworking.HTTPMatchRequest, 0, len(ms))
	for i, m := range ms {
		f := fmt.Sprintf("%s[%d]", field, i)
		out = append(out, &istionetworking.HTTPMatchRequest{
			Name:            m.Name,
			Uri:             c.optionalMatch(f+".uri", m.URI),
			Scheme:          c.optionalMatch(f+".scheme", m.Scheme),
			Method:          c.optionalMatch(f+".method", m.Method),
			Authority:       c.optionalMatch(f+".authority", m.Authority),
			Headers:         c.stringMatches(f+".headers", m.Headers),
			Port:            m.Port,
			SourceLabels:    m.SourceLabels,
			Gateways:        m.Gateways,
			QueryParams:     c.stringMatches(f+".queryParams", m.QueryParams),
			IgnoreUriCase:   m.IgnoreURICase,
			WithoutHeaders:  c.stringMatches(f+".withoutHeaders", m.WithoutHeaders),
			SourceNamespace: m.SourceNamespace,
		})
	}
	return out
}

// abMatches returns the matches of an A/B route: each of the default
// route's matches (or an empty one) with the A/B conditions added.
func (c *istioConverter) abMatches(field string, cond flaggerv1beta1.HTTPMatchConditions, service []*istionetworking.HTTPMatchRequest) []*istionetworking.HTTPMatchRequest {
	headers := c.stringMatches(field+".headers", headerMatches(cond.Headers))
	query := c.stringMatches(field+".queryParams", cond.QueryParams)
	if len(service) == 0 {
		service = []*istionetworking.HTTPMatchRequest{{}}
	}
	out := make([]*istionetworking.HTTPMatchRequest, 0, len(service))
	for _, m := range service {
		m = proto.Clone(m).(*istionetworking.HTTPMatchRequest)
		m.Headers = mergeMaps(m.Headers, headers)
		m.QueryParams = mergeMaps(m.QueryParams, query)
		m.SourceLabels = mergeMaps(m.SourceLabels, cond.SourceLabels)
		out = append(out, m)
	}
	return out
}

func (c *istioConverter) rewrite(r *flaggerv1beta1.HTTPRewrite) *istionetworking.HTTPRewrite {
	if r == nil {
		return nil
	}
	return &istionetworking.HTTPRewrite{Uri: r.URI, Authority: r.Authority}
}

func (c *istioConverter) retries(r *flaggerv1beta1.HTTPRetry) *istionetworking.HTTPRetry {
	if r == nil {
		return nil
	}
	return &istionetworking.HTTPRetry{
		Attempts:      r.Attempts,
		PerTryTimeout: c.duration("spec.service.retries.perTryTimeout", r.PerTryTimeout),
		RetryOn:       r.RetryOn,
	}
}

func (c *istioConverter) headers(h *flaggerv1beta1.Headers) *istionetworking.Headers {
	if h == nil {
		return nil
	}
	ops := func(o *flaggerv1beta1.HeaderOperations) *istionetworking.Headers_HeaderOperations {
		if o == nil {
			return nil
		}
		return &istionetworking.Headers_HeaderOperations{Set: o.Set, Add: o.Add, Remove: o.Remove}
	}
	return &istionetworking.Headers{Request: ops(h.Request), Response: ops(h.Response)}
}

func (c *istioConverter) corsPolicy(p *flaggerv1beta1.CorsPolicy) *istionetworking.CorsPolicy {
	if p == nil {
		return nil
	}
	out := &istionetworking.CorsPolicy{
		AllowMethods:  p.AllowMethods,
		AllowHeaders:  p.AllowHeaders,
		ExposeHeaders: p.ExposeHeaders,
		MaxAge:        c.duration("spec.service.corsPolicy.maxAge", p.MaxAge),
	}
	// Istio deprecated allowOrigin for allowOrigins; an exact match of each
	// is the same policy.
	for _, o := range p.AllowOrigin {
		out.AllowOrigins = append(out.AllowOrigins, &istionetworking.StringMatch{MatchType: &istionetworking.StringMatch_Exact{Exact: o}})
	}
	for i, o := range p.AllowOrigins {
		out.AllowOrigins = append(out.AllowOrigins, c.stringMatch(fmt.Sprintf("spec.service.corsPolicy.allowOrigins[%d]", i), o))
	}
	if p.AllowCredentials != nil {
		out.AllowCredentials = wrapperspb.Bool(*p.AllowCredentials)
	}
	return out
}

// trafficPolicy converts the DestinationRules' traffic policy.
func (c *istioConverter) trafficPolicy(p *flaggerv1beta1.TrafficPolicy) *istionetworking.TrafficPolicy {
	if p == nil {
		return nil
	}
	const field = "spec.service.trafficPolicy"
	out := &istionetworking.TrafficPolicy{
		LoadBalancer:     c.loadBalancer(field+".loadBalancer", p.LoadBalancer),
		OutlierDetection: c.outlierDetection(field+".outlierDetection", p.OutlierDetection),
	}
	if p.ConnectionPool != nil && p.ConnectionPool.HTTP != nil {
		h := p.ConnectionPool.HTTP
		out.ConnectionPool = &istionetworking.ConnectionPoolSettings{Http: &istionetworking.ConnectionPoolSettings_HTTPSettings{
			Http1MaxPendingRequests:  h.HTTP1MaxPendingRequests,
			Http2MaxRequests:         h.HTTP2MaxRequests,
			MaxRequestsPerConnection: h.MaxRequestsPerConnection,
			MaxRetries:               h.MaxRetries,
			IdleTimeout:              c.duration(field+".connectionPool.http.idleTimeout", h.IdleTimeout),
			H2UpgradePolicy:          enum[istionetworking.ConnectionPoolSettings_HTTPSettings_H2UpgradePolicy](c, field+".connectionPool.http.h2UpgradePolicy", h.H2UpgradePolicy),
		}}
	} else if p.ConnectionPool != nil {
		out.ConnectionPool = &istionetworking.ConnectionPoolSettings{}
	}
	if t := p.TLS; t != nil {
		out.Tls = &istionetworking.ClientTLSSettings{
			Mode:              enum[istionetworking.ClientTLSSettings_TLSmode](c, field+".tls.mode", t.Mode),
			ClientCertificate: t.ClientCertificate,
			PrivateKey:        t.PrivateKey,
			CaCertificates:    t.CaCertificates,
			SubjectAltNames:   t.SubjectAltNames,
			Sni:               t.Sni,
		}
	}
	return out
}

func (c *istioConverter) loadBalancer(field string, lb *flaggerv1beta1.LoadBalancerSettings) *istionetworking.LoadBalancerSettings {
	if lb == nil {
		return nil
	}
	out := &istionetworking.LoadBalancerSettings{
		// Istio deprecated warmupDurationSecs for warmup.duration, but the
		// Istio releases before warmup read only the former, and the
		// Canary's field is named after it.
		WarmupDurationSecs: c.duration(field+".warmupDurationSecs", lb.WarmupDurationSecs), //nolint:staticcheck // see above
	}
	switch {
	case lb.Simple != "" && lb.ConsistentHash != nil:
		c.fail(field, errors.New("set either simple or consistentHash, not both"))
	case lb.Simple != "":
		out.LbPolicy = &istionetworking.LoadBalancerSettings_Simple{
			Simple: enum[istionetworking.LoadBalancerSettings_SimpleLB](c, field+".simple", lb.Simple),
		}
	case lb.ConsistentHash != nil:
		out.LbPolicy = &istionetworking.LoadBalancerSettings_ConsistentHash{ConsistentHash: c.consistentHash(field+".consistentHash", lb.ConsistentHash)}
	}
	if l := lb.LocalityLbSetting; l != nil {
		out.LocalityLbSetting = &istionetworking.LocalityLoadBalancerSetting{}
		for _, d := range l.Distribute {
			out.LocalityLbSetting.Distribute = append(out.LocalityLbSetting.Distribute, &istionetworking.LocalityLoadBalancerSetting_Distribute{From: d.From, To: d.To})
		}
		for _, f := range l.Failover {
			out.LocalityLbSetting.Failover = append(out.LocalityLbSetting.Failover, &istionetworking.LocalityLoadBalancerSetting_Failover{From: f.From, To: f.To})
		}
		if l.Enabled != nil {
			out.LocalityLbSetting.Enabled = wrapperspb.Bool(*l.Enabled)
		}
	}
	return out
}

func (c *istioConverter) consistentHash(field string, h *flaggerv1beta1.ConsistentHashLB) *istionetworking.LoadBalancerSettings_ConsistentHashLB {
	out := &istionetworking.LoadBalancerSettings_ConsistentHashLB{}
	if h.MinimumRingSize > 0 {
		c.fail(field+".minimumRingSize", errors.New("cannot be set through Istio's Go client, which writes 64-bit integers as JSON strings "+
			"that the DestinationRule CRD rejects (istio/api#3445); remove it to use Envoy's default"))
	}
	set := 0
	if h.HTTPHeaderName != "" {
		set++
		out.HashKey = &istionetworking.LoadBalancerSettings_ConsistentHashLB_HttpHeaderName{HttpHeaderName: h.HTTPHeaderName}
	}
	if k := h.HTTPCookie; k != nil {
		set++
		out.HashKey = &istionetworking.LoadBalancerSettings_ConsistentHashLB_HttpCookie{HttpCookie: &istionetworking.LoadBalancerSettings_ConsistentHashLB_HTTPCookie{
			Name: k.Name, Path: k.Path, Ttl: c.duration(field+".httpCookie.ttl", k.TTL),
		}}
	}
	if h.UseSourceIP {
		set++
		out.HashKey = &istionetworking.LoadBalancerSettings_ConsistentHashLB_UseSourceIp{UseSourceIp: true}
	}
	if h.HTTPQueryParameterName != "" {
		set++
		out.HashKey = &istionetworking.LoadBalancerSettings_ConsistentHashLB_HttpQueryParameterName{HttpQueryParameterName: h.HTTPQueryParameterName}
	}
	if set != 1 {
		c.fail(field, fmt.Errorf("set exactly one of httpHeaderName, httpCookie, useSourceIp and httpQueryParameterName, not %d", set))
	}
	return out
}

func (c *istioConverter) outlierDetection(field string, o *flaggerv1beta1.OutlierDetection) *istionetworking.OutlierDetection {
	if o == nil {
		return nil
	}
	uint32Value := func(v *uint32) *wrapperspb.UInt32Value {
		if v == nil {
			return nil
		}
		return wrapperspb.UInt32(*v)
	}
	gatewayErrors := uint32Value(o.ConsecutiveGatewayErrors)
	if gatewayErrors == nil && o.ConsecutiveErrors > 0 {
		// Istio deprecated consecutiveErrors, which counted 502, 503 and
		// 504 answers, for consecutiveGatewayErrors, which counts the same.
		gatewayErrors = wrapperspb.UInt32(uint32(o.ConsecutiveErrors))
	}
	return &istionetworking.OutlierDetection{
		Consecutive_5XxErrors:          uint32Value(o.Consecutive5xxErrors),
		ConsecutiveGatewayErrors:       gatewayErrors,
		ConsecutiveLocalOriginFailures: uint32Value(o.ConsecutiveLocalOriginFailures),
		SplitExternalLocalOriginErrors: o.SplitExternalLocalOriginErrors,
		Interval:                       c.duration(field+".interval", o.Interval),
		BaseEjectionTime:               c.duration(field+".baseEjectionTime", o.BaseEjectionTime),
		MaxEjectionPercent:             o.MaxEjectionPercent,
		MinHealthPercent:               o.MinHealthPercent,
	}
}
