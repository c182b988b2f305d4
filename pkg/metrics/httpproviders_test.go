package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// httpCase is one answer of a fake backend and what RunQuery must make
// of it.
type httpCase struct {
	name   string
	status int
	body   string
	want   float64
	err    []string
}

// runHTTPCases serves each case from a fake backend that first checks the
// request with check, then runs query through the provider built for the
// fake's URL.
func runHTTPCases(t *testing.T, cases []httpCase, check func(*testing.T, *http.Request), newP func(address string) (Provider, error), query string) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				check(t, r)
				if tc.status != 0 {
					w.WriteHeader(tc.status)
				}
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			p, err := newP(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.RunQuery(context.Background(), query)
			checkQuery(t, got, err, tc.want, tc.err)
		})
	}
}

func TestGraphite_RendersTheTargetOverTheInterval(t *testing.T) {
	check := func(t *testing.T, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/render" || q.Get("format") != "json" || q.Get("from") != "-120s" ||
			q.Get("target") != "summarize(asPercent(sumSeries(app.podinfo.*.ok),sumSeries(app.podinfo.*.all)),'2 min','avg')" {
			t.Errorf("request %s", r.URL)
		}
		if u, p, ok := r.BasicAuth(); !ok || u != "graphite" || p != "pw" {
			t.Errorf("basic auth %q %q %v", u, p, ok)
		}
	}
	series := func(points string) string {
		return `{"target":"summarize(...)","tags":{"name":"summarize(...)"},"datapoints":` + points + `}`
	}
	cases := []httpCase{
		{"last point that is not null", 0, `[` + series(`[[97.5,1700000000],[98.25,1700000060],[null,1700000120]]`) + `]`, 98.25, nil},
		{"no series", 0, `[]`, 0, []string{ErrNoValues.Error()}},
		{"only nulls", 0, `[` + series(`[[null,1700000000]]`) + `]`, 0, []string{ErrNoValues.Error()}},
		{"two series", 0, `[` + series(`[[1,1]]`) + `,` + series(`[[2,1]]`) + `]`, 0, []string{"returned 2 series", "sumSeries"}},
		{"unauthorized", http.StatusUnauthorized, `Unauthorized`, 0, []string{"401 Unauthorized", "credentials"}},
		{"server error", http.StatusInternalServerError, `<html>Traceback: ValueError</html>`, 0, []string{"500 Internal Server Error", "ValueError"}},
		{"malformed JSON", 0, `[{"target":`, 0, []string{"not a render result"}},
	}
	newP := func(address string) (Provider, error) {
		return NewGraphite(ProviderConfig{Address: address, Window: 2 * time.Minute, Credentials: map[string]string{"username": "graphite", "password": "pw"}})
	}
	query := "target=summarize(\n  asPercent(\n    sumSeries(app.podinfo.*.ok),\n    sumSeries(app.podinfo.*.all)\n  ),\n  '2 min',\n  'avg'\n)"
	runHTTPCases(t, cases, check, newP, query)
}

func TestGraphite_RefusesQueriesWithoutTarget(t *testing.T) {
	g, err := NewGraphite(ProviderConfig{Address: "http://graphite.invalid"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.RunQuery(context.Background(), "sumSeries(a.*)"); err == nil || !strings.Contains(err.Error(), "target=") {
		t.Errorf("got %v, want an error asking for target=", err)
	}
}

func TestInfluxDB_RunsFluxAndReadsOneTable(t *testing.T) {
	const flux = `from(bucket: "default") |> range(start: -1m) |> count()`
	check := func(t *testing.T, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/api/v2/query" || r.URL.Query().Get("org") != "acme" || string(body) != flux ||
			r.Header.Get("Content-Type") != "application/vnd.flux" || r.Header.Get("Authorization") != "Token influx-token" {
			t.Errorf("request %s %s %q headers %v", r.Method, r.URL, body, r.Header)
		}
	}
	const header = ",result,table,_start,_stop,_time,_value,_field,_measurement\r\n"
	row := func(table, value string) string {
		return ",_result," + table + ",2026-01-01T00:00:00Z,2026-01-01T00:01:00Z,2026-01-01T00:01:00Z," + value + ",count,istio_requests_total\r\n"
	}
	annotations := "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string\r\n#group,false,false,true,true,false,false,true,true\r\n#default,_result,,,,,,,\r\n"
	cases := []httpCase{
		{"one table", 0, header + row("0", "41") + row("0", "42.5") + "\r\n", 42.5, nil},
		{"annotated", 0, annotations + header + row("0", "7") + "\r\n", 7, nil},
		{"no rows", 0, "\r\n", 0, []string{ErrNoValues.Error()}},
		{"two tables", 0, header + row("0", "1") + row("1", "2") + "\r\n", 0, []string{"returned 2 tables"}},
		{"two tables in blocks", 0, header + row("0", "1") + "\r\n" + header + row("1", "2") + "\r\n", 0, []string{"returned 2 tables"}},
		{"error table", 0, ",error,reference\r\n,failed to read from bucket,\r\n", 0, []string{"the query failed: failed to read from bucket"}},
		{"bad query", http.StatusBadRequest, `{"code":"invalid","message":"compilation failed: undefined identifier fro"}`, 0, []string{"400 Bad Request", "undefined identifier fro"}},
		{"unauthorized", http.StatusUnauthorized, `{"code":"unauthorized","message":"unauthorized access"}`, 0, []string{"401 Unauthorized", "credentials"}},
		{"rate limited", http.StatusTooManyRequests, `{"code":"too many requests"}`, 0, []string{"429", "rate limiting"}},
		{"server error", http.StatusServiceUnavailable, `{"code":"unavailable"}`, 0, []string{"503 Service Unavailable"}},
		{"not CSV", 0, ",result,table,_value\r\n,_result,0,\"4", 0, []string{"not CSV"}},
	}
	newP := func(address string) (Provider, error) {
		return NewInfluxDB(ProviderConfig{Address: address, Credentials: map[string]string{"token": "influx-token", "org": "acme"}})
	}
	runHTTPCases(t, cases, check, newP, flux)
}

func TestNewRelic_RunsNRQLOverTheInterval(t *testing.T) {
	check := func(t *testing.T, r *http.Request) {
		if r.URL.Path != "/v1/accounts/12345/query" || r.Header.Get("X-Query-Key") != "nr-key" ||
			r.URL.Query().Get("nrql") != "SELECT percentage(count(*), WHERE error IS false) FROM Transaction WHERE appName = 'podinfo' SINCE 600 seconds ago" {
			t.Errorf("request %s headers %v", r.URL, r.Header)
		}
	}
	cases := []httpCase{
		{"one number", 0, `{"results":[{"result":99.25}],"performanceStats":{"inspectedCount":120},"metadata":{"eventTypes":["Transaction"]}}`, 99.25, nil},
		{"a named function", 0, `{"results":[{"percentage":97}]}`, 97, nil},
		{"no results", 0, `{"results":[]}`, 0, []string{ErrNoValues.Error()}},
		{"null", 0, `{"results":[{"average":null}]}`, 0, []string{ErrNoValues.Error()}},
		{"two functions", 0, `{"results":[{"average":1},{"max":2}]}`, 0, []string{"returned 2 results"}},
		{"facets", 0, `{"facets":[{"name":"a","results":[{"count":1}]},{"name":"b","results":[{"count":2}]}]}`, 0, []string{"2 facets"}},
		{"query error", http.StatusBadRequest, `{"error":"NRQL Syntax Error: Error at line 1 position 8"}`, 0, []string{"400 Bad Request", "NRQL Syntax Error"}},
		{"unauthorized", http.StatusUnauthorized, `{"error":"Invalid query key"}`, 0, []string{"401 Unauthorized", "Invalid query key", "credentials"}},
		{"rate limited", http.StatusTooManyRequests, `{"error":"Too many requests"}`, 0, []string{"429", "rate limiting"}},
		{"server error", http.StatusInternalServerError, `oops`, 0, []string{"500 Internal Server Error"}},
		{"malformed JSON", 0, `{"results":[{"result":`, 0, []string{"not a query result"}},
	}
	newP := func(address string) (Provider, error) {
		return NewNewRelic(ProviderConfig{Address: address, Credentials: map[string]string{"newrelic_account_id": "12345", "newrelic_query_key": "nr-key"}})
	}
	runHTTPCases(t, cases, check, newP, "SELECT percentage(count(*), WHERE error IS false)\n  FROM Transaction\n  WHERE appName = 'podinfo'")
}

func TestHTTPProviders_RefuseMissingSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		newP func() error
		err  string
	}{
		{"graphite without address", func() error { _, err := NewGraphite(ProviderConfig{}); return err }, "no address"},
		{"influxdb without address", func() error { _, err := NewInfluxDB(ProviderConfig{}); return err }, "no address"},
		{"influxdb without org", func() error {
			_, err := NewInfluxDB(ProviderConfig{Address: "http://i", Credentials: map[string]string{"token": "t"}})
			return err
		}, "no org"},
		{"newrelic without account", func() error {
			_, err := NewNewRelic(ProviderConfig{Credentials: map[string]string{"newrelic_query_key": "k"}})
			return err
		}, "no newrelic_account_id"},
		{"newrelic without key", func() error {
			_, err := NewNewRelic(ProviderConfig{Credentials: map[string]string{"newrelic_account_id": "1"}})
			return err
		}, "no newrelic_query_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.newP(); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("got %v, want an error containing %q", err, tc.err)
			}
		})
	}
}

func TestHTTPProviders_IsOnlineAsksACheapEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		body       string
		newP       func(address string) (Provider, error)
	}{
		{"graphite", "/version", "1.1.10", func(a string) (Provider, error) { return NewGraphite(ProviderConfig{Address: a}) }},
		{"influxdb", "/health", `{"name":"influxdb","status":"pass"}`, func(a string) (Provider, error) {
			return NewInfluxDB(ProviderConfig{Address: a, Credentials: map[string]string{"org": "o"}})
		}},
		{"newrelic", "/v1/accounts/1/query", `{"results":[{"count":0}]}`, func(a string) (Provider, error) {
			return NewNewRelic(ProviderConfig{Address: a, Credentials: map[string]string{"newrelic_account_id": "1", "newrelic_query_key": "k"}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var down atomic.Bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != tc.path {
					t.Errorf("path %s, want %s", r.URL.Path, tc.path)
				}
				if down.Load() {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			p, err := tc.newP(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := p.IsOnline(context.Background()); !ok || err != nil {
				t.Errorf("IsOnline: %v, %v; want true", ok, err)
			}
			down.Store(true)
			if ok, err := p.IsOnline(context.Background()); ok || err == nil {
				t.Errorf("IsOnline of a failing backend: %v, %v; want false and an error", ok, err)
			}
		})
	}
}

// checkQuery checks the outcome of RunQuery: the value want when wantErr
// is empty, else an error containing each of wantErr, which matches
// ErrNoValues exactly when wantErr[0] is the text of ErrNoValues or ErrNaN.
func checkQuery(t *testing.T, got float64, err error, want float64, wantErr []string) {
	t.Helper()
	if len(wantErr) == 0 {
		if err != nil || got != want {
			t.Errorf("got %v, %v; want %v", got, err, want)
		}
		return
	}
	if err == nil {
		t.Fatalf("got %v, want an error", got)
	}
	for _, s := range wantErr {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
	if noData := wantErr[0] == ErrNoValues.Error() || wantErr[0] == ErrNaN.Error(); noData != errors.Is(err, ErrNoValues) {
		t.Errorf("error %v: errors.Is(err, ErrNoValues) = %t, want %t", err, !noData, noData)
	}
}
