package metrics

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/fxamacker/cbor/v2"
)

// The keys the fake CloudWatch knows.
const (
	testAWSKeyID  = "AKIDSLUICETEST"
	testAWSSecret = "sluice/Test+Secret0123456789"
	testAWSToken  = "session/token+of=the/test"
	testAWSRegion = "eu-west-1"
)

// cloudWatchPath is where the SDK's RPC v2 CBOR protocol posts GetMetricData.
const cloudWatchPath = "/service/GraniteServiceVersion20100801/operation/GetMetricData"

// cwInput is a GetMetricData request as the fake decodes it.
type cwInput struct {
	MetricDataQueries []map[string]any `cbor:"MetricDataQueries"`
	StartTime         time.Time        `cbor:"StartTime"`
	EndTime           time.Time        `cbor:"EndTime"`
	ScanBy            string           `cbor:"ScanBy"`
	NextToken         string           `cbor:"NextToken"`
}

// cwAnswer is one answer of the fake: a status and a CBOR body made of
// body (a Go value) or raw bytes.
type cwAnswer struct {
	status int
	body   any
	raw    []byte
}

// fakeCloudWatch is a CloudWatch endpoint speaking the protocol the SDK
// sends (Smithy RPC v2 CBOR): it checks the headers, verifies the SigV4
// signature against the credentials it expects (recomputed with the SDK's
// signer from the request as it arrived), decodes the CBOR body and
// answers in CBOR, one answer per request in turn (the last repeats). A
// request it cannot authenticate gets a 403 as AWS answers it.
type fakeCloudWatch struct {
	t     *testing.T
	creds aws.Credentials

	mu      sync.Mutex
	answers []cwAnswer
	inputs  []cwInput
}

func (f *fakeCloudWatch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	if r.Method != http.MethodPost || r.URL.Path != cloudWatchPath || r.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" ||
		r.Header.Get("Content-Type") != "application/cbor" {
		f.t.Errorf("request %s %s, Smithy-Protocol %q, Content-Type %q", r.Method, r.URL, r.Header.Get("Smithy-Protocol"), r.Header.Get("Content-Type"))
		writeCBOR(w, http.StatusBadRequest, map[string]any{"__type": "com.amazon.coral.service#UnknownOperationException"})
		return
	}
	if err := verifySignature(r, body, f.creds, "monitoring", testAWSRegion); err != nil {
		writeCBOR(w, http.StatusForbidden, map[string]any{"__type": "com.amazon.coral.service#InvalidSignatureException",
			"message": "The request signature we calculated does not match the signature you provided: " + err.Error()})
		return
	}
	var in cwInput
	if err := cbor.Unmarshal(body, &in); err != nil {
		f.t.Errorf("the body is not CBOR of a GetMetricData input: %v", err)
	}
	f.mu.Lock()
	f.inputs = append(f.inputs, in)
	a := cwAnswer{body: map[string]any{"MetricDataResults": []any{}}}
	if len(f.answers) > 0 {
		a = f.answers[0]
		if len(f.answers) > 1 {
			f.answers = f.answers[1:]
		}
	}
	f.mu.Unlock()
	if a.status == 0 {
		a.status = http.StatusOK
	}
	if a.raw != nil {
		w.WriteHeader(a.status)
		_, _ = w.Write(a.raw)
		return
	}
	writeCBOR(w, a.status, a.body)
}

// requests returns the GetMetricData inputs received.
func (f *fakeCloudWatch) requests() []cwInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]cwInput(nil), f.inputs...)
}

// cwEncoding encodes as the RPC v2 CBOR protocol does: timestamps as
// epoch seconds under tag 1.
var cwEncoding = func() cbor.EncMode {
	em, err := cbor.EncOptions{Time: cbor.TimeUnixDynamic, TimeTag: cbor.EncTagRequired}.EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// writeCBOR answers with v encoded in CBOR.
func writeCBOR(w http.ResponseWriter, status int, v any) {
	raw, err := cwEncoding.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}

// verifySignature checks that r carries a SigV4 signature made with creds:
// it rebuilds the request from what arrived, with exactly the headers the
// signature names, signs it with the SDK's signer at the request's own
// X-Amz-Date and compares the two Authorization headers. A request signed
// with another secret, or changed after signing, fails.
func verifySignature(r *http.Request, body []byte, creds aws.Credentials, service, region string) error {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return fmt.Errorf("no AWS4-HMAC-SHA256 Authorization header: %q", auth)
	}
	var signed []string
	for _, part := range strings.Split(rest, ", ") {
		if v, ok := strings.CutPrefix(part, "SignedHeaders="); ok {
			signed = strings.Split(v, ";")
		}
		if v, ok := strings.CutPrefix(part, "Credential="); ok && !strings.HasPrefix(v, creds.AccessKeyID+"/") {
			return fmt.Errorf("signed with key %s, want %s", strings.SplitN(v, "/", 2)[0], creds.AccessKeyID)
		}
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("X-Amz-Date: %w", err)
	}
	if d := time.Since(when); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("X-Amz-Date %s is %s away", when, d)
	}
	if got := r.Header.Get("X-Amz-Security-Token"); got != creds.SessionToken {
		return fmt.Errorf("X-Amz-Security-Token %q, want %q", got, creds.SessionToken)
	}
	again, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	for _, h := range signed {
		switch h {
		case "host", "content-length", "authorization":
		default:
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, hex.EncodeToString(sum[:]), service, region, when); err != nil {
		return err
	}
	if want := again.Header.Get("Authorization"); want != auth {
		return fmt.Errorf("signature mismatch:\n got  %s\n want %s", auth, want)
	}
	return nil
}

// isolateAWS empties the SDK's sources of configuration for one test, so
// that only what the test sets is found, and turns the EC2 instance
// metadata service off (the tests never reach past 127.0.0.1).
func isolateAWS(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "")
		_ = os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CA_BUNDLE", "")
	_ = os.Unsetenv("AWS_CA_BUNDLE")
	awsConfigs.reset()
	t.Cleanup(awsConfigs.reset)
}

// testCloudWatch returns a provider for the fake at address with the
// test's static keys in its Secret.
func testCloudWatch(t *testing.T, address string, window time.Duration) *CloudWatch {
	t.Helper()
	isolateAWS(t)
	p, err := NewCloudWatch(ProviderConfig{
		Type: "cloudwatch", Address: address, Region: testAWSRegion, Window: window,
		Credentials: map[string]string{"aws_access_key_id": testAWSKeyID, "aws_secret_access_key": testAWSSecret, "aws_session_token": testAWSToken},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testAWSCreds are the credentials of testCloudWatch.
var testAWSCreds = aws.Credentials{AccessKeyID: testAWSKeyID, SecretAccessKey: testAWSSecret, SessionToken: testAWSToken}

// cloudWatchErrorRate is a template query as Flagger's users write it: an
// expression over two hidden metrics (one written with lower-case keys).
const cloudWatchErrorRate = `[
  {"Id": "e1", "Expression": "errors / requests * 100", "Label": "error rate"},
  {"Id": "errors", "ReturnData": false, "MetricStat": {"Period": 60, "Stat": "Sum", "Unit": "Count",
    "Metric": {"Namespace": "Sluice/Test", "MetricName": "Errors", "Dimensions": [{"Name": "app", "Value": "podinfo"}]}}},
  {"id": "requests", "returnData": false, "metricStat": {"period": 60, "stat": "Sum",
    "metric": {"namespace": "Sluice/Test", "metricName": "Requests", "dimensions": [{"name": "app", "value": "podinfo"}]}}}
]`

// cloudWatchErrorRateSent is what CloudWatch must receive for it, as the
// fake decodes the CBOR (integers as uint64).
var cloudWatchErrorRateSent = []map[string]any{
	{"Id": "e1", "Expression": "errors / requests * 100", "Label": "error rate"},
	{"Id": "errors", "ReturnData": false, "MetricStat": map[any]any{"Period": uint64(60), "Stat": "Sum", "Unit": "Count",
		"Metric": map[any]any{"Namespace": "Sluice/Test", "MetricName": "Errors", "Dimensions": []any{map[any]any{"Name": "app", "Value": "podinfo"}}}}},
	{"Id": "requests", "ReturnData": false, "MetricStat": map[any]any{"Period": uint64(60), "Stat": "Sum",
		"Metric": map[any]any{"Namespace": "Sluice/Test", "MetricName": "Requests", "Dimensions": []any{map[any]any{"Name": "app", "Value": "podinfo"}}}}},
}

// cwSeries is one MetricDataResult of an answer, newest point first.
func cwSeries(id string, status string, values ...float64) map[string]any {
	ts := make([]time.Time, len(values))
	for i := range ts {
		ts[i] = time.Unix(1700000060-int64(60*i), 0)
	}
	return map[string]any{"Id": id, "Label": id, "Timestamps": ts, "Values": values, "StatusCode": status}
}

// cwTruncated is an answer cut in the middle of its second series, whose
// first series the SDK's decoder would otherwise read.
func cwTruncated() []byte {
	raw, err := cwEncoding.Marshal(cwResults(cwSeries("e1", "Complete", 1), cwSeries("e2", "Complete", 2)))
	if err != nil {
		panic(err)
	}
	return raw[:len(raw)-12]
}

// cwResults is a GetMetricData answer.
func cwResults(series ...map[string]any) map[string]any {
	return map[string]any{"MetricDataResults": series, "Messages": []any{}}
}

func TestCloudWatch_QueriesTenIntervalsAndReadsTheOneSeriesWithData(t *testing.T) {
	nan := map[string]any{"Id": "e1", "Values": []any{cbor.RawMessage{0xf9, 0x7e, 0x00}, 1.0}, "StatusCode": "Complete"} // half-precision NaN
	apiError := func(status int, typ, msg string) cwAnswer {
		return cwAnswer{status: status, body: map[string]any{"__type": typ, "message": msg}}
	}
	for _, tc := range []struct {
		name    string
		answers []cwAnswer
		want    float64
		err     []string
	}{
		{"the newest point of the one series", []cwAnswer{{body: cwResults(cwSeries("e1", "Complete", 2.5, 1.25))}}, 2.5, nil},
		{"series without data are skipped", []cwAnswer{{body: cwResults(cwSeries("e1", "Complete"), cwSeries("e2", "Complete", 7))}}, 7, nil},
		{"partial data", []cwAnswer{{body: cwResults(cwSeries("e1", "PartialData", 3))}}, 3, nil},
		{"a series split over two pages", []cwAnswer{
			{body: map[string]any{"MetricDataResults": []any{cwSeries("e1", "PartialData")}, "NextToken": "page-2"}},
			{body: cwResults(cwSeries("e1", "Complete", 4.5))},
		}, 4.5, nil},
		{"no data points", []cwAnswer{{body: cwResults(cwSeries("e1", "Complete"))}}, 0, []string{ErrNoValues.Error(), "e1", "20m0s"}},
		{"no series", []cwAnswer{{body: map[string]any{"MetricDataResults": []any{}, "Messages": []any{map[string]any{"Code": "MaxQueryTimeRangeExceed", "Value": "too long"}}}}},
			0, []string{ErrNoValues.Error(), "too long"}},
		{"NaN", []cwAnswer{{body: map[string]any{"MetricDataResults": []any{nan}}}}, 0, []string{ErrNaN.Error()}},
		{"two series with data", []cwAnswer{{body: cwResults(cwSeries("e1", "Complete", 1), cwSeries("errors", "Complete", 2))}}, 0,
			[]string{"2 series with data (e1, errors)", `"ReturnData": false`}},
		{"a series CloudWatch failed to compute", []cwAnswer{{body: cwResults(map[string]any{"Id": "e1", "StatusCode": "InternalError",
			"Messages": []any{map[string]any{"Code": "ArithmeticError", "Value": "division by zero"}}})}},
			0, []string{"the query failed", "e1: InternalError", "ArithmeticError division by zero"}},
		{"invalid query", []cwAnswer{apiError(http.StatusBadRequest, "com.amazonaws.cloudwatch#InvalidParameterValueException", "The expression errors / is not valid.")},
			0, []string{"400 Bad Request", "InvalidParameterValueException: The expression errors / is not valid."}},
		{"access denied", []cwAnswer{apiError(http.StatusForbidden, "com.amazonaws.cloudwatch#AccessDenied", "User sluice is not authorized to perform: cloudwatch:GetMetricData")},
			0, []string{"403 Forbidden", "AccessDenied: User sluice is not authorized to perform: cloudwatch:GetMetricData", "check the AWS credentials"}},
		{"an error page", []cwAnswer{{status: http.StatusNotFound, raw: []byte("<html>no such thing</html>")}}, 0, []string{"cloudwatch at http://127.0.0.1"}},
		{"not CBOR", []cwAnswer{{raw: []byte{0xff, 0x00, 0x13}}}, 0, []string{"cloudwatch at http://127.0.0.1", "not well-formed CBOR"}},
		{"a truncated answer", []cwAnswer{{raw: cwTruncated()}}, 0, []string{"not well-formed CBOR"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeCloudWatch{t: t, creds: testAWSCreds, answers: tc.answers}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			got, err := testCloudWatch(t, srv.URL, 2*time.Minute).RunQuery(context.Background(), cloudWatchErrorRate)

			inputs := fake.requests()
			if len(inputs) == 0 {
				t.Fatalf("no request reached CloudWatch: %v", err)
			}
			in := inputs[0]
			if !reflect.DeepEqual(in.MetricDataQueries, cloudWatchErrorRateSent) {
				t.Errorf("MetricDataQueries sent %#v, want %#v", in.MetricDataQueries, cloudWatchErrorRateSent)
			}
			if in.EndTime.Sub(in.StartTime) != 20*time.Minute || time.Since(in.EndTime).Abs() > time.Minute || in.ScanBy != "TimestampDescending" {
				t.Errorf("StartTime %v, EndTime %v, ScanBy %v: want 20 minutes ending now, newest first", in.StartTime, in.EndTime, in.ScanBy)
			}
			if len(inputs) > 1 && inputs[1].NextToken != "page-2" {
				t.Errorf("second page asked with NextToken %q", inputs[1].NextToken)
			}
			checkQuery(t, got, err, tc.want, tc.err)
		})
	}
}

func TestCloudWatch_SignsWithTheSecretsKeys(t *testing.T) {
	fake := &fakeCloudWatch{t: t, creds: testAWSCreds, answers: []cwAnswer{{body: cwResults(cwSeries("e1", "Complete", 1))}}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	if _, err := testCloudWatch(t, srv.URL, time.Minute).RunQuery(context.Background(), `[{"Id":"e1","Expression":"1"}]`); err != nil {
		t.Fatalf("a query signed with the Secret's keys: %v", err)
	}

	// The same fake refuses a request signed with another secret.
	p, err := NewCloudWatch(ProviderConfig{Type: "cloudwatch", Address: srv.URL, Region: testAWSRegion,
		Credentials: map[string]string{"aws_access_key_id": testAWSKeyID, "aws_secret_access_key": "another secret", "aws_session_token": testAWSToken}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.RunQuery(context.Background(), `[{"Id":"e1","Expression":"1"}]`)
	checkQuery(t, 0, err, 0, []string{"403 Forbidden", "InvalidSignatureException", "signature mismatch"})
}

// fakeSTS answers AssumeRoleWithWebIdentity (AWS query protocol: a form
// POST answered in XML) for one role and one web identity token.
func fakeSTS(t *testing.T, role, token string, creds aws.Credentials) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "AssumeRoleWithWebIdentity" ||
			r.Form.Get("RoleArn") != role || r.Form.Get("WebIdentityToken") != token {
			t.Errorf("STS request %s %v", r.URL, r.Form)
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>`)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		_, _ = fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>`+
			`<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>`+
			`<AssumedRoleUser><Arn>%s/sluice</Arn><AssumedRoleId>AROA:sluice</AssumedRoleId></AssumedRoleUser>`+
			`</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`,
			creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), role)
	}))
}

// TestCloudWatch_FindsCredentialsThroughTheDefaultChain runs a query with a
// Secret without AWS keys, so that the SDK's default chain finds them:
// from the environment, from IRSA's web identity token (traded at a fake
// STS), from EKS Pod Identity's container credentials endpoint, and from a
// profile of the shared credentials file. Each time CloudWatch must see a
// request signed with the keys of that source.
func TestCloudWatch_FindsCredentialsThroughTheDefaultChain(t *testing.T) {
	temporary := aws.Credentials{AccessKeyID: "ASIATEMPORARY", SecretAccessKey: "temporary/secret", SessionToken: "temporary-session"}
	for _, tc := range []struct {
		name  string
		creds aws.Credentials
		setup func(t *testing.T)
	}{
		{"environment", temporary, func(t *testing.T) {
			t.Setenv("AWS_ACCESS_KEY_ID", temporary.AccessKeyID)
			t.Setenv("AWS_SECRET_ACCESS_KEY", temporary.SecretAccessKey)
			t.Setenv("AWS_SESSION_TOKEN", temporary.SessionToken)
		}},
		{"IRSA web identity", temporary, func(t *testing.T) {
			tokenFile := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(tokenFile, []byte("eyJ.projected.sa-token"), 0o600); err != nil {
				t.Fatal(err)
			}
			sts := fakeSTS(t, "arn:aws:iam::123456789012:role/sluice", "eyJ.projected.sa-token", temporary)
			t.Cleanup(sts.Close)
			t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile)
			t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/sluice")
			t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
		}},
		{"EKS Pod Identity", temporary, func(t *testing.T) {
			tokenFile := filepath.Join(t.TempDir(), "eks-pod-identity-token")
			if err := os.WriteFile(tokenFile, []byte("pod-identity-token"), 0o600); err != nil {
				t.Fatal(err)
			}
			agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v1/credentials" || r.Header.Get("Authorization") != "pod-identity-token" {
					t.Errorf("credentials request %s with Authorization %q", r.URL, r.Header.Get("Authorization"))
					w.WriteHeader(http.StatusForbidden)
					return
				}
				_ = json.NewEncoder(w).Encode(map[string]string{"AccessKeyId": temporary.AccessKeyID, "SecretAccessKey": temporary.SecretAccessKey,
					"Token": temporary.SessionToken, "Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
			}))
			t.Cleanup(agent.Close)
			t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", agent.URL+"/v1/credentials")
			t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tokenFile)
		}},
		{"shared credentials profile", aws.Credentials{AccessKeyID: "AKIDPROFILE", SecretAccessKey: "profile/secret"}, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "credentials")
			if err := os.WriteFile(file, []byte("[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n[metrics]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile/secret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", file)
			t.Setenv("AWS_PROFILE", "metrics")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolateAWS(t)
			tc.setup(t)
			awsConfigs.reset() // the chain is read when the configuration loads
			fake := &fakeCloudWatch{t: t, creds: tc.creds, answers: []cwAnswer{{body: cwResults(cwSeries("e1", "Complete", 42))}}}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			p, err := NewCloudWatch(ProviderConfig{Type: "cloudwatch", Address: srv.URL, Region: testAWSRegion})
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.RunQuery(context.Background(), `[{"Id":"e1","Expression":"SUM(METRICS())"}]`)
			checkQuery(t, got, err, 42, nil)
		})
	}
}

func TestCloudWatch_IsOnlineSendsASignedProbe(t *testing.T) {
	fake := &fakeCloudWatch{t: t, creds: testAWSCreds}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	ok, err := testCloudWatch(t, srv.URL, time.Minute).IsOnline(context.Background())
	if !ok || err != nil {
		t.Fatalf("IsOnline = %v, %v", ok, err)
	}
	in := fake.requests()
	if len(in) != 1 || len(in[0].MetricDataQueries) != 1 || in[0].MetricDataQueries[0]["Id"] != "online" {
		t.Errorf("probe %+v", in)
	}

	fake.answers = []cwAnswer{{status: http.StatusForbidden, body: map[string]any{"__type": "AccessDenied", "message": "not allowed"}}}
	if ok, err := testCloudWatch(t, srv.URL, time.Minute).IsOnline(context.Background()); ok || err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("IsOnline on a 403 = %v, %v", ok, err)
	}
}

func TestCloudWatch_RefusesBadQueriesWithoutCallingAWS(t *testing.T) {
	fake := &fakeCloudWatch{t: t, creds: testAWSCreds}
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
	if n := len(fake.requests()); n != 0 {
		t.Errorf("%d requests reached CloudWatch", n)
	}
}

func TestCloudWatch_RefusesMissingSettings(t *testing.T) {
	secret := map[string]string{"aws_access_key_id": "id", "aws_secret_access_key": "s"}
	for _, tc := range []struct {
		name string
		cfg  ProviderConfig
		err  []string
	}{
		{"no region", ProviderConfig{Credentials: secret}, []string{"cloudwatch: no region", "provider.region"}},
		{"not a region", ProviderConfig{Region: "eu west", Credentials: secret}, []string{`"eu west" is not an AWS region name`}},
		{"a key id without its secret", ProviderConfig{Region: "us-east-1", Credentials: map[string]string{"aws_access_key_id": "id"}},
			[]string{"aws_access_key_id but no aws_secret_access_key"}},
		{"a session token alone", ProviderConfig{Region: "us-east-1", Credentials: map[string]string{"aws_session_token": "t"}},
			[]string{"the secret has no aws_access_key_id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolateAWS(t)
			_, err := NewCloudWatch(tc.cfg)
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

func TestCloudWatch_LooksBackTenIntervals(t *testing.T) {
	isolateAWS(t)
	p, err := newProvider(ProviderConfig{Type: "cloudwatch", Region: "us-east-1", Credentials: map[string]string{"aws_access_key_id": "id", "aws_secret_access_key": "s"}})
	if err != nil {
		t.Fatal(err)
	}
	if cw := p.(*CloudWatch); cw.lookback != 10*time.Minute || KindOf(p) != "cloudwatch" {
		t.Errorf("lookback %s, kind %s; want 10m0s, cloudwatch", cw.lookback, KindOf(p))
	}
}

// TestCloudWatch_TrustsTheAWSCABundleOrInsecureSkipVerify runs queries over
// TLS to a server whose certificate only AWS_CA_BUNDLE vouches for: the
// SDK's client must apply the bundle (which it does only to its own HTTP
// client type), refuse the server without it, and accept it with the
// template's insecureSkipVerify.
func TestCloudWatch_TrustsTheAWSCABundleOrInsecureSkipVerify(t *testing.T) {
	fake := &fakeCloudWatch{t: t, creds: testAWSCreds, answers: []cwAnswer{{body: cwResults(cwSeries("e1", "Complete", 9))}}}
	srv := httptest.NewUnstartedServer(fake)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{"aws_access_key_id": testAWSKeyID, "aws_secret_access_key": testAWSSecret, "aws_session_token": testAWSToken}
	for _, tc := range []struct {
		name     string
		bundle   bool
		insecure bool
		err      []string
	}{
		{"with the bundle", true, false, nil},
		{"without it", false, false, []string{"certificate"}},
		{"insecureSkipVerify", false, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolateAWS(t)
			if tc.bundle {
				t.Setenv("AWS_CA_BUNDLE", bundle)
			}
			p, err := NewCloudWatch(ProviderConfig{Type: "cloudwatch", Address: srv.URL, Region: testAWSRegion, InsecureSkipVerify: tc.insecure, Credentials: keys})
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.RunQuery(context.Background(), `[{"Id":"e1","Expression":"1"}]`)
			checkQuery(t, got, err, 9, tc.err)
		})
	}
}
