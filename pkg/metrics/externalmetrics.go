package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	emv1beta1 "k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	externalmetrics "k8s.io/metrics/pkg/client/external_metrics"
)

// The external metrics API reads metrics of any namespace for the default
// connection (Sluice's own service account).
// +kubebuilder:rbac:groups=external.metrics.k8s.io,resources=*,verbs=get;list

// externalMetricsDefaultNamespace is the namespace of a query that names
// none, as in Flagger.
const externalMetricsDefaultNamespace = "default"

// ExternalMetrics reads the Kubernetes external metrics API
// (external.metrics.k8s.io/v1beta1, served by an adapter such as KEDA's,
// the Datadog Cluster Agent or prometheus-adapter) through client-go's
// external metrics client, as Flagger's externalmetrics provider does.
//
// The query is, as in Flagger,
//
//	[<namespace>/]<metric>[?labelSelector=<URL-encoded selector>]
//
// with the namespace defaulting to default. The first value returned is
// the result, as in Flagger; when several come back the check's message
// says how many. No value is ErrNoValues.
//
// Without an address the provider talks to the cluster's API server with
// Sluice's own credentials (the ClusterRole grants get and list on
// external.metrics.k8s.io), or with the Secret's token when it has one.
// With an address (another API server or the adapter itself), only the
// Secret's token is sent there, never Sluice's own credentials: Flagger
// sends its own, which would hand the controller's identity to whatever
// server a MetricTemplate names. insecureSkipVerify is honoured.
//
// Secret keys, as in Flagger: token, a bearer token (optional).
type ExternalMetrics struct {
	host   string
	client externalmetrics.ExternalMetricsClient
	disco  discovery.DiscoveryInterface
}

// NewExternalMetrics returns an external metrics provider for cfg.
func NewExternalMetrics(cfg ProviderConfig) (*ExternalMetrics, error) {
	rc, err := externalMetricsConfig(cfg)
	if err != nil {
		return nil, err
	}
	client, err := externalmetrics.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("externalmetrics: building the client for %s: %w", rc.Host, err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("externalmetrics: building the discovery client for %s: %w", rc.Host, err)
	}
	return &ExternalMetrics{host: rc.Host, client: client, disco: disco}, nil
}

// externalMetricsConfig derives the connection of the provider from
// Sluice's own (cfg.Rest) and the template.
func externalMetricsConfig(cfg ProviderConfig) (*rest.Config, error) {
	address := strings.TrimSuffix(strings.TrimSpace(cfg.Address), "/")
	var rc *rest.Config
	switch {
	case cfg.Rest == nil && address == "":
		return nil, errors.New("externalmetrics: no address, and Sluice has no connection to the API server to use instead")
	case cfg.Rest != nil && (address == "" || address == strings.TrimSuffix(cfg.Rest.Host, "/")):
		rc = rest.CopyConfig(cfg.Rest)
	case cfg.Rest != nil:
		// Another server: keep nothing that identifies Sluice.
		rc = rest.AnonymousClientConfig(cfg.Rest)
		rc.Host, rc.ServerName = address, ""
		rc.CAData, rc.CAFile = nil, ""
	default:
		rc = &rest.Config{Host: address}
	}
	if token, ok := cfg.credential("token"); ok && strings.TrimSpace(token) != "" {
		anon := rest.AnonymousClientConfig(rc)
		anon.BearerToken = strings.TrimSpace(token)
		rc = anon
	}
	if cfg.InsecureSkipVerify {
		rc.Insecure = true
		rc.CAData, rc.CAFile = nil, ""
	}
	rc.Timeout = queryTimeout(cfg)
	rc.UserAgent = "sluice-metrics"
	host := ""
	if u, err := url.Parse(rc.Host); err == nil {
		host = u.Host
	}
	if host == "" {
		host = rc.Host
	}
	rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return &hostGuard{host: host, base: rt} }
	return rc, nil
}

// hostGuard refuses every request to another host than the configured
// one: client-go follows redirects and sets its credentials on each
// request, so a redirect would otherwise carry them elsewhere.
type hostGuard struct {
	host string
	base http.RoundTripper
}

// RoundTrip sends req when it goes to the configured host.
func (g *hostGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if g.host != "" && !strings.EqualFold(req.URL.Host, g.host) {
		return nil, fmt.Errorf("not sending credentials to %s://%s, another server than the configured %s; set the address to where the API answers",
			req.URL.Scheme, req.URL.Host, g.host)
	}
	return g.base.RoundTrip(req)
}

// externalMetricsQuery is a parsed query.
type externalMetricsQuery struct {
	namespace string
	metric    string
	selector  labels.Selector
}

// externalMetricsQueryForm documents the query in error messages.
const externalMetricsQueryForm = "[<namespace>/]<metric>[?labelSelector=<URL-encoded label selector>]"

// parseExternalMetricsQuery reads a query (see ExternalMetrics).
func parseExternalMetricsQuery(query string) (externalMetricsQuery, error) {
	q := externalMetricsQuery{namespace: externalMetricsDefaultNamespace, selector: labels.Everything()}
	text := strings.TrimSpace(query)
	path, rawQuery, _ := strings.Cut(text, "?")
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch len(parts) {
	case 1:
		q.metric = parts[0]
	case 2:
		if parts[0] != "" {
			q.namespace = parts[0]
		}
		q.metric = parts[1]
	default:
		return q, fmt.Errorf("externalmetrics: the query %q has too many slashes; it must be %s", OneLine(query), externalMetricsQueryForm)
	}
	if q.metric == "" {
		return q, fmt.Errorf("externalmetrics: the query %q names no metric; it must be %s", OneLine(query), externalMetricsQueryForm)
	}
	if strings.ContainsAny(q.metric+q.namespace, " \t\n%#") {
		return q, fmt.Errorf("externalmetrics: the namespace and metric of the query %q must not contain white space, %% or #", OneLine(query))
	}
	params, err := url.ParseQuery(rawQuery)
	if err != nil {
		return q, fmt.Errorf("externalmetrics: the parameters of the query %q: %w", OneLine(query), err)
	}
	for name := range params {
		if name != "labelSelector" {
			return q, fmt.Errorf("externalmetrics: the query has the parameter %q; the only one is labelSelector", name)
		}
	}
	if raw := params.Get("labelSelector"); raw != "" {
		if q.selector, err = labels.Parse(raw); err != nil {
			return q, fmt.Errorf("externalmetrics: the labelSelector %q: %w", raw, err)
		}
	}
	return q, nil
}

// RunQuery reads the metric and returns its first value; see
// RunQueryNoted.
func (e *ExternalMetrics) RunQuery(ctx context.Context, query string) (float64, error) {
	v, _, err := e.RunQueryNoted(ctx, query)
	return v, err
}

// RunQueryNoted reads the metric the query names and returns its first
// value, noting how many came back when there were several.
func (e *ExternalMetrics) RunQueryNoted(ctx context.Context, query string) (float64, string, error) {
	q, err := parseExternalMetricsQuery(query)
	if err != nil {
		return 0, "", err
	}
	if err := ctx.Err(); err != nil {
		return 0, "", err
	}
	list, err := e.client.NamespacedMetrics(q.namespace).List(q.metric, q.selector)
	if err != nil {
		return 0, "", fmt.Errorf("externalmetrics at %s: reading %s in namespace %s: %w", e.host, q.metric, q.namespace, err)
	}
	return pickExternalMetric(list, q)
}

// pickExternalMetric returns the first value of list, as Flagger does.
func pickExternalMetric(list *emv1beta1.ExternalMetricValueList, q externalMetricsQuery) (float64, string, error) {
	if list == nil || len(list.Items) == 0 {
		return 0, "", fmt.Errorf("%w: the external metrics API returned no value of %s in namespace %s (selector %q)", ErrNoValues, q.metric, q.namespace, q.selector)
	}
	v := list.Items[0].Value.AsApproximateFloat64()
	note := ""
	if n := len(list.Items); n > 1 {
		note = fmt.Sprintf("the external metrics API returned %d values of %s and the first one was compared (as Flagger does); narrow the labelSelector to compare one", n, q.metric)
	}
	return v, note, nil
}

// IsOnline checks that the server serves external.metrics.k8s.io/v1beta1.
func (e *ExternalMetrics) IsOnline(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if _, err := e.disco.ServerResourcesForGroupVersion(emv1beta1.SchemeGroupVersion.String()); err != nil {
		return false, fmt.Errorf("externalmetrics at %s: the server does not serve %s (is an external metrics adapter installed?): %w", e.host, emv1beta1.SchemeGroupVersion, err)
	}
	return true, nil
}
