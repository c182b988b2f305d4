package metrics

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// lookbackIntervals is how many metric intervals back the providers whose
// API takes a time range (Datadog, New Relic, CloudWatch, Dynatrace) look,
// as Flagger does: SaaS backends publish data points minutes late, so a
// range of one interval is often empty, and Flagger users' thresholds were
// tuned on these ranges.
const lookbackIntervals = 10

// DefaultQueryTimeout bounds every request a provider makes when its
// configuration sets no timeout.
const DefaultQueryTimeout = 5 * time.Second

// ProviderConfig is everything a provider needs to reach its backend. The
// resolver builds one per metric from the MetricTemplate (or, for builtin
// metrics, from the metrics server) and reuses the provider it built for an
// equal configuration.
type ProviderConfig struct {
	// Type is the kind of backend, one of the MetricTemplate provider types
	// (flaggerv1beta1.MetricProviderPrometheus, ...).
	Type string `json:"type"`
	// Address is the base URL of the backend's API. Providers with a public
	// default (Datadog, New Relic) use it when Address is empty.
	Address string `json:"address"`
	// Headers are extra HTTP headers sent with every request.
	Headers map[string][]string `json:"headers,omitempty"`
	// Credentials are the data of the template's secretRef Secret, by key
	// (token, username, password, datadog_api_key, ...). Each provider
	// documents the keys it reads.
	Credentials map[string]string `json:"credentials,omitempty"`
	// Region is the cloud region of the backend (CloudWatch).
	Region string `json:"region,omitempty"`
	// InsecureSkipVerify accepts any TLS certificate from the backend.
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
	// Window is how far back a query looks, for providers whose API takes a
	// time range rather than a query with the range in it (Datadog). It is
	// the metric's interval.
	Window time.Duration `json:"window,omitempty"`
	// Timeout bounds each request. Zero means DefaultQueryTimeout.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Kube is the client of providers that read the cluster itself
	// (keptn). The resolver sets it from ResolverConfig.Kube; it is not
	// part of the configuration's identity in the provider cache.
	Kube client.Client `json:"-"`
}

// credential returns the first of keys that the Secret holds.
func (c ProviderConfig) credential(keys ...string) (string, bool) {
	for _, k := range keys {
		if v, ok := c.Credentials[k]; ok {
			return v, true
		}
	}
	return "", false
}

// providerFactories builds each provider type: one line per provider.
var providerFactories = map[string]func(ProviderConfig) (Provider, error){
	flaggerv1beta1.MetricProviderPrometheus:  factory(NewPrometheus),
	flaggerv1beta1.MetricProviderDatadog:     factory(NewDatadog),
	flaggerv1beta1.MetricProviderGraphite:    factory(NewGraphite),
	flaggerv1beta1.MetricProviderInfluxDB:    factory(NewInfluxDB),
	flaggerv1beta1.MetricProviderNewRelic:    factory(NewNewRelic),
	flaggerv1beta1.MetricProviderCloudWatch:  factory(NewCloudWatch),
	flaggerv1beta1.MetricProviderDynatrace:   factory(NewDynatrace),
	flaggerv1beta1.MetricProviderStackdriver: factory(NewStackdriver),
	flaggerv1beta1.MetricProviderKeptn:       factory(NewKeptn),
}

// factory adapts a constructor that returns a concrete provider, so that a
// failed construction yields a nil interface rather than a typed nil.
func factory[P Provider](newP func(ProviderConfig) (P, error)) func(ProviderConfig) (Provider, error) {
	return func(c ProviderConfig) (Provider, error) {
		p, err := newP(c)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
}

// newProvider builds the provider of cfg.Type.
func newProvider(cfg ProviderConfig) (Provider, error) {
	newP, ok := providerFactories[cfg.Type]
	if !ok {
		return nil, fmt.Errorf("metric provider type %q is not supported by this Sluice build", cfg.Type)
	}
	return newP(cfg)
}

// newHTTPClient returns an HTTP client that sends cfg's headers, sets the
// credentials with auth (when not nil), accepts any certificate when cfg
// says so, and gives up after cfg's timeout.
func newHTTPClient(cfg ProviderConfig, auth func(http.Header)) *http.Client {
	base := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.InsecureSkipVerify {
		base.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for it with insecureSkipVerify
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultQueryTimeout
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: &headerTransport{base: base, headers: cfg.Headers, auth: auth},
	}
}

// headerTransport adds fixed headers and credentials to every request.
type headerTransport struct {
	base    http.RoundTripper
	headers map[string][]string
	auth    func(http.Header)
}

// RoundTrip sends a copy of req with the headers set.
func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, vs := range t.headers {
		req.Header.Del(k)
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if t.auth != nil {
		t.auth(req.Header)
	}
	return t.base.RoundTrip(req)
}

// CloseIdleConnections closes the idle connections of the base transport,
// for providers dropped from the resolver's cache.
func (t *headerTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// bearerOrBasic returns the auth function for a Secret with a token (a
// bearer token) or a username and password (basic auth), or nil for a
// configuration without credentials. A username without a password, or the
// reverse, is an error.
func bearerOrBasic(cfg ProviderConfig) (func(http.Header), error) {
	if token, ok := cfg.credential("token"); ok {
		return func(h http.Header) { h.Set("Authorization", "Bearer "+token) }, nil
	}
	user, hasUser := cfg.credential("username")
	pass, hasPass := cfg.credential("password")
	switch {
	case hasUser && hasPass:
		return func(h http.Header) {
			r := http.Request{Header: h}
			r.SetBasicAuth(user, pass)
		}, nil
	case hasUser:
		return nil, fmt.Errorf("the secret has the key username but not password")
	case hasPass:
		return nil, fmt.Errorf("the secret has the key password but not username")
	}
	return nil, nil
}
