package metrics

import (
	"fmt"
	"net/http"
	"time"

	"k8s.io/client-go/rest"
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
	// Rest is the configuration of Sluice's own connection to the API
	// server, for the externalmetrics provider. The resolver sets it from
	// ResolverConfig.Rest; it is not part of the configuration's identity.
	Rest *rest.Config `json:"-"`
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
	flaggerv1beta1.MetricProviderPrometheus:      factory(NewPrometheus),
	flaggerv1beta1.MetricProviderDatadog:         factory(NewDatadog),
	flaggerv1beta1.MetricProviderGraphite:        factory(NewGraphite),
	flaggerv1beta1.MetricProviderInfluxDB:        factory(NewInfluxDB),
	flaggerv1beta1.MetricProviderNewRelic:        factory(NewNewRelic),
	flaggerv1beta1.MetricProviderCloudWatch:      factory(NewCloudWatch),
	flaggerv1beta1.MetricProviderDynatrace:       factory(NewDynatrace),
	flaggerv1beta1.MetricProviderStackdriver:     factory(NewStackdriver),
	flaggerv1beta1.MetricProviderKeptn:           factory(NewKeptn),
	flaggerv1beta1.MetricProviderSplunk:          factory(NewSplunk),
	flaggerv1beta1.MetricProviderExternalMetrics: factory(NewExternalMetrics),
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
