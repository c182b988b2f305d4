package metrics

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The keys the fake CloudWatch knows.
const (
	testAWSKeyID  = "AKIDSLUICETEST"
	testAWSSecret = "sluice/Test+Secret0123456789"
	testAWSToken  = "session/token+of=the/test"
	testAWSRegion = "eu-west-1"
)

// fakeCloudWatch is a CloudWatch endpoint: it checks every request as AWS
// does (the AWS JSON 1.0 headers, the SigV4 signature, recomputed by this
// test's own code from the secret it knows, and the clock skew), keeps the
// GetMetricData body, and answers with status and body. A request it
// cannot authenticate gets a 403 with an AWS JSON error.
type fakeCloudWatch struct {
	t      *testing.T
	token  string // the session token it expects, if any
	status int
	body   string

	mu    sync.Mutex
	calls int
	input map[string]any
}

func (f *fakeCloudWatch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	if r.Method != http.MethodPost || r.URL.Path != "/" || r.Header.Get("Content-Type") != "application/x-amz-json-1.0" ||
		r.Header.Get("X-Amz-Target") != "GraniteServiceVersion20100801.GetMetricData" {
		f.t.Errorf("request %s %s, Content-Type %q, X-Amz-Target %q", r.Method, r.URL, r.Header.Get("Content-Type"), r.Header.Get("X-Amz-Target"))
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"__type":"com.amazon.coral.service#UnknownOperationException"}`)
		return
	}
	if err := verifySigV4(r, body, testAWSKeyID, testAWSSecret, testAWSRegion, "monitoring"); err != nil {
		w.Header().Set("X-Amzn-ErrorType", "InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/")
		w.WriteHeader(http.StatusForbidden)
		_, _ = fmt.Fprintf(w, `{"__type":"com.amazon.coral.service#InvalidSignatureException","message":%q}`,
			"The request signature we calculated does not match the signature you provided: "+err.Error())
		return
	}
	if got := r.Header.Get("X-Amz-Security-Token"); got != f.token {
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"__type":"com.amazon.coral.service#UnrecognizedClientException","message":"The security token included in the request is invalid."}`)
		return
	}
	var input map[string]any
	if err := json.Unmarshal(body, &input); err != nil {
		f.t.Errorf("the body is not JSON: %v: %s", err, body)
	}
	f.mu.Lock()
	f.input = input
	f.mu.Unlock()
	if f.status != 0 {
		w.WriteHeader(f.status)
	}
	_, _ = io.WriteString(w, f.body)
}

// request returns how many requests came in and the last GetMetricData
// body.
func (f *fakeCloudWatch) request() (int, map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.input
}

// verifySigV4 checks r's SigV4 signature the way AWS does, independently
// of sigv4.go: it reads the Authorization header, rebuilds the canonical
// request from what arrived (only "/" without a query, as CloudWatch's
// JSON protocol sends) and compares the HMAC chain's result.
func verifySigV4(r *http.Request, body []byte, keyID, secret, region, service string) error {
	rest, ok := strings.CutPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ")
	if !ok {
		return errors.New("missing Authorization header with AWS4-HMAC-SHA256")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ", ") {
		k, v, _ := strings.Cut(part, "=")
		fields[k] = v
	}
	amzDate := r.Header.Get("X-Amz-Date")
	at, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return fmt.Errorf("X-Amz-Date %q: %w", amzDate, err)
	}
	if skew := time.Since(at); skew > 5*time.Minute || skew < -5*time.Minute {
		return fmt.Errorf("signature expired: X-Amz-Date %s", amzDate)
	}
	scope := amzDate[:8] + "/" + region + "/" + service + "/aws4_request"
	if fields["Credential"] != keyID+"/"+scope {
		return fmt.Errorf("credential %q, want %s/%s", fields["Credential"], keyID, scope)
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !sort.StringsAreSorted(signed) {
		return fmt.Errorf("SignedHeaders %q are not sorted", fields["SignedHeaders"])
	}
	isSigned := map[string]bool{}
	for _, h := range signed {
		isSigned[h] = true
	}
	for name := range r.Header {
		if lower := strings.ToLower(name); strings.HasPrefix(lower, "x-amz-") && !isSigned[lower] {
			return fmt.Errorf("header %s is not signed", lower)
		}
	}
	for _, h := range []string{"content-type", "host", "x-amz-date", "x-amz-target"} {
		if !isSigned[h] {
			return fmt.Errorf("header %s is not signed", h)
		}
	}
	if r.URL.EscapedPath() != "/" || r.URL.RawQuery != "" {
		return fmt.Errorf("this fake verifies only POST / without a query, not %s", r.URL)
	}
	var headers strings.Builder
	for _, h := range signed {
		value := strings.Join(r.Header.Values(h), ",")
		if h == "host" {
			value = r.Host
		}
		headers.WriteString(h + ":" + value + "\n")
	}
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	canonical := r.Method + "\n/\n\n" + headers.String() + "\n" + fields["SignedHeaders"] + "\n" + sum(body)
	stringToSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + sum([]byte(canonical))
	mac := func(key []byte, data string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(data))
		return m.Sum(nil)
	}
	key := mac(mac(mac(mac([]byte("AWS4"+secret), amzDate[:8]), region), service), "aws4_request")
	if want := hex.EncodeToString(mac(key, stringToSign)); !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return errors.New("the signatures differ")
	}
	return nil
}

// noEnv is an environment without AWS variables.
func noEnv(string) (string, bool) { return "", false }

// envOf is an environment holding vars.
func envOf(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// testCloudWatch builds a CloudWatch provider for address with the test's
// keys in the Secret.
func testCloudWatch(t *testing.T, address string, window time.Duration) *CloudWatch {
	t.Helper()
	p, err := newCloudWatch(ProviderConfig{
		Type: "cloudwatch", Address: address, Region: testAWSRegion, Window: window,
		Credentials: map[string]string{"aws_access_key_id": testAWSKeyID, "aws_secret_access_key": testAWSSecret},
	}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// cloudWatchErrorRate is a template query as Flagger's users write it: an
// expression over two hidden metrics (one written with lower-case keys).
const cloudWatchErrorRate = `[
  {"Id": "e1", "Expression": "errors / requests * 100", "Label": "error rate"},
  {"Id": "errors", "ReturnData": false, "MetricStat": {"Period": 60, "Stat": "Sum", "Unit": "Count",
    "Metric": {"Namespace": "Sluice/Test", "MetricName": "Errors", "Dimensions": [{"Name": "app", "Value": "podinfo"}]}}},
  {"id": "requests", "returnData": false, "metricStat": {"period": 60, "stat": "Sum",
    "metric": {"namespace": "Sluice/Test", "metricName": "Requests", "dimensions": [{"name": "app", "value": "podinfo"}]}}}
]`

// cloudWatchErrorRateSent is what CloudWatch must receive for it.
const cloudWatchErrorRateSent = `[
  {"Id": "e1", "Expression": "errors / requests * 100", "Label": "error rate"},
  {"Id": "errors", "ReturnData": false, "MetricStat": {"Period": 60, "Stat": "Sum", "Unit": "Count",
    "Metric": {"Namespace": "Sluice/Test", "MetricName": "Errors", "Dimensions": [{"Name": "app", "Value": "podinfo"}]}}},
  {"Id": "requests", "ReturnData": false, "MetricStat": {"Period": 60, "Stat": "Sum",
    "Metric": {"Namespace": "Sluice/Test", "MetricName": "Requests", "Dimensions": [{"Name": "app", "Value": "podinfo"}]}}}
]`

func TestCloudWatch_QueriesTenIntervalsAndReadsTheOneSeriesWithData(t *testing.T) {
	series := func(id, values string) string {
		return `{"Id":"` + id + `","Label":"` + id + `","Timestamps":[1700000060,1700000000],"Values":` + values + `,"StatusCode":"Complete"}`
	}
	answer := func(results ...string) string {
		return `{"MetricDataResults":[` + strings.Join(results, ",") + `],"Messages":[]}`
	}
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   float64
		err    []string
	}{
		{"the newest point of the one series", 0, answer(series("e1", `[2.5,1.25]`)), 2.5, nil},
		{"series without data are skipped", 0, answer(series("e1", `[]`), series("e2", `[7]`)), 7, nil},
		{"partial data", 0, `{"MetricDataResults":[{"Id":"e1","Values":[3],"StatusCode":"PartialData"}],"NextToken":"abc"}`, 3, nil},
		{"no data points", 0, answer(series("e1", `[]`)), 0, []string{ErrNoValues.Error(), "e1", "20m0s"}},
		{"no series", 0, `{"MetricDataResults":[],"Messages":[{"Code":"MaxQueryTimeRangeExceed","Value":"too long"}]}`, 0, []string{ErrNoValues.Error(), "too long"}},
		{"NaN", 0, answer(series("e1", `["NaN",1]`)), 0, []string{ErrNaN.Error()}},
		{"two series with data", 0, answer(series("e1", `[1]`), series("errors", `[2]`)), 0, []string{"2 series with data (e1, errors)", `"ReturnData": false`}},
		{"a series CloudWatch failed to compute", 0, `{"MetricDataResults":[{"Id":"e1","Values":[],"StatusCode":"InternalError","Messages":[{"Code":"ArithmeticError","Value":"division by zero"}]}]}`,
			0, []string{"the query failed", "e1: InternalError", "ArithmeticError division by zero"}},
		{"invalid query", http.StatusBadRequest, `{"__type":"com.amazonaws.cloudwatch#InvalidParameterValueException","message":"The expression errors / is not valid."}`,
			0, []string{"400 Bad Request", "InvalidParameterValueException: The expression errors / is not valid."}},
		{"throttled", http.StatusBadRequest, `{"__type":"Throttling","message":"Rate exceeded"}`, 0, []string{"400 Bad Request", "Throttling: Rate exceeded"}},
		{"access denied", http.StatusForbidden, `{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"User sluice is not authorized to perform: cloudwatch:GetMetricData"}`,
			0, []string{"403 Forbidden", "AccessDeniedException: User sluice is not authorized to perform: cloudwatch:GetMetricData", "check the credentials"}},
		{"unavailable", http.StatusServiceUnavailable, `{"__type":"ServiceUnavailable:http://internal.amazon.com/coral/com.amazon.coral.availability/","message":"Service is unavailable"}`,
			0, []string{"503 Service Unavailable", "ServiceUnavailable: Service is unavailable"}},
		{"an error page", http.StatusBadGateway, `<html>upstream timed out</html>`, 0, []string{"502 Bad Gateway", "upstream timed out"}},
		{"malformed JSON", 0, `{"MetricDataResults":[{"Id":`, 0, []string{"not a GetMetricData result"}},
		{"a value that is not a number", 0, answer(series("e1", `["lots"]`)), 0, []string{"not a GetMetricData result", `"lots" is not a number`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeCloudWatch{t: t, status: tc.status, body: tc.body}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			got, err := testCloudWatch(t, srv.URL, 2*time.Minute).RunQuery(context.Background(), cloudWatchErrorRate)

			_, input := fake.request()
			var want []any
			if err := json.Unmarshal([]byte(cloudWatchErrorRateSent), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(input["MetricDataQueries"], want) {
				t.Errorf("MetricDataQueries sent %v, want %v", input["MetricDataQueries"], want)
			}
			start, _ := input["StartTime"].(float64)
			end, _ := input["EndTime"].(float64)
			if end-start != 1200 || math.Abs(float64(time.Now().Unix())-end) > 60 || input["ScanBy"] != "TimestampDescending" {
				t.Errorf("StartTime %v, EndTime %v, ScanBy %v: want 20 minutes ending now, newest first", input["StartTime"], input["EndTime"], input["ScanBy"])
			}

			checkQuery(t, got, err, tc.want, tc.err)
		})
	}
}

func TestCloudWatch_SignsWithTheCredentialsItFinds(t *testing.T) {
	keys := func(id, secret, token string) map[string]string {
		m := map[string]string{"aws_access_key_id": id, "aws_secret_access_key": secret}
		if token != "" {
			m["aws_session_token"] = token
		}
		return m
	}
	for _, tc := range []struct {
		name        string
		credentials map[string]string
		env         map[string]string
		headers     map[string][]string
		token       string // the session token the fake expects
		err         []string
	}{
		{name: "keys in the secret", credentials: keys(testAWSKeyID, testAWSSecret, "")},
		{name: "keys and session token in the secret", credentials: keys(testAWSKeyID, testAWSSecret, testAWSToken), token: testAWSToken},
		{name: "keys in the environment", env: map[string]string{"AWS_ACCESS_KEY_ID": testAWSKeyID, "AWS_SECRET_ACCESS_KEY": testAWSSecret, "AWS_SESSION_TOKEN": testAWSToken}, token: testAWSToken},
		{name: "the secret before the environment", credentials: keys(testAWSKeyID, testAWSSecret, ""),
			env: map[string]string{"AWS_ACCESS_KEY_ID": "AKIDOTHER", "AWS_SECRET_ACCESS_KEY": "other"}},
		{name: "the template's headers are signed too", credentials: keys(testAWSKeyID, testAWSSecret, ""),
			headers: map[string][]string{"X-Amz-Meta-Team": {"canary"}}},
		{name: "a wrong secret", credentials: keys(testAWSKeyID, "not the secret", ""),
			err: []string{"403 Forbidden", "InvalidSignatureException: The request signature we calculated does not match", "check the credentials"}},
		{name: "a missing session token", credentials: keys(testAWSKeyID, testAWSSecret, ""), token: testAWSToken,
			err: []string{"403 Forbidden", "UnrecognizedClientException: The security token included in the request is invalid."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeCloudWatch{t: t, token: tc.token, body: `{"MetricDataResults":[{"Id":"e1","Values":[0.5],"StatusCode":"Complete"}]}`}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			p, err := newCloudWatch(ProviderConfig{Address: srv.URL, Region: testAWSRegion, Credentials: tc.credentials, Headers: tc.headers}, envOf(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.RunQuery(context.Background(), `[{"Id":"e1","Expression":"SUM(METRICS())"}]`)
			if tc.err == nil {
				if err != nil || got != 0.5 {
					t.Errorf("got %v, %v; want 0.5", got, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %v, want an error", got)
			}
			for _, s := range tc.err {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestCloudWatch_IsOnlineSendsASignedProbe(t *testing.T) {
	fake := &fakeCloudWatch{t: t, body: `{"MetricDataResults":[{"Id":"online","Label":"None","Timestamps":[],"Values":[],"StatusCode":"Complete"}],"Messages":[]}`}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	if ok, err := testCloudWatch(t, srv.URL, 0).IsOnline(context.Background()); !ok || err != nil {
		t.Errorf("IsOnline: %v, %v; want true", ok, err)
	}
	if _, input := fake.request(); !strings.Contains(fmt.Sprint(input["MetricDataQueries"]), "Id:online") {
		t.Errorf("probe %v", input["MetricDataQueries"])
	}

	p, err := newCloudWatch(ProviderConfig{Address: srv.URL, Region: testAWSRegion,
		Credentials: map[string]string{"aws_access_key_id": testAWSKeyID, "aws_secret_access_key": "revoked"}}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := p.IsOnline(context.Background()); ok || err == nil || !strings.Contains(err.Error(), "403 Forbidden") {
		t.Errorf("IsOnline with a wrong secret: %v, %v; want false and the 403", ok, err)
	}
}

func TestCloudWatch_RefusesBadQueriesWithoutCallingAWS(t *testing.T) {
	fake := &fakeCloudWatch{t: t}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	p := testCloudWatch(t, srv.URL, 0)
	for _, tc := range []struct{ name, query, err string }{
		{"not JSON", `SELECT AVG(Latency) FROM "AWS/ApplicationELB"`, "not a JSON array of MetricDataQuery objects"},
		{"an object", `{"Id":"m1","Expression":"1"}`, "not a JSON array of MetricDataQuery objects"},
		{"empty", `[]`, "empty array"},
		{"a misspelt field", `[{"Id":"e1","Expression":"SUM(METRICS())","ReturnDate":false}]`, `unknown field "ReturnDate"`},
		{"no Id", `[{"Expression":"SUM(METRICS())"}]`, "MetricDataQuery 1 of the query has no Id"},
		{"nothing to compute", `[{"Id":"e1","Label":"x"}]`, `"e1" has neither Expression nor MetricStat`},
		{"text after the array", `[{"Id":"e1","Expression":"1"}] extra`, "text after its JSON array"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := p.RunQuery(context.Background(), tc.query); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("got %v, want an error containing %q", err, tc.err)
			}
		})
	}
	if calls, _ := fake.request(); calls != 0 {
		t.Errorf("%d requests reached CloudWatch", calls)
	}
}

func TestCloudWatch_RefusesMissingSettings(t *testing.T) {
	secret := map[string]string{"aws_access_key_id": "id", "aws_secret_access_key": "s"}
	for _, tc := range []struct {
		name string
		cfg  ProviderConfig
		env  map[string]string
		err  []string
	}{
		{"no region", ProviderConfig{Credentials: secret}, nil, []string{"cloudwatch: no region", "provider.region"}},
		{"not a region", ProviderConfig{Region: "eu west", Credentials: secret}, nil, []string{`"eu west" is not an AWS region name`}},
		{"no credentials anywhere", ProviderConfig{Region: "us-east-1"}, nil,
			[]string{"no AWS credentials", "aws_access_key_id", "aws_secret_access_key", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}},
		{"a key id without its secret", ProviderConfig{Region: "us-east-1", Credentials: map[string]string{"aws_access_key_id": "id"}},
			map[string]string{"AWS_ACCESS_KEY_ID": "env", "AWS_SECRET_ACCESS_KEY": "env"}, []string{"aws_access_key_id but no aws_secret_access_key"}},
		{"a session token alone", ProviderConfig{Region: "us-east-1", Credentials: map[string]string{"aws_session_token": "t"}}, nil,
			[]string{"the secret has no aws_access_key_id"}},
		{"half the environment", ProviderConfig{Region: "us-east-1"}, map[string]string{"AWS_ACCESS_KEY_ID": "id"},
			[]string{"AWS_ACCESS_KEY_ID but no AWS_SECRET_ACCESS_KEY"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newCloudWatch(tc.cfg, envOf(tc.env))
			if err == nil {
				t.Fatal("got no error")
			}
			for _, s := range tc.err {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestCloudWatch_UsesTheRegionalEndpointUnlessGivenAnAddress(t *testing.T) {
	secret := map[string]string{"aws_access_key_id": "id", "aws_secret_access_key": "s"}
	for _, tc := range []struct{ region, address, want string }{
		{"eu-west-1", "", "https://monitoring.eu-west-1.amazonaws.com"},
		{"cn-north-1", "", "https://monitoring.cn-north-1.amazonaws.com.cn"},
		{"us-east-1", "http://localstack:4566/", "http://localstack:4566"},
	} {
		p, err := newProvider(ProviderConfig{Type: "cloudwatch", Region: tc.region, Address: tc.address, Credentials: secret})
		if err != nil {
			t.Fatal(err)
		}
		if cw := p.(*CloudWatch); cw.endpoint != tc.want || cw.lookback != 10*time.Minute || KindOf(p) != "cloudwatch" {
			t.Errorf("%s %q: endpoint %s, lookback %s, kind %s; want %s, 10m0s, cloudwatch", tc.region, tc.address, cw.endpoint, cw.lookback, KindOf(p), tc.want)
		}
	}
}
