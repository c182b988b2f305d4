package metrics

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// InfluxDB runs Flux queries through the InfluxDB v2 HTTP API
// (/api/v2/query) and reads the CSV answer. The query must return one
// table; its last row's _value is the result.
//
// Secret keys: token (sent as "Authorization: Token <token>") and org.
type InfluxDB struct {
	address string
	org     string
	client  *http.Client
}

// NewInfluxDB returns an InfluxDB provider for cfg. The address and the
// org are required.
func NewInfluxDB(cfg ProviderConfig) (*InfluxDB, error) {
	if cfg.Address == "" {
		return nil, errors.New("influxdb: no address: set the MetricTemplate's provider.address")
	}
	org, ok := cfg.credential("org")
	if !ok {
		return nil, errors.New("influxdb: the secret has no org")
	}
	var auth func(http.Header)
	if token, ok := cfg.credential("token"); ok {
		auth = func(h http.Header) { h.Set("Authorization", "Token "+token) }
	}
	return &InfluxDB{address: strings.TrimSuffix(cfg.Address, "/"), org: org, client: newHTTPClient(cfg, cfg.Address, auth)}, nil
}

// RunQuery runs the Flux query. No rows is ErrNoValues; rows from more
// than one table is an error that says how many.
func (f *InfluxDB) RunQuery(ctx context.Context, query string) (float64, error) {
	u := f.address + "/api/v2/query?" + url.Values{"org": {f.org}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(query))
	if err != nil {
		return 0, fmt.Errorf("influxdb: %w", err)
	}
	req.Header.Set("Content-Type", "application/vnd.flux")
	req.Header.Set("Accept", "application/csv")
	body, err := callAPI(f.client, req, "influxdb")
	if err != nil {
		return 0, err
	}
	tables, last, err := fluxValues(body)
	if err != nil {
		return 0, fmt.Errorf("influxdb at %s: %w", f.address, err)
	}
	switch {
	case tables == 0:
		return 0, ErrNoValues
	case tables > 1:
		return 0, fmt.Errorf("the query returned %d tables, it must return exactly one (group() them, or filter more)", tables)
	}
	v, err := strconv.ParseFloat(last, 64)
	if err != nil {
		return 0, fmt.Errorf("influxdb at %s: the _value %q is not a number", f.address, last)
	}
	if math.IsNaN(v) {
		return 0, ErrNaN
	}
	return v, nil
}

// IsOnline checks /health.
func (f *InfluxDB) IsOnline(ctx context.Context) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.address+"/health", nil)
	if err != nil {
		return false, fmt.Errorf("influxdb: %w", err)
	}
	if _, err := callAPI(f.client, req, "influxdb"); err != nil {
		return false, err
	}
	return true, nil
}

// fluxValues reads an InfluxDB CSV answer: it counts the distinct tables
// (result and table columns) that have rows and returns the _value of the
// last row. Blocks separated by a blank line each start with annotation
// rows (#...), which are skipped, and a header row.
func fluxValues(body []byte) (int, string, error) {
	tables := map[string]bool{}
	last := ""
	text := strings.ReplaceAll(string(body), "\r\n", "\n")
	for _, block := range strings.Split(text, "\n\n") {
		r := csv.NewReader(strings.NewReader(block))
		r.FieldsPerRecord = -1
		r.Comment = '#'
		rows, err := r.ReadAll()
		if err != nil {
			return 0, "", fmt.Errorf("the answer is not CSV: %w", err)
		}
		if len(rows) == 0 {
			continue
		}
		col := map[string]int{}
		for i, name := range rows[0] {
			col[name] = i
		}
		cell := func(row []string, name string) string {
			if i, ok := col[name]; ok && i < len(row) {
				return row[i]
			}
			return ""
		}
		for _, row := range rows[1:] {
			if msg := cell(row, "error"); msg != "" {
				return 0, "", fmt.Errorf("the query failed: %s", msg)
			}
			if _, ok := col["_value"]; !ok {
				return 0, "", fmt.Errorf("the answer has no _value column (columns %s)", strings.Join(rows[0], ", "))
			}
			tables[cell(row, "result")+"/"+cell(row, "table")] = true
			last = cell(row, "_value")
		}
	}
	return len(tables), last, nil
}
