package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
)

// DatadogDefaultAddress is the Datadog API of the US1 site, used when the
// MetricTemplate has no address.
const DatadogDefaultAddress = "https://api.datadoghq.com"

// Datadog runs metric queries through Datadog's v1 query API
// (/api/v1/query) with the official client, over ten metric intervals
// ending now (as Flagger does), and returns the last point of the single
// series.
//
// Secret keys: datadog_api_key and datadog_application_key, as in Flagger;
// apiKey and applicationKey are accepted too.
type Datadog struct {
	address string
	window  time.Duration
	keys    map[string]datadog.APIKey
	metrics *datadogV1.MetricsApi
	auth    *datadogV1.AuthenticationApi
	now     func() time.Time
}

// NewDatadog returns a Datadog provider for cfg. Both keys are required.
func NewDatadog(cfg ProviderConfig) (*Datadog, error) {
	apiKey, ok := cfg.credential("datadog_api_key", "apiKey")
	if !ok {
		return nil, errors.New("datadog: the secret has no datadog_api_key (or apiKey)")
	}
	appKey, ok := cfg.credential("datadog_application_key", "applicationKey")
	if !ok {
		return nil, errors.New("datadog: the secret has no datadog_application_key (or applicationKey)")
	}
	address := strings.TrimSuffix(cfg.Address, "/")
	if address == "" {
		address = DatadogDefaultAddress
	}
	window := cfg.Window
	if window <= 0 {
		window = time.Minute
	}
	dc := datadog.NewConfiguration()
	dc.Servers = datadog.ServerConfigurations{{URL: address, Description: "the MetricTemplate's address"}}
	dc.HTTPClient = newHTTPClient(cfg, address, nil)
	client := datadog.NewAPIClient(dc)
	return &Datadog{
		address: address,
		window:  lookbackIntervals * window,
		keys: map[string]datadog.APIKey{
			"apiKeyAuth": {Key: apiKey},
			"appKeyAuth": {Key: appKey},
		},
		metrics: datadogV1.NewMetricsApi(client),
		auth:    datadogV1.NewAuthenticationApi(client),
		now:     time.Now,
	}, nil
}

// RunQuery runs query over [now - interval, now]. No series, or a series
// without a non-null point, is ErrNoValues; more than one series is an
// error that says how many.
func (d *Datadog) RunQuery(ctx context.Context, query string) (float64, error) {
	to := d.now()
	from := to.Add(-d.window)
	res, resp, err := d.metrics.QueryMetrics(d.withKeys(ctx), from.Unix(), to.Unix(), query)
	if resp != nil {
		defer func() { _ = resp.Body.Close() }() // read by the client already
	}
	if err != nil {
		return 0, d.explain(resp, err)
	}
	if res.Error != nil && *res.Error != "" {
		return 0, fmt.Errorf("datadog at %s: the query failed: %s", d.address, *res.Error)
	}
	if res.Status != nil && *res.Status == "error" {
		return 0, fmt.Errorf("datadog at %s: the query failed without a message", d.address)
	}
	switch len(res.Series) {
	case 0:
		return 0, ErrNoValues
	case 1:
	default:
		scopes := make([]string, 0, len(res.Series))
		for _, s := range res.Series {
			scopes = append(scopes, s.GetScope())
		}
		return 0, fmt.Errorf("the query returned %d series, it must return exactly one (drop the group by, or aggregate): scopes %s", len(res.Series), strings.Join(scopes, "; "))
	}
	points := res.Series[0].Pointlist
	for i := len(points) - 1; i >= 0; i-- {
		if len(points[i]) < 2 || points[i][1] == nil {
			continue
		}
		v := *points[i][1]
		if math.IsNaN(v) {
			return 0, ErrNaN
		}
		return v, nil
	}
	return 0, ErrNoValues
}

// IsOnline checks the API key with /api/v1/validate.
func (d *Datadog) IsOnline(ctx context.Context) (bool, error) {
	res, resp, err := d.auth.Validate(d.withKeys(ctx))
	if resp != nil {
		defer func() { _ = resp.Body.Close() }() // read by the client already
	}
	if err != nil {
		return false, d.explain(resp, err)
	}
	if !res.GetValid() {
		return false, fmt.Errorf("datadog at %s: the API key is not valid", d.address)
	}
	return true, nil
}

// withKeys adds the API and application keys to ctx, where the client
// reads them.
func (d *Datadog) withKeys(ctx context.Context) context.Context {
	return context.WithValue(ctx, datadog.ContextAPIKeys, d.keys)
}

// explain turns a client error into one that says what went wrong and
// what to check.
func (d *Datadog) explain(resp *http.Response, err error) error {
	var oe datadog.GenericOpenAPIError
	if resp == nil || !errors.As(err, &oe) {
		return fmt.Errorf("datadog at %s: %w", d.address, err)
	}
	// Datadog's error answers are {"errors": [...]}; the client decodes
	// them only for some status codes.
	detail := strings.TrimSpace(string(oe.Body()))
	var body struct {
		Errors []string `json:"errors"`
	}
	if json.Unmarshal(oe.Body(), &body) == nil && len(body.Errors) > 0 {
		detail = strings.Join(body.Errors, "; ")
	}
	if len(detail) > 200 {
		detail = detail[:200] + "..."
	}
	var hint string
	switch code := resp.StatusCode; {
	case code < 300:
		return fmt.Errorf("datadog at %s: the answer is not the JSON of a query result: %w", d.address, err)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		hint = "check datadog_api_key and datadog_application_key in the MetricTemplate's Secret, and that the address is the API of your Datadog site"
	case code == http.StatusTooManyRequests:
		hint = "Datadog is rate limiting the queries"
		if reset := resp.Header.Get("X-RateLimit-Reset"); reset != "" {
			hint += "; the limit resets in " + reset + "s"
		}
	case code >= 500:
		hint = "Datadog failed to answer"
	}
	msg := fmt.Sprintf("datadog at %s: %s", d.address, resp.Status)
	if detail != "" {
		msg += ": " + detail
	}
	if hint != "" {
		msg += " (" + hint + ")"
	}
	return errors.New(msg)
}
