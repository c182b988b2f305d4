package v1beta1

// StringMatch matches a string in one of several ways. At most one of its
// fields may be set; an empty StringMatch matches any value.
//
// +kubebuilder:validation:XValidation:rule="(has(self.exact) ? 1 : 0) + (has(self.prefix) ? 1 : 0) + (has(self.suffix) ? 1 : 0) + (has(self.regex) ? 1 : 0) <= 1",message="set at most one of exact, prefix, suffix and regex"
type StringMatch struct {
	// exact matches the whole string.
	// +optional
	Exact *string `json:"exact,omitempty"`

	// prefix matches the start of the string.
	// +optional
	Prefix *string `json:"prefix,omitempty"`

	// suffix matches the end of the string. Not every provider supports it
	// (Istio does not); Sluice reports an error where it cannot be honoured.
	// +optional
	Suffix *string `json:"suffix,omitempty"`

	// regex matches the string against an RE2 regular expression.
	// +optional
	Regex *string `json:"regex,omitempty"`
}

// HTTPMatchRequest is a set of conditions a request must meet for a route to
// apply (the shape of Istio's HTTPMatchRequest). All set conditions must hold.
type HTTPMatchRequest struct {
	// name of the match, used in logs and generated route names.
	// +optional
	Name string `json:"name,omitempty"`

	// uri matches the request path.
	// +optional
	URI *StringMatch `json:"uri,omitempty"`

	// scheme matches the URI scheme, such as http or https.
	// +optional
	Scheme *StringMatch `json:"scheme,omitempty"`

	// method matches the HTTP method.
	// +optional
	Method *StringMatch `json:"method,omitempty"`

	// authority matches the Host/Authority header.
	// +optional
	Authority *StringMatch `json:"authority,omitempty"`

	// headers match request headers by lower-case name.
	// +optional
	Headers map[string]StringMatch `json:"headers,omitempty"`

	// port matches the port the request was addressed to.
	// +optional
	Port uint32 `json:"port,omitempty"`

	// sourceLabels restrict the match to requests from workloads with these labels.
	// +optional
	SourceLabels map[string]string `json:"sourceLabels,omitempty"`

	// gateways restrict the match to requests that came through these gateways.
	// +optional
	Gateways []string `json:"gateways,omitempty"`

	// queryParams match query parameters by name.
	// +optional
	QueryParams map[string]StringMatch `json:"queryParams,omitempty"`

	// ignoreUriCase makes the uri match case-insensitive. Defaults to false.
	// +optional
	IgnoreURICase bool `json:"ignoreUriCase,omitempty"`

	// withoutHeaders match requests that do not carry these headers with
	// these values.
	// +optional
	WithoutHeaders map[string]StringMatch `json:"withoutHeaders,omitempty"`

	// sourceNamespace restricts the match to requests from workloads in this namespace.
	// +optional
	SourceNamespace string `json:"sourceNamespace,omitempty"`
}

// TrafficPolicy is the Istio traffic policy of the generated DestinationRules.
type TrafficPolicy struct {
	// connectionPool limits connections and requests to each backend.
	// +optional
	ConnectionPool *ConnectionPoolSettings `json:"connectionPool,omitempty"`

	// loadBalancer chooses how requests are spread over the backend's endpoints.
	// +optional
	LoadBalancer *LoadBalancerSettings `json:"loadBalancer,omitempty"`

	// outlierDetection ejects failing endpoints from the load-balancing pool.
	// +optional
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`

	// tls configures TLS for connections to the backends.
	// +optional
	TLS *ClientTLSSettings `json:"tls,omitempty"`
}

// ConnectionPoolSettings limit the connections to a backend.
type ConnectionPoolSettings struct {
	// http holds the limits for HTTP/1.1 and HTTP/2 connections.
	// +optional
	HTTP *HTTPConnectionPoolSettings `json:"http,omitempty"`
}

// HTTPConnectionPoolSettings limit HTTP requests to a backend.
type HTTPConnectionPoolSettings struct {
	// http1MaxPendingRequests is the most requests that may wait for a
	// connection. Unset means the Istio default.
	// +optional
	HTTP1MaxPendingRequests int32 `json:"http1MaxPendingRequests,omitempty"`

	// http2MaxRequests is the most concurrent requests to the backend.
	// +optional
	HTTP2MaxRequests int32 `json:"http2MaxRequests,omitempty"`

	// maxRequestsPerConnection is the most requests sent over one connection;
	// 1 disables keep-alive.
	// +optional
	MaxRequestsPerConnection int32 `json:"maxRequestsPerConnection,omitempty"`

	// maxRetries is the most retries outstanding at once across all requests.
	// +optional
	MaxRetries int32 `json:"maxRetries,omitempty"`

	// idleTimeout closes connections idle for this long, as a duration such as 1h.
	// +optional
	IdleTimeout string `json:"idleTimeout,omitempty"`

	// h2UpgradePolicy says whether HTTP/1.1 connections are upgraded to HTTP/2.
	// +kubebuilder:validation:Enum=DEFAULT;DO_NOT_UPGRADE;UPGRADE
	// +optional
	H2UpgradePolicy string `json:"h2UpgradePolicy,omitempty"`
}

// LoadBalancerSettings choose how requests are spread over endpoints. Set
// either simple or consistentHash.
//
// +kubebuilder:validation:XValidation:rule="(!has(self.simple) && !has(self.consistentHash)) || (has(self.simple) ? 1 : 0) + (has(self.consistentHash) && (has(self.consistentHash.httpHeaderName) ? 1 : 0) + (has(self.consistentHash.httpCookie) ? 1 : 0) + (has(self.consistentHash.useSourceIp) ? 1 : 0) + (has(self.consistentHash.httpQueryParameterName) ? 1 : 0) == 1 ? 1 : 0) == 1",message="set either simple or consistentHash with exactly one of httpHeaderName, httpCookie, useSourceIp and httpQueryParameterName"
type LoadBalancerSettings struct {
	// simple is a standard load-balancing algorithm.
	// +kubebuilder:validation:Enum=ROUND_ROBIN;LEAST_CONN;RANDOM;PASSTHROUGH;LEAST_REQUEST
	// +optional
	Simple string `json:"simple,omitempty"`

	// consistentHash gives session affinity by hashing a header, cookie,
	// source IP or query parameter.
	// +optional
	ConsistentHash *ConsistentHashLB `json:"consistentHash,omitempty"`

	// localityLbSetting routes by locality (region/zone/subzone).
	// +optional
	LocalityLbSetting *LocalityLoadBalancerSetting `json:"localityLbSetting,omitempty"`

	// warmupDurationSecs ramps traffic up slowly to new endpoints over this
	// duration, such as 60s.
	// +optional
	WarmupDurationSecs string `json:"warmupDurationSecs,omitempty"`
}

// ConsistentHashLB hashes one property of a request to pick an endpoint.
// Set exactly one of httpHeaderName, httpCookie, useSourceIp and
// httpQueryParameterName (checked by the rule of LoadBalancerSettings, as
// Flagger's schema does).
type ConsistentHashLB struct {
	// httpHeaderName hashes the value of this request header.
	// +optional
	HTTPHeaderName string `json:"httpHeaderName,omitempty"`

	// httpCookie hashes this cookie, creating it when absent.
	// +optional
	HTTPCookie *HTTPCookie `json:"httpCookie,omitempty"`

	// useSourceIp hashes the client's IP address.
	// +optional
	UseSourceIP bool `json:"useSourceIp,omitempty"`

	// httpQueryParameterName hashes the value of this query parameter.
	// +optional
	HTTPQueryParameterName string `json:"httpQueryParameterName,omitempty"`

	// minimumRingSize is the smallest number of virtual nodes in the hash ring.
	// +optional
	MinimumRingSize uint64 `json:"minimumRingSize,omitempty"`
}

// HTTPCookie describes the cookie used for consistent hashing.
type HTTPCookie struct {
	// name of the cookie.
	// +optional
	Name string `json:"name,omitempty"`

	// path of the cookie.
	// +optional
	Path string `json:"path,omitempty"`

	// ttl is the lifetime of the generated cookie, as a duration such as 1h.
	// +optional
	TTL string `json:"ttl,omitempty"`
}

// LocalityLoadBalancerSetting routes traffic by locality.
type LocalityLoadBalancerSetting struct {
	// distribute sets, per source locality, the share of traffic each
	// destination locality receives.
	// +optional
	Distribute []LocalityDistribute `json:"distribute,omitempty"`

	// failover names the locality to fail over to when a locality is unhealthy.
	// +optional
	Failover []LocalityFailover `json:"failover,omitempty"`

	// enabled switches locality load balancing on or off for these
	// destinations, overriding the mesh-wide setting.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
}

// LocalityDistribute spreads traffic from one locality over others.
type LocalityDistribute struct {
	// from is the source locality, region/zone/subzone, with * as a wildcard.
	// +optional
	From string `json:"from,omitempty"`

	// to maps destination localities to their percentage of the traffic.
	// +optional
	To map[string]uint32 `json:"to,omitempty"`
}

// LocalityFailover names the region to fail over to from another region.
type LocalityFailover struct {
	// from is the region that fails.
	// +optional
	From string `json:"from,omitempty"`

	// to is the region that takes the traffic.
	// +optional
	To string `json:"to,omitempty"`
}

// OutlierDetection ejects failing endpoints.
type OutlierDetection struct {
	// consecutiveErrors is the number of 5xx answers after which an endpoint
	// is ejected. Deprecated by Istio in favour of consecutive5xxErrors.
	// +optional
	ConsecutiveErrors int32 `json:"consecutiveErrors,omitempty"`

	// consecutive5xxErrors is the number of 5xx answers after which an
	// endpoint is ejected.
	// +optional
	Consecutive5xxErrors *uint32 `json:"consecutive5xxErrors,omitempty"`

	// consecutiveGatewayErrors is the number of 502, 503 and 504 answers
	// after which an endpoint is ejected.
	// +optional
	ConsecutiveGatewayErrors *uint32 `json:"consecutiveGatewayErrors,omitempty"`

	// consecutiveLocalOriginFailures is the number of locally originated
	// failures after which an endpoint is ejected; used only with
	// splitExternalLocalOriginErrors.
	// +optional
	ConsecutiveLocalOriginFailures *uint32 `json:"consecutiveLocalOriginFailures,omitempty"`

	// splitExternalLocalOriginErrors counts local failures (timeouts,
	// resets) apart from answers of the endpoint.
	// +optional
	SplitExternalLocalOriginErrors bool `json:"splitExternalLocalOriginErrors,omitempty"`

	// interval between ejection sweeps, as a duration such as 10s.
	// +optional
	Interval string `json:"interval,omitempty"`

	// baseEjectionTime is the shortest ejection, as a duration such as 30s.
	// +optional
	BaseEjectionTime string `json:"baseEjectionTime,omitempty"`

	// maxEjectionPercent is the largest percentage of endpoints that may be
	// ejected at once.
	// +optional
	MaxEjectionPercent int32 `json:"maxEjectionPercent,omitempty"`

	// minHealthPercent disables ejection while fewer than this percentage of
	// endpoints are healthy.
	// +optional
	MinHealthPercent int32 `json:"minHealthPercent,omitempty"`
}

// ClientTLSSettings configure TLS towards the backends.
type ClientTLSSettings struct {
	// mode is the TLS mode: DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL.
	// +kubebuilder:validation:Enum=DISABLE;SIMPLE;MUTUAL;ISTIO_MUTUAL
	// +optional
	Mode string `json:"mode,omitempty"`

	// clientCertificate is the path of the client certificate (MUTUAL).
	// +optional
	ClientCertificate string `json:"clientCertificate,omitempty"`

	// privateKey is the path of the client's private key (MUTUAL).
	// +optional
	PrivateKey string `json:"privateKey,omitempty"`

	// caCertificates is the path of the CA bundle used to verify the server.
	// +optional
	CaCertificates string `json:"caCertificates,omitempty"`

	// subjectAltNames are the names accepted in the server certificate.
	// +optional
	SubjectAltNames []string `json:"subjectAltNames,omitempty"`

	// sni is the server name sent in the TLS handshake.
	// +optional
	Sni string `json:"sni,omitempty"`
}
