package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Graphite runs render queries through Graphite's render API
// (/render?format=json). The query is render parameters, for example
// target=sumSeries(app.requests.*); white space outside quotes is dropped,
// so templates may span lines. Without a from parameter the query looks
// back over the metric's interval.
//
// Secret keys: username and password (basic auth), or token (bearer).
type Graphite struct {
	address string
	window  time.Duration
	client  *http.Client
}

// NewGraphite returns a Graphite provider for cfg. The address is required.
func NewGraphite(cfg ProviderConfig) (*Graphite, error) {
	if cfg.Address == "" {
		return nil, errors.New("graphite: no address: set the MetricTemplate's provider.address")
	}
	auth, err := bearerOrBasic(cfg)
	if err != nil {
		return nil, fmt.Errorf("graphite: %w", err)
	}
	window := cfg.Window
	if window <= 0 {
		window = time.Minute
	}
	return &Graphite{address: strings.TrimSuffix(cfg.Address, "/"), window: window, client: newHTTPClient(cfg, cfg.Address, auth)}, nil
}

// graphiteSeries is one series of a render answer.
type graphiteSeries struct {
	Target     string          `json:"target"`
	Datapoints [][]json.Number `json:"datapoints"`
}

// RunQuery renders the query and returns the last non-null point of the
// single series it must return.
func (g *Graphite) RunQuery(ctx context.Context, query string) (float64, error) {
	params, err := graphiteParams(query)
	if err != nil {
		return 0, err
	}
	if params.Get("from") == "" {
		params.Set("from", "-"+strconv.Itoa(int(g.window.Seconds()))+"s")
	}
	params.Set("format", "json")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.address+"/render?"+params.Encode(), nil)
	if err != nil {
		return 0, fmt.Errorf("graphite: %w", err)
	}
	body, err := callAPI(g.client, req, "graphite")
	if err != nil {
		return 0, err
	}
	var series []graphiteSeries
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&series); err != nil {
		return 0, fmt.Errorf("graphite at %s: the answer is not a render result: %w", g.address, err)
	}
	switch len(series) {
	case 0:
		return 0, ErrNoValues
	case 1:
	default:
		names := make([]string, 0, len(series))
		for _, s := range series {
			names = append(names, s.Target)
		}
		return 0, fmt.Errorf("the query returned %d series, it must return exactly one (combine them, for example with sumSeries()): %s", len(series), strings.Join(names, ", "))
	}
	points := series[0].Datapoints
	for i := len(points) - 1; i >= 0; i-- {
		if len(points[i]) == 0 || points[i][0] == "" {
			continue // a null value
		}
		v, err := points[i][0].Float64()
		if err != nil {
			return 0, fmt.Errorf("graphite at %s: the value %q is not a number", g.address, points[i][0])
		}
		if math.IsNaN(v) {
			return 0, ErrNaN
		}
		return v, nil
	}
	return 0, ErrNoValues
}

// IsOnline asks Graphite for its version.
func (g *Graphite) IsOnline(ctx context.Context) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.address+"/version", nil)
	if err != nil {
		return false, fmt.Errorf("graphite: %w", err)
	}
	if _, err := callAPI(g.client, req, "graphite"); err != nil {
		return false, err
	}
	return true, nil
}

// graphiteParams parses render parameters (name=value joined by &) after
// dropping the white space outside quotes. Values are taken as written,
// not URL-decoded, so that a target may contain + or %.
func graphiteParams(query string) (url.Values, error) {
	var b strings.Builder
	var quote rune
	for _, r := range query {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case unicode.IsSpace(r):
			continue
		}
		b.WriteRune(r)
	}
	params := url.Values{}
	for _, part := range strings.Split(b.String(), "&") {
		if part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("graphite: %q is not a render parameter (name=value, such as target=sumSeries(a.*))", part)
		}
		params.Add(name, value)
	}
	if params.Get("target") == "" {
		return nil, errors.New("graphite: the query has no target=... parameter")
	}
	return params, nil
}
