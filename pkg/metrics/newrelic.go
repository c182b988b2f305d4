package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// NewRelicDefaultAddress is New Relic's Insights query API in the US
// region, used when the MetricTemplate has no address.
const NewRelicDefaultAddress = "https://insights-api.newrelic.com"

// NewRelic runs NRQL queries through New Relic's Insights query API
// (/v1/accounts/<account>/query), as Flagger does. A query without a SINCE
// clause looks back over ten metric intervals, as in Flagger. The query must return one
// result with one number, such as SELECT average(duration) FROM ....
//
// Secret keys: newrelic_account_id and newrelic_query_key, as in Flagger.
type NewRelic struct {
	address string
	account string
	window  time.Duration
	client  *http.Client
}

// NewNewRelic returns a New Relic provider for cfg. Both keys are required.
func NewNewRelic(cfg ProviderConfig) (*NewRelic, error) {
	account, ok := cfg.credential("newrelic_account_id")
	if !ok {
		return nil, errors.New("newrelic: the secret has no newrelic_account_id")
	}
	key, ok := cfg.credential("newrelic_query_key")
	if !ok {
		return nil, errors.New("newrelic: the secret has no newrelic_query_key")
	}
	address := strings.TrimSuffix(cfg.Address, "/")
	if address == "" {
		address = NewRelicDefaultAddress
	}
	window := cfg.Window
	if window <= 0 {
		window = time.Minute
	}
	auth := func(h http.Header) { h.Set("X-Query-Key", key) }
	return &NewRelic{address: address, account: account, window: lookbackIntervals * window, client: newHTTPClient(cfg, address, auth)}, nil
}

// hasSince finds a SINCE clause in NRQL.
var hasSince = regexp.MustCompile(`(?i)\bSINCE\b`)

// RunQuery runs the NRQL query.
func (n *NewRelic) RunQuery(ctx context.Context, query string) (float64, error) {
	nrql := strings.Join(strings.Fields(query), " ")
	if !hasSince.MatchString(nrql) {
		nrql += fmt.Sprintf(" SINCE %d seconds ago", int(n.window.Seconds()))
	}
	u := fmt.Sprintf("%s/v1/accounts/%s/query?%s", n.address, url.PathEscape(n.account), url.Values{"nrql": {nrql}}.Encode())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, fmt.Errorf("newrelic: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	body, err := callAPI(n.client, req, "newrelic")
	if err != nil {
		return 0, err
	}
	var answer struct {
		Results []map[string]json.RawMessage `json:"results"`
		Facets  []json.RawMessage            `json:"facets"`
		Error   string                       `json:"error"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return 0, fmt.Errorf("newrelic at %s: the answer is not a query result: %w", n.address, err)
	}
	switch {
	case answer.Error != "":
		return 0, fmt.Errorf("newrelic at %s: the query failed: %s", n.address, answer.Error)
	case len(answer.Facets) > 0:
		return 0, fmt.Errorf("the query returned %d facets, it must return a single number (drop FACET)", len(answer.Facets))
	case len(answer.Results) == 0:
		return 0, ErrNoValues
	case len(answer.Results) > 1 || len(answer.Results[0]) != 1:
		return 0, fmt.Errorf("the query returned %d results, it must return a single number (select one function)", max(len(answer.Results), len(answer.Results[0])))
	}
	for name, raw := range answer.Results[0] {
		var v *float64
		if err := json.Unmarshal(raw, &v); err != nil {
			return 0, fmt.Errorf("newrelic at %s: the result %s is %s, not a number", n.address, name, raw)
		}
		if v == nil {
			return 0, ErrNoValues
		}
		if math.IsNaN(*v) {
			return 0, ErrNaN
		}
		return *v, nil
	}
	return 0, ErrNoValues
}

// IsOnline runs a query that needs no data.
func (n *NewRelic) IsOnline(ctx context.Context) (bool, error) {
	if _, err := n.RunQuery(ctx, "SELECT count(*) FROM Transaction SINCE 1 minute ago"); err != nil && !errors.Is(err, ErrNoValues) {
		return false, err
	}
	return true, nil
}
