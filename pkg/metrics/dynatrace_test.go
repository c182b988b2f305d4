package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// dynatraceSelector is a template query as Flagger's users write it.
const dynatraceSelector = `builtin:service.errors.total.rate:filter(eq("dt.entity.service","SERVICE-5B3ED7C6D8F8A3A1")):avg`

// dynatraceResult is one result of a /api/v2/metrics/query answer, for one
// metric, holding the given series.
func dynatraceResult(metric string, series ...string) string {
	return `{"metricId":"` + metric + `","dataPointCountRatio":0.0001,"dimensionCountRatio":0.001,"data":[` + strings.Join(series, ",") + `]}`
}

// dynatraceSeries is one series of a result with resolution=Inf.
func dynatraceSeries(dimension, value string) string {
	return `{"dimensions":["` + dimension + `"],"dimensionMap":{"dt.entity.service":"` + dimension + `"},"timestamps":[1700000600000],"values":[` + value + `]}`
}

// dynatraceAnswerOf is a whole answer with the given results.
func dynatraceAnswerOf(total int, results ...string) string {
	return `{"totalCount":` + strconv.Itoa(total) + `,"nextPageKey":null,"resolution":"Inf","result":[` + strings.Join(results, ",") + `]}`
}

func TestDynatrace_QueriesTenIntervalsAndReadsTheOneSeries(t *testing.T) {
	check := func(t *testing.T, r *http.Request) {
		q := r.URL.Query()
		from, errF := strconv.ParseInt(q.Get("from"), 10, 64)
		to, errT := strconv.ParseInt(q.Get("to"), 10, 64)
		if r.Method != http.MethodGet || r.URL.Path != "/e/abc123/api/v2/metrics/query" || q.Get("metricSelector") != dynatraceSelector ||
			q.Get("resolution") != "Inf" || errF != nil || errT != nil || to-from != (20*time.Minute).Milliseconds() {
			t.Errorf("request %s %s: want GET /e/abc123/api/v2/metrics/query, the selector, resolution=Inf and 20 minutes in milliseconds", r.Method, r.URL)
		}
		if d := time.Since(time.UnixMilli(to)); d < 0 || d > time.Minute {
			t.Errorf("to=%d is not now", to)
		}
		if got := r.Header.Get("Authorization"); got != "Api-Token dt0c01.SAMPLE.TOKEN" {
			t.Errorf("Authorization %q", got)
		}
	}
	const service = "builtin:service.errors.total.rate:filter(eq(dt.entity.service,SERVICE-5B3ED7C6D8F8A3A1)):avg"
	cases := []httpCase{
		{"one series", 0, dynatraceAnswerOf(1, dynatraceResult(service, dynatraceSeries("SERVICE-5B3ED7C6D8F8A3A1", "0.25"))), 0.25, nil},
		{"a null value", 0, dynatraceAnswerOf(1, dynatraceResult(service, dynatraceSeries("SERVICE-5B3ED7C6D8F8A3A1", "null"))), 0,
			[]string{ErrNoValues.Error(), "only null values", "SERVICE-5B3ED7C6D8F8A3A1"}},
		{"no series", 0, dynatraceAnswerOf(0, dynatraceResult(service)), 0, []string{ErrNoValues.Error(), "no series over the last 20m0s"}},
		{"no result", 0, `{"totalCount":0,"nextPageKey":null,"result":[],"warnings":["The metric selector matched no metric"]}`, 0,
			[]string{ErrNoValues.Error(), "matched no metric"}},
		{"two series", 0, dynatraceAnswerOf(2, dynatraceResult(service, dynatraceSeries("SERVICE-A", "1"), dynatraceSeries("SERVICE-B", "2"))), 0,
			[]string{"returned 2 series", "splitBy", "{SERVICE-A}", "{SERVICE-B}"}},
		{"two metrics", 0, dynatraceAnswerOf(2, dynatraceResult("a", dynatraceSeries("S", "1")), dynatraceResult("b", dynatraceSeries("S", "2"))), 0,
			[]string{"returned 2 series", "a{S}, b{S}"}},
		{"more series than the page", 0, dynatraceAnswerOf(250, dynatraceResult(service, dynatraceSeries("SERVICE-A", "1"))), 0, []string{"returned 250 series"}},
		{"bad selector", http.StatusBadRequest,
			`{"error":{"code":400,"message":"Constraints violated.","constraintViolations":[{"path":"metricSelector","message":"Unknown metric key","parameterLocation":"QUERY"}]}}`,
			0, []string{"400 Bad Request", "Unknown metric key"}},
		{"unauthorized", http.StatusUnauthorized, `{"error":{"code":401,"message":"Token Authentication failed"}}`, 0,
			[]string{"401 Unauthorized", "Token Authentication failed", "credentials"}},
		{"missing scope", http.StatusForbidden, `{"error":{"code":403,"message":"Token is missing required scope. Use one of: metrics.read (Read metrics)"}}`, 0,
			[]string{"403 Forbidden", "metrics.read"}},
		{"rate limited", http.StatusTooManyRequests, `{"error":{"code":429,"message":"Too Many Requests"}}`, 0, []string{"429", "rate limiting"}},
		{"server error", http.StatusServiceUnavailable, `maintenance`, 0, []string{"503 Service Unavailable", "maintenance"}},
		{"malformed JSON", 0, `{"result":[{"metricId":`, 0, []string{"not a metrics query result"}},
	}
	newP := func(address string) (Provider, error) {
		return NewDynatrace(ProviderConfig{Address: address + "/e/abc123/", Window: 2 * time.Minute, Credentials: map[string]string{"dynatrace_token": "dt0c01.SAMPLE.TOKEN"}})
	}
	runHTTPCases(t, cases, check, newP, "\n  "+dynatraceSelector+"\n")
}

func TestDynatrace_IsOnlineListsOneMetric(t *testing.T) {
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/metrics" || r.URL.Query().Get("pageSize") != "1" || r.Header.Get("Authorization") != "Api-Token tok" {
			t.Errorf("request %s, Authorization %q", r.URL, r.Header.Get("Authorization"))
		}
		if down.Load() {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"code":401,"message":"Token Authentication failed"}}`)
			return
		}
		_, _ = io.WriteString(w, `{"totalCount":2890,"nextPageKey":"AQAAABQBAAAABQ==","metrics":[{"metricId":"builtin:apps.other.apdex.osAndGeo"}]}`)
	}))
	defer srv.Close()
	p, err := newProvider(ProviderConfig{Type: "dynatrace", Address: srv.URL, Credentials: map[string]string{"dynatrace_token": "tok"}})
	if err != nil {
		t.Fatal(err)
	}
	if KindOf(p) != "dynatrace" {
		t.Errorf("kind %s", KindOf(p))
	}
	if ok, err := p.IsOnline(context.Background()); !ok || err != nil {
		t.Errorf("IsOnline: %v, %v; want true", ok, err)
	}
	down.Store(true)
	if ok, err := p.IsOnline(context.Background()); ok || err == nil || !strings.Contains(err.Error(), "401 Unauthorized") {
		t.Errorf("IsOnline with a revoked token: %v, %v; want false and the 401", ok, err)
	}
}

func TestDynatrace_RefusesMissingSettingsAndEmptyQueries(t *testing.T) {
	if _, err := NewDynatrace(ProviderConfig{Credentials: map[string]string{"dynatrace_token": "t"}}); err == nil || !strings.Contains(err.Error(), "dynatrace: no address") {
		t.Errorf("without address: %v", err)
	}
	if _, err := NewDynatrace(ProviderConfig{Address: "https://abc.live.dynatrace.com"}); err == nil || !strings.Contains(err.Error(), "no dynatrace_token") {
		t.Errorf("without token: %v", err)
	}
	p, err := NewDynatrace(ProviderConfig{Address: "http://dynatrace.invalid", Credentials: map[string]string{"dynatrace_token": "t"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.RunQuery(context.Background(), " \n "); err == nil || !strings.Contains(err.Error(), "the query is empty") {
		t.Errorf("empty query: %v", err)
	}
}
