package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Dynatrace runs metric selectors through the Dynatrace Metrics API v2
// (GET /api/v2/metrics/query) with resolution=Inf, so that each series
// folds into one data point, over a range that ends now and starts ten
// metric intervals earlier (from and to in milliseconds), as in Flagger.
// The selector must yield exactly one series; its value is the result.
//
// The provider's address is required: the environment's URL, such as
// https://<environment-id>.live.dynatrace.com, or an ActiveGate's
// https://<host>:9999/e/<environment-id>.
//
// Secret keys: dynatrace_token, an access token with the metrics.read
// scope, sent as "Authorization: Api-Token <token>", as in Flagger.
type Dynatrace struct {
	address  string
	lookback time.Duration
	client   *http.Client
	now      func() time.Time
}

// NewDynatrace returns a Dynatrace provider for cfg. The address and the
// token are required.
func NewDynatrace(cfg ProviderConfig) (*Dynatrace, error) {
	if cfg.Address == "" {
		return nil, errors.New("dynatrace: no address: set the MetricTemplate's provider.address to the environment's URL (https://<environment-id>.live.dynatrace.com)")
	}
	token, ok := cfg.credential("dynatrace_token")
	if !ok || token == "" {
		return nil, errors.New("dynatrace: the secret has no dynatrace_token")
	}
	window := cfg.Window
	if window <= 0 {
		window = time.Minute
	}
	auth := func(h http.Header) { h.Set("Authorization", "Api-Token "+token) }
	return &Dynatrace{
		address:  strings.TrimSuffix(cfg.Address, "/"),
		lookback: lookbackIntervals * window,
		client:   newHTTPClient(cfg, cfg.Address, auth),
		now:      time.Now,
	}, nil
}

// dynatraceAnswer is the part of a metrics query answer Sluice reads.
type dynatraceAnswer struct {
	TotalCount int `json:"totalCount"`
	Result     []struct {
		MetricID string   `json:"metricId"`
		Warnings []string `json:"warnings"`
		Data     []struct {
			Dimensions []string   `json:"dimensions"`
			Values     []*float64 `json:"values"`
		} `json:"data"`
	} `json:"result"`
	Warnings []string `json:"warnings"`
}

// RunQuery runs the metric selector and returns the value of the single
// series it must yield. No series, or only null values, is ErrNoValues;
// several series are an error naming them.
func (d *Dynatrace) RunQuery(ctx context.Context, query string) (float64, error) {
	selector := strings.TrimSpace(query)
	if selector == "" {
		return 0, errors.New("dynatrace: the query is empty; it must be a metric selector such as builtin:service.errors.total.rate:avg")
	}
	to := d.now()
	from := to.Add(-d.lookback)
	params := url.Values{
		"metricSelector": {selector},
		"resolution":     {"Inf"},
		"from":           {strconv.FormatInt(from.UnixMilli(), 10)},
		"to":             {strconv.FormatInt(to.UnixMilli(), 10)},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.address+"/api/v2/metrics/query?"+params.Encode(), nil)
	if err != nil {
		return 0, fmt.Errorf("dynatrace: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	body, err := callAPI(d.client, req, "dynatrace")
	if err != nil {
		return 0, err
	}
	var answer dynatraceAnswer
	if err := json.Unmarshal(body, &answer); err != nil {
		return 0, fmt.Errorf("dynatrace at %s: the answer is not a metrics query result: %w", d.address, err)
	}

	var series []string
	var values []*float64
	warnings := answer.Warnings
	for _, r := range answer.Result {
		warnings = append(warnings, r.Warnings...)
		for _, s := range r.Data {
			name := r.MetricID
			if len(s.Dimensions) > 0 {
				name += "{" + strings.Join(s.Dimensions, ",") + "}"
			}
			series = append(series, name)
			values = s.Values
		}
	}
	var notes string
	if len(warnings) > 0 {
		notes = " (" + strings.Join(warnings, "; ") + ")"
	}
	switch n := max(len(series), answer.TotalCount); {
	case n > 1:
		shown := series
		if len(shown) > 5 {
			shown = append(shown[:5:5], "...")
		}
		return 0, fmt.Errorf("the query returned %d series, it must return exactly one (drop splitBy dimensions, or fold them with :splitBy()): %s",
			n, strings.Join(shown, ", "))
	case len(series) == 0:
		return 0, fmt.Errorf("%w: dynatrace returned no series over the last %s%s", ErrNoValues, d.lookback, notes)
	}
	for i := len(values) - 1; i >= 0; i-- {
		if values[i] != nil {
			return *values[i], nil
		}
	}
	return 0, fmt.Errorf("%w: dynatrace returned only null values for %s over the last %s%s", ErrNoValues, series[0], d.lookback, notes)
}

// IsOnline lists one metric descriptor, which needs the same token and
// scope as the queries.
func (d *Dynatrace) IsOnline(ctx context.Context) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.address+"/api/v2/metrics?pageSize=1", nil)
	if err != nil {
		return false, fmt.Errorf("dynatrace: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if _, err := callAPI(d.client, req, "dynatrace"); err != nil {
		return false, err
	}
	return true, nil
}
