package metrics

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"k8s.io/client-go/rest"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// The fuzz targets feed arbitrary answers to each provider's decoding, and
// arbitrary text to the query templates, durations and thresholds. Each
// must never panic, and garbage must give an error, never a value that
// could pass a check. Their seed corpora are in testdata/fuzz; go test
// runs them, make fuzz explores further.

// answerServer is an HTTP server that answers every request with the
// current body, for the providers whose client library decodes the answer.
type answerServer struct {
	mu   sync.Mutex
	body []byte
	ct   string
	srv  *httptest.Server
}

func newAnswerServer(tb testing.TB, contentType string) *answerServer {
	a := &answerServer{ct: contentType}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		body := a.body
		a.mu.Unlock()
		w.Header().Set("Content-Type", a.ct)
		_, _ = w.Write(body)
	}))
	tb.Cleanup(a.srv.Close)
	return a
}

func (a *answerServer) set(body []byte) {
	a.mu.Lock()
	a.body = body
	a.mu.Unlock()
}

// checkFuzzValue fails on a value that passed although it should not: a
// NaN without an error, or any value from an answer that valid rejects.
func checkFuzzValue(t *testing.T, body []byte, v float64, err error, valid func([]byte) bool) {
	t.Helper()
	if err != nil {
		return
	}
	if math.IsNaN(v) {
		t.Fatalf("the answer %q gave NaN without an error", body)
	}
	if valid != nil && !valid(body) {
		t.Fatalf("the malformed answer %q gave the value %v without an error", body, v)
	}
}

// fuzzProvider runs the provider built for the answer server on every
// input as its answer.
func fuzzProvider(f *testing.F, contentType string, newP func(address string) (Provider, error), query string, valid func([]byte) bool) {
	a := newAnswerServer(f, contentType)
	p, err := newP(a.srv.URL)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		a.set(body)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v, err := p.RunQuery(ctx, query)
		checkFuzzValue(t, body, v, err, valid)
	})
}

func FuzzPrometheusAnswer(f *testing.F) {
	fuzzProvider(f, "application/json", func(address string) (Provider, error) {
		return NewPrometheus(ProviderConfig{Type: "prometheus", Address: address})
	}, "sum(up)", json.Valid)
}

func FuzzDatadogAnswer(f *testing.F) {
	fuzzProvider(f, "application/json", func(address string) (Provider, error) {
		return NewDatadog(ProviderConfig{Type: "datadog", Address: address, Credentials: map[string]string{"datadog_api_key": "a", "datadog_application_key": "b"}})
	}, "avg:requests{*}", json.Valid)
}

func FuzzNewRelicAnswer(f *testing.F) {
	fuzzProvider(f, "application/json", func(address string) (Provider, error) {
		return NewNewRelic(ProviderConfig{Type: "newrelic", Address: address, Credentials: map[string]string{"newrelic_account_id": "1", "newrelic_query_key": "k"}})
	}, "SELECT count(*) FROM Transaction", json.Valid)
}

func FuzzGraphiteAnswer(f *testing.F) {
	fuzzProvider(f, "application/json", func(address string) (Provider, error) {
		return NewGraphite(ProviderConfig{Type: "graphite", Address: address})
	}, "target=sumSeries(app.*)", json.Valid)
}

func FuzzInfluxDBAnswer(f *testing.F) {
	fuzzProvider(f, "application/csv", func(address string) (Provider, error) {
		return NewInfluxDB(ProviderConfig{Type: "influxdb", Address: address, Credentials: map[string]string{"org": "o"}})
	}, `from(bucket: "b")`, func(b []byte) bool { return strings.Contains(string(b), "_value") })
}

func FuzzDynatraceAnswer(f *testing.F) {
	fuzzProvider(f, "application/json", func(address string) (Provider, error) {
		return NewDynatrace(ProviderConfig{Type: "dynatrace", Address: address, Credentials: map[string]string{"dynatrace_token": "t"}})
	}, "builtin:service.errors.total.rate:avg", json.Valid)
}

func FuzzStackdriverAnswer(f *testing.F) {
	_, authSrv := newFakeGoogleAuth(f)
	key := serviceAccountKeyJSON(f, authSrv.URL+"/token")
	fuzzProvider(f, "application/json", func(address string) (Provider, error) {
		return NewStackdriver(ProviderConfig{Type: "stackdriver", Address: address, Credentials: map[string]string{"project": "p", "serviceAccountKey": key}})
	}, testMQL, json.Valid)
}

func FuzzCloudWatchAnswer(f *testing.F) {
	isolateAWS(f)
	fuzzProvider(f, "application/cbor", func(address string) (Provider, error) {
		return NewCloudWatch(ProviderConfig{Type: "cloudwatch", Address: address, Region: testAWSRegion,
			Credentials: map[string]string{"aws_access_key_id": testAWSKeyID, "aws_secret_access_key": testAWSSecret}})
	}, `[{"Id":"e1","Expression":"SUM(METRICS())"}]`, func(b []byte) bool { return cbor.Wellformed(b) == nil })
}

func FuzzSplunkAnswer(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := readSignalFlow(strings.NewReader(string(body)))
		checkFuzzValue(t, body, v, err, func(b []byte) bool { return strings.Contains(string(b), "data") })
	})
}

func FuzzExternalMetricsAnswer(f *testing.F) {
	a := newAnswerServer(f, "application/json")
	p, err := NewExternalMetrics(ProviderConfig{Type: "externalmetrics", Rest: &rest.Config{Host: a.srv.URL}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, query string) {
		a.set(body)
		v, _, err := p.RunQueryNoted(context.Background(), query)
		checkFuzzValue(t, body, v, err, json.Valid)
	})
}

func FuzzKeptnAnswer(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte, query string) {
		if q, err := parseKeptnQuery(query); err == nil && (q.namespace == "" || q.name == "") {
			t.Fatalf("the query %q parsed without a namespace or a name: %+v", query, q)
		}
		var obj map[string]any
		if json.Unmarshal(body, &obj) != nil {
			return
		}
		v, err := keptnMetricValue(obj, "KeptnMetric x/y")
		checkFuzzValue(t, body, v, err, nil)
	})
}

func FuzzQueryTemplate(f *testing.F) {
	f.Fuzz(func(t *testing.T, text, interval, variable string) {
		cd := canaryOf("istio", "podinfo")
		qm := NewQueryModel(cd, flaggerv1beta1.CanaryMetric{Name: "m", Interval: interval, TemplateVariables: map[string]string{"v": variable}})
		out, err := qm.Render("fuzz", text)
		if err == nil && !strings.Contains(text, "{{") && out != text {
			t.Fatalf("a text without actions rendered as %q, not itself", out)
		}
		if d, err := qm.window(); err == nil && d <= 0 {
			t.Fatalf("the interval %q gave the window %s without an error", interval, d)
		}
	})
}

func FuzzThresholds(f *testing.F) {
	f.Fuzz(func(t *testing.T, metric []byte, value float64) {
		var m flaggerv1beta1.CanaryMetric
		if json.Unmarshal(metric, &m) != nil {
			return
		}
		rng, err := Bounds(m)
		if err != nil {
			return
		}
		if rng == nil || (rng.Min == nil && rng.Max == nil) {
			t.Fatalf("%s: bounds %+v without an error", metric, rng)
		}
		passed, msg := Within(value, rng)
		switch {
		case passed && (math.IsNaN(value) || math.IsInf(value, 0)):
			t.Fatalf("%s: %v passed", metric, value)
		case passed && rng.Min != nil && value < *rng.Min, passed && rng.Max != nil && value > *rng.Max:
			t.Fatalf("%s: %v passed outside [%v, %v]", metric, value, rng.Min, rng.Max)
		case !passed && msg == "":
			t.Fatalf("%s: %v failed without a message", metric, value)
		}
	})
}
