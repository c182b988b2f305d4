package metrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// datadogSeries is one series of Datadog's /api/v1/query answer, as the
// real API writes it.
func datadogSeries(scope, points string) string {
	return `{"unit":[{"family":"percentage","scale_factor":1.0,"name":"percent","short_name":"%","plural":"percent","id":17},null],` +
		`"query_index":0,"aggr":"sum","metric":"istio.mesh.request.count","tag_set":[],"expression":"sum:istio.mesh.request.count{` + scope + `}",` +
		`"scope":"` + scope + `","interval":20,"length":3,"start":1700000000000,"end":1700000059000,"pointlist":` + points + `,"display_name":"istio.mesh.request.count","attributes":{}}`
}

// datadogAnswer is a whole /api/v1/query answer with the given series.
func datadogAnswer(series ...string) string {
	return `{"status":"ok","res_type":"time_series","resp_version":1,"query":"q","message":"","from_date":1700000000000,"to_date":1700000060000,"group_by":[],"series":[` +
		strings.Join(series, ",") + `]}`
}

// fakeDatadog checks every request like Datadog would (path, parameters,
// keys) and answers with status and body.
type fakeDatadog struct {
	t      *testing.T
	status int
	header map[string]string
	body   string
}

func (f fakeDatadog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("DD-API-KEY") != "api-123" {
		f.t.Errorf("DD-API-KEY is %q", r.Header.Get("DD-API-KEY"))
	}
	switch r.URL.Path {
	case "/api/v1/validate": // checks the API key alone
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"valid":true}`))
		return
	case "/api/v1/query":
		if r.Header.Get("DD-APPLICATION-KEY") != "app-456" {
			f.t.Errorf("DD-APPLICATION-KEY is %q", r.Header.Get("DD-APPLICATION-KEY"))
		}
	default:
		f.t.Errorf("unexpected path %s", r.URL.Path)
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	from, errF := strconv.ParseInt(q.Get("from"), 10, 64)
	to, errT := strconv.ParseInt(q.Get("to"), 10, 64)
	if errF != nil || errT != nil || to-from != 1200 || q.Get("query") != "sum:istio.mesh.request.count{*}.as_count()" {
		f.t.Errorf("query parameters %v: want a 1200s window (ten 2m intervals) ending now and the query", q)
	}
	if d := time.Since(time.Unix(to, 0)); d < 0 || d > time.Minute {
		f.t.Errorf("to=%d is not now", to)
	}
	for k, v := range f.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	if f.status != 0 {
		w.WriteHeader(f.status)
	}
	_, _ = w.Write([]byte(f.body))
}

func TestDatadog_QueriesTheIntervalAndExplainsFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header map[string]string
		body   string
		want   float64
		err    []string
	}{
		{"last point", 0, nil, datadogAnswer(datadogSeries("*", `[[1700000000000.0,1.5],[1700000020000.0,2.5]]`)), 2.5, nil},
		{"last point that is not null", 0, nil, datadogAnswer(datadogSeries("*", `[[1700000000000.0,1.5],[1700000020000.0,3.25],[1700000040000.0,null]]`)), 3.25, nil},
		{"no series", 0, nil, datadogAnswer(), 0, []string{ErrNoValues.Error()}},
		{"only null points", 0, nil, datadogAnswer(datadogSeries("*", `[[1700000000000.0,null]]`)), 0, []string{ErrNoValues.Error()}},
		{"two series", 0, nil, datadogAnswer(datadogSeries("pod:a", `[[1,1]]`), datadogSeries("pod:b", `[[1,2]]`)), 0, []string{"returned 2 series", "pod:a; pod:b"}},
		{"query error in the answer", 0, nil, `{"status":"error","error":"Error parsing query: unable to parse sum:: Rule 'scope_expr' didn't match"}`, 0, []string{"the query failed", "Error parsing query"}},
		{"unauthorized", http.StatusUnauthorized, nil, `{"errors":["Unauthorized"]}`, 0, []string{"401 Unauthorized", "datadog_api_key"}},
		{"forbidden", http.StatusForbidden, nil, `{"errors":["Forbidden"]}`, 0, []string{"403 Forbidden: Forbidden", "datadog_application_key"}},
		{"rate limited", http.StatusTooManyRequests, map[string]string{"X-RateLimit-Reset": "17"}, `{"errors":["Rate limit of 1600 requests in 3600 seconds reached."]}`, 0, []string{"429 Too Many Requests", "Rate limit of 1600", "resets in 17s"}},
		{"server error", http.StatusInternalServerError, nil, `{"errors":["Internal Server Error"]}`, 0, []string{"500 Internal Server Error", "Datadog failed to answer"}},
		{"malformed JSON", 0, nil, `{"status":"ok","series":[{"pointlist":[[1,`, 0, []string{"not the JSON of a query result"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(fakeDatadog{t: t, status: tc.status, header: tc.header, body: tc.body})
			defer srv.Close()
			d, err := NewDatadog(ProviderConfig{
				Type: "datadog", Address: srv.URL + "/", Window: 2 * time.Minute,
				Credentials: map[string]string{"datadog_api_key": "api-123", "datadog_application_key": "app-456"},
			})
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.RunQuery(context.Background(), "sum:istio.mesh.request.count{*}.as_count()")
			if tc.err == nil {
				if err != nil || got != tc.want {
					t.Errorf("got %v, %v; want %v", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %v, want an error", got)
			}
			t.Log(err)
			for _, s := range tc.err {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if tc.err[0] == ErrNoValues.Error() && !errors.Is(err, ErrNoValues) {
				t.Errorf("error %v does not match ErrNoValues", err)
			}
		})
	}
}

func TestDatadog_ReadsFlaggersAndShortKeyNames(t *testing.T) {
	srv := httptest.NewServer(fakeDatadog{t: t})
	defer srv.Close()
	for _, tc := range []struct {
		name  string
		creds map[string]string
		err   string
	}{
		{"Flagger's keys", map[string]string{"datadog_api_key": "api-123", "datadog_application_key": "app-456"}, ""},
		{"short keys", map[string]string{"apiKey": "api-123", "applicationKey": "app-456"}, ""},
		{"no API key", map[string]string{"datadog_application_key": "app-456"}, "no datadog_api_key"},
		{"no application key", map[string]string{"datadog_api_key": "api-123"}, "no datadog_application_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDatadog(ProviderConfig{Address: srv.URL, Credentials: tc.creds})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("got %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := d.IsOnline(context.Background()); !ok || err != nil {
				t.Errorf("IsOnline: %v, %v", ok, err)
			}
		})
	}
}

func TestDatadog_DefaultsToTheUS1Site(t *testing.T) {
	d, err := NewDatadog(ProviderConfig{Credentials: map[string]string{"apiKey": "a", "applicationKey": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if d.address != DatadogDefaultAddress {
		t.Errorf("address %s, want %s", d.address, DatadogDefaultAddress)
	}
}
