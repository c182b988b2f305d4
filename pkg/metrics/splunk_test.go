package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

const testSFToken = "sf-access-token"

// sse formats server-sent events: pairs of event type and JSON data, the
// data split over several data: lines as SignalFlow indents it.
func sse(events ...[2]string) string {
	var b strings.Builder
	for _, e := range events {
		b.WriteString("event: " + e[0] + "\n")
		for _, line := range strings.Split(e[1], "\n") {
			b.WriteString("data: " + line + "\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// signalFlowRun is the stream of one computation: the start messages, the
// given messages and the end of the channel.
func signalFlowRun(messages ...[2]string) string {
	events := [][2]string{
		{"control-message", "{\n  \"event\" : \"STREAM_START\",\n  \"timestampMs\" : 1700000000000\n}"},
		{"control-message", `{"event":"JOB_START","handle":"FxYz0AAAAAA","timestampMs":1700000000010}`},
		{"message", `{"logicalTimestampMs":1700000000000,"message":{"messageCode":"JOB_RUNNING_RESOLUTION","messageLevel":"INFO","contents":{"resolutionMs":60000}},"timestampMs":1700000000020}`},
	}
	events = append(events, messages...)
	events = append(events, [2]string{"control-message", `{"event":"END_OF_CHANNEL","timestampMs":1700000000900}`})
	return sse(events...)
}

// sfData is a data message of points (tsId, value JSON).
func sfData(ts int64, points ...[2]string) [2]string {
	parts := make([]string, len(points))
	for i, p := range points {
		parts[i] = `{"tsId":"` + p[0] + `","value":` + p[1] + `}`
	}
	return [2]string{"data", `{"data":[` + strings.Join(parts, ",") + `],"logicalTimestampMs":` + strconv.FormatInt(ts, 10) + `,"maxDelayMs":0}`}
}

// sfMetadata describes a time series.
func sfMetadata(tsID, host string) [2]string {
	return [2]string{"metadata", `{"properties":{"sf_metric":"demo.trans.latency","sf_originatingMetric":"demo.trans.latency","demo_host":"` + host +
		`","sf_key":["demo_host","sf_originatingMetric"],"sf_type":"MetricTimeSeries","sf_isPreQuantized":true},"tsId":"` + tsID + `"}`}
}

const sfProgram = "data('demo.trans.latency', filter=filter('demo_host', 'server1')).mean().publish()"

func TestSplunk_ExecutesTheProgramAndReadsTheNewestPoint(t *testing.T) {
	check := func(t *testing.T, r *http.Request) {
		q := r.URL.Query()
		start, _ := strconv.ParseInt(q.Get("start"), 10, 64)
		stop, _ := strconv.ParseInt(q.Get("stop"), 10, 64)
		if r.Method != http.MethodPost || r.URL.Path != "/v2/signalflow/execute" || q.Get("immediate") != "true" ||
			stop-start != (20*time.Minute).Milliseconds() || time.Since(time.UnixMilli(stop)).Abs() > time.Minute {
			t.Errorf("request %s %s: want a POST to /v2/signalflow/execute over the last 20 minutes, immediate", r.Method, r.URL)
		}
		if r.Header.Get(splunkTokenHeader) != testSFToken || r.Header.Get("Content-Type") != "text/plain" {
			t.Errorf("X-SF-Token %q, Content-Type %q", r.Header.Get(splunkTokenHeader), r.Header.Get("Content-Type"))
		}
		if body, _ := io.ReadAll(r.Body); string(body) != sfProgram {
			t.Errorf("program %q, want %q", body, sfProgram)
		}
	}
	cases := []httpCase{
		{"the newest point of the one series", 0, signalFlowRun(sfMetadata("AAAAAKqY1Q0", "server1"),
			sfData(1700000000000, [2]string{"AAAAAKqY1Q0", "12.5"}), sfData(1700000060000, [2]string{"AAAAAKqY1Q0", "14.25"})), 14.25, nil},
		{"an integer", 0, signalFlowRun(sfData(1700000000000, [2]string{"AAAAAKqY1Q0", "42"})), 42, nil},
		{"null points are skipped", 0, signalFlowRun(sfData(1700000000000, [2]string{"AAAAAKqY1Q0", "3"}), sfData(1700000060000, [2]string{"AAAAAKqY1Q0", "null"})), 3, nil},
		{"keep-alive comments", 0, ": keep-alive\n\n" + signalFlowRun(sfData(1, [2]string{"A", "1.5"})), 1.5, nil},
		{"no points", 0, signalFlowRun(), 0, []string{ErrNoValues.Error(), "published no data point", "JOB_RUNNING_RESOLUTION"}},
		{"only nulls", 0, signalFlowRun(sfData(1, [2]string{"A", "null"})), 0, []string{ErrNoValues.Error()}},
		{"two time series", 0, signalFlowRun(sfMetadata("AAAAAKqY1Q0", "server1"), sfMetadata("AAAAAHRtX1g", "server2"),
			sfData(1, [2]string{"AAAAAKqY1Q0", "1"}, [2]string{"AAAAAHRtX1g", "2"})), 0,
			[]string{"returned 2 time series", ".sum()", "demo_host=server1", "demo_host=server2"}},
		{"a program error", 0, sse([2]string{"error", `{"errors":[{"code":"ANALYTICS_PROGRAM_NAME_ERROR","context":{"column":1,"line":1,"identifier":"dta"}}]}`}), 0,
			[]string{"the program failed", "ANALYTICS_PROGRAM_NAME_ERROR", "dta"}},
		{"an aborted computation", 0, sse([2]string{"control-message", `{"event":"CHANNEL_ABORT","abortInfo":{"sf_job_abortState":"FAILED","sf_job_abortReason":"too many time series"}}`}), 0,
			[]string{"aborted", "too many time series"}},
		{"a data message that is not JSON", 0, signalFlowRun([2]string{"data", `{"data":[{"tsId":`}), 0, []string{"not JSON of the SignalFlow stream"}},
		{"a value that is not a number", 0, signalFlowRun(sfData(1, [2]string{"A", `"lots"`})), 0, []string{`the value "lots" is not a number`}},
		{"a bad token", http.StatusUnauthorized, `{"code":401,"message":"Unauthorized: invalid token","errorType":"UNAUTHORIZED"}`, 0,
			[]string{"401 Unauthorized", "UNAUTHORIZED: Unauthorized: invalid token", "check the credentials"}},
		{"an error page", http.StatusBadGateway, `<html>bad gateway</html>`, 0, []string{"splunk at http://127.0.0.1", "502 Bad Gateway"}},
	}
	newP := func(address string) (Provider, error) {
		return NewSplunk(ProviderConfig{Type: "splunk", Address: address, Window: 2 * time.Minute, Credentials: map[string]string{"sf_token_key": testSFToken}})
	}
	runHTTPCases(t, cases, check, newP, "\n"+sfProgram+"\n")
}

func TestSplunk_IsOnlineListsOneMetricOnTheAPIHost(t *testing.T) {
	var denied bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/v2/metric" || r.URL.Query().Get("limit") != "1" || r.Header.Get(splunkTokenHeader) != testSFToken {
			t.Errorf("request %s %s, X-SF-Token %q", r.Method, r.URL, r.Header.Get(splunkTokenHeader))
		}
		if denied {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"count":1234,"results":[{"name":"demo.trans.latency","type":"GAUGE"}]}`)
	}))
	defer srv.Close()
	p, err := newProvider(ProviderConfig{Type: "splunk", Address: srv.URL, Credentials: map[string]string{"sf_token_key": testSFToken}})
	if err != nil {
		t.Fatal(err)
	}
	if KindOf(p) != "splunk" {
		t.Errorf("kind %s", KindOf(p))
	}
	if ok, err := p.IsOnline(context.Background()); !ok || err != nil {
		t.Errorf("IsOnline: %v, %v", ok, err)
	}
	denied = true
	if ok, err := p.IsOnline(context.Background()); ok || err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("IsOnline with a bad token: %v, %v", ok, err)
	}
}

func TestSplunk_DerivesTheStreamAndAPIEndpoints(t *testing.T) {
	for _, tc := range []struct{ address, stream, api, err string }{
		{"https://api.us1.signalfx.com", "https://stream.us1.signalfx.com", "https://api.us1.signalfx.com", ""},
		{"wss://stream.eu0.signalfx.com/v2/signalflow", "https://stream.eu0.signalfx.com", "https://api.eu0.signalfx.com", ""},
		{"https://stream.jp0.signalfx.com/", "https://stream.jp0.signalfx.com", "https://api.jp0.signalfx.com", ""},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", "http://127.0.0.1:8080", ""},
		{"ws://proxy.internal/splunk", "http://proxy.internal/splunk", "http://proxy.internal/splunk", ""},
		{"ftp://api.us1.signalfx.com", "", "", "not an http(s) or ws(s) URL"},
		{"api.us1.signalfx.com", "", "", "not a URL"},
	} {
		stream, api, err := splunkEndpoints(tc.address)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one with %q", tc.address, err, tc.err)
		case tc.err == "" && (err != nil || stream != tc.stream || api != tc.api):
			t.Errorf("%s: %s, %s, %v; want %s, %s", tc.address, stream, api, err, tc.stream, tc.api)
		}
	}
}

func TestSplunk_RefusesMissingSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ProviderConfig
		err  string
	}{
		{"no address", ProviderConfig{Credentials: map[string]string{"sf_token_key": "t"}}, "splunk: no address"},
		{"no token", ProviderConfig{Address: "https://api.us1.signalfx.com"}, "no sf_token_key"},
		{"a blank token", ProviderConfig{Address: "https://api.us1.signalfx.com", Credentials: map[string]string{"sf_token_key": " "}}, "no sf_token_key"},
	} {
		if _, err := NewSplunk(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.err)
		}
	}
	p, err := NewSplunk(ProviderConfig{Address: "https://api.us1.signalfx.com", Credentials: map[string]string{"sf_token_key": "t"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.RunQuery(context.Background(), " \n"); err == nil || !strings.Contains(err.Error(), "the query is empty") {
		t.Errorf("empty program: %v", err)
	}
}
