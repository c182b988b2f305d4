package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"
)

const (
	// cloudWatchService is CloudWatch's name in SigV4 credential scopes
	// and endpoint host names.
	cloudWatchService = "monitoring"
	// cloudWatchTarget prefixes the operation in X-Amz-Target: CloudWatch's
	// AWS JSON 1.0 protocol names the service shape
	// GraniteServiceVersion20100801.
	cloudWatchTarget = "GraniteServiceVersion20100801."
	// cloudWatchContentType is the content type of AWS JSON 1.0 requests.
	cloudWatchContentType = "application/x-amz-json-1.0"
)

// CloudWatch runs GetMetricData queries against Amazon CloudWatch, signing
// its own requests with AWS Signature Version 4 (sigv4.go) rather than
// pulling in the AWS SDK.
//
// It speaks CloudWatch's AWS JSON 1.0 protocol: a POST of a JSON body with
// X-Amz-Target GraniteServiceVersion20100801.GetMetricData and Content-Type
// application/x-amz-json-1.0, which CloudWatch's service model lists beside
// the older Query protocol and which current AWS SDKs use by default.
//
// The query is what Flagger's users write: a JSON array of
// MetricDataQuery objects (Id, Expression, Label, MetricStat{Metric{
// Namespace, MetricName, Dimensions[{Name, Value}]}, Period, Stat, Unit},
// Period, ReturnData, AccountId). Field names match without regard to
// case; an unknown field is an error rather than silently dropped. The
// range ends now and starts ten metric intervals earlier, as in Flagger.
// The answer must hold exactly one returned series with data points (set
// "ReturnData": false on the others); its newest point is the value.
//
// The provider's region is required; the endpoint is the provider's
// address, or https://monitoring.<region>.amazonaws.com (.com.cn in
// China).
//
// Secret keys: aws_access_key_id and aws_secret_access_key, and
// aws_session_token for temporary credentials. Without them Sluice reads
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN from its
// own environment when it builds the provider. Instance profiles and IRSA
// web identity tokens are not supported. The credentials need
// cloudwatch:GetMetricData.
type CloudWatch struct {
	endpoint string
	lookback time.Duration
	client   *http.Client
	now      func() time.Time
}

// NewCloudWatch returns a CloudWatch provider for cfg. The region and a
// pair of AWS keys (from the Secret or the environment) are required.
func NewCloudWatch(cfg ProviderConfig) (*CloudWatch, error) {
	return newCloudWatch(cfg, os.LookupEnv)
}

// awsRegion is the shape of an AWS region name (us-east-1, us-gov-west-1).
var awsRegion = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)+$`)

// newCloudWatch is NewCloudWatch with the environment lookup injected.
func newCloudWatch(cfg ProviderConfig, lookupEnv func(string) (string, bool)) (*CloudWatch, error) {
	region := cfg.Region
	switch {
	case region == "":
		return nil, errors.New("cloudwatch: no region: set the MetricTemplate's provider.region (us-east-1, ...)")
	case !awsRegion.MatchString(region):
		return nil, fmt.Errorf("cloudwatch: %q is not an AWS region name (us-east-1, ...)", region)
	}
	signer, err := awsKeys(cfg, lookupEnv)
	if err != nil {
		return nil, err
	}
	signer.region, signer.service = region, cloudWatchService

	endpoint := strings.TrimSuffix(cfg.Address, "/")
	if endpoint == "" {
		endpoint = "https://" + cloudWatchService + "." + region + ".amazonaws.com"
		if strings.HasPrefix(region, "cn-") {
			endpoint += ".cn"
		}
	}
	window := cfg.Window
	if window <= 0 {
		window = time.Minute
	}
	client := newHTTPClient(cfg, nil)
	// Sign below the transport that adds the template's headers, so that
	// they cannot change a signed header after signing.
	if ht, ok := client.Transport.(*headerTransport); ok {
		ht.base = &awsTransport{base: ht.base, signer: signer}
	} else {
		client.Transport = &awsTransport{base: client.Transport, signer: signer}
	}
	return &CloudWatch{endpoint: endpoint, lookback: lookbackIntervals * window, client: client, now: time.Now}, nil
}

// awsKeys returns a signer holding the AWS keys of the Secret or, when the
// Secret has none, of the environment.
func awsKeys(cfg ProviderConfig, lookupEnv func(string) (string, bool)) (sigv4Signer, error) {
	get := func(k string) string { v, _ := cfg.credential(k); return v }
	id, secret, token := get("aws_access_key_id"), get("aws_secret_access_key"), get("aws_session_token")
	if id != "" || secret != "" || token != "" {
		switch {
		case id == "":
			return sigv4Signer{}, errors.New("cloudwatch: the secret has no aws_access_key_id (it has other AWS keys)")
		case secret == "":
			return sigv4Signer{}, errors.New("cloudwatch: the secret has aws_access_key_id but no aws_secret_access_key")
		}
		return sigv4Signer{accessKeyID: id, secretAccessKey: secret, sessionToken: token}, nil
	}
	env := func(k string) string { v, _ := lookupEnv(k); return v }
	id, secret, token = env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"), env("AWS_SESSION_TOKEN")
	switch {
	case id != "" && secret != "":
		return sigv4Signer{accessKeyID: id, secretAccessKey: secret, sessionToken: token}, nil
	case id != "":
		return sigv4Signer{}, errors.New("cloudwatch: the environment has AWS_ACCESS_KEY_ID but no AWS_SECRET_ACCESS_KEY")
	case secret != "":
		return sigv4Signer{}, errors.New("cloudwatch: the environment has AWS_SECRET_ACCESS_KEY but no AWS_ACCESS_KEY_ID")
	}
	return sigv4Signer{}, errors.New("cloudwatch: no AWS credentials: the MetricTemplate's secretRef Secret has no aws_access_key_id and " +
		"aws_secret_access_key, and Sluice's environment has no AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY " +
		"(instance profiles and IRSA are not supported)")
}

// cloudWatchQuery is one MetricDataQuery, with CloudWatch's field names.
type cloudWatchQuery struct {
	ID         string                `json:"Id"`
	Expression string                `json:"Expression,omitempty"`
	Label      string                `json:"Label,omitempty"`
	MetricStat *cloudWatchMetricStat `json:"MetricStat,omitempty"`
	Period     int64                 `json:"Period,omitempty"`
	ReturnData *bool                 `json:"ReturnData,omitempty"`
	AccountID  string                `json:"AccountId,omitempty"`
}

// cloudWatchMetricStat is a metric and the statistic to read from it.
type cloudWatchMetricStat struct {
	Metric cloudWatchMetric `json:"Metric"`
	Period int64            `json:"Period"`
	Stat   string           `json:"Stat"`
	Unit   string           `json:"Unit,omitempty"`
}

// cloudWatchMetric names a metric by namespace, name and dimensions.
type cloudWatchMetric struct {
	Namespace  string                `json:"Namespace,omitempty"`
	MetricName string                `json:"MetricName,omitempty"`
	Dimensions []cloudWatchDimension `json:"Dimensions,omitempty"`
}

// cloudWatchDimension is one name/value pair of a metric.
type cloudWatchDimension struct {
	Name  string `json:"Name"`
	Value string `json:"Value"`
}

// parseCloudWatchQuery reads a template's query: a JSON array of
// MetricDataQuery objects, each with an Id and an Expression or a
// MetricStat.
func parseCloudWatchQuery(query string) ([]cloudWatchQuery, error) {
	dec := json.NewDecoder(strings.NewReader(query))
	dec.DisallowUnknownFields()
	var queries []cloudWatchQuery
	if err := dec.Decode(&queries); err != nil {
		return nil, fmt.Errorf("cloudwatch: the query is not a JSON array of MetricDataQuery objects (Id, Expression, Label, MetricStat, Period, ReturnData): %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("cloudwatch: the query has text after its JSON array")
	}
	if len(queries) == 0 {
		return nil, errors.New("cloudwatch: the query is an empty array; it needs at least one MetricDataQuery")
	}
	for i, q := range queries {
		switch {
		case q.ID == "":
			return nil, fmt.Errorf("cloudwatch: MetricDataQuery %d of the query has no Id", i+1)
		case q.Expression == "" && q.MetricStat == nil:
			return nil, fmt.Errorf("cloudwatch: MetricDataQuery %q has neither Expression nor MetricStat", q.ID)
		}
	}
	return queries, nil
}

// getMetricDataInput is the body of a GetMetricData request. AWS JSON 1.0
// sends timestamps as seconds since the epoch.
type getMetricDataInput struct {
	MetricDataQueries []cloudWatchQuery `json:"MetricDataQueries"`
	StartTime         int64             `json:"StartTime"`
	EndTime           int64             `json:"EndTime"`
	ScanBy            string            `json:"ScanBy"`
}

// getMetricDataOutput is the part of a GetMetricData answer Sluice reads.
type getMetricDataOutput struct {
	MetricDataResults []cloudWatchResult  `json:"MetricDataResults"`
	Messages          []cloudWatchMessage `json:"Messages"`
}

// cloudWatchResult is one returned series, newest point first.
type cloudWatchResult struct {
	ID         string              `json:"Id"`
	Label      string              `json:"Label"`
	Values     []awsDouble         `json:"Values"`
	StatusCode string              `json:"StatusCode"`
	Messages   []cloudWatchMessage `json:"Messages"`
}

// cloudWatchMessage is a note CloudWatch attaches to an answer or a series.
type cloudWatchMessage struct {
	Code  string `json:"Code"`
	Value string `json:"Value"`
}

// awsDouble is a number of an AWS JSON answer, where NaN and the
// infinities are the strings "NaN", "Infinity" and "-Infinity".
type awsDouble float64

// UnmarshalJSON reads a number or one of the three special strings.
func (d *awsDouble) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch s {
		case "NaN":
			*d = awsDouble(math.NaN())
		case "Infinity":
			*d = awsDouble(math.Inf(1))
		case "-Infinity":
			*d = awsDouble(math.Inf(-1))
		default:
			return fmt.Errorf("the value %q is not a number", s)
		}
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("the value %s is not a number", b)
	}
	*d = awsDouble(f)
	return nil
}

// RunQuery runs the MetricDataQuery array over the last ten intervals and
// returns the newest point of the one returned series with data. No
// series with data is ErrNoValues, NaN is ErrNaN, and several series with
// data are an error naming them.
func (c *CloudWatch) RunQuery(ctx context.Context, query string) (float64, error) {
	queries, err := parseCloudWatchQuery(query)
	if err != nil {
		return 0, err
	}
	end := c.now()
	out, err := c.getMetricData(ctx, queries, end.Add(-c.lookback), end)
	if err != nil {
		return 0, err
	}
	var withData []cloudWatchResult
	var failed, empty []string
	for _, r := range out.MetricDataResults {
		if r.StatusCode != "" && r.StatusCode != "Complete" && r.StatusCode != "PartialData" {
			failed = append(failed, fmt.Sprintf("%s: %s%s", r.ID, r.StatusCode, cloudWatchNotes(r.Messages)))
		}
		if len(r.Values) > 0 {
			withData = append(withData, r)
		} else {
			empty = append(empty, r.ID)
		}
	}
	switch {
	case len(failed) > 0:
		return 0, fmt.Errorf("cloudwatch at %s: the query failed: %s%s", c.endpoint, strings.Join(failed, "; "), cloudWatchNotes(out.Messages))
	case len(withData) == 0:
		detail := "no series"
		if len(empty) > 0 {
			detail = "no data points in series " + strings.Join(empty, ", ")
		}
		return 0, fmt.Errorf("%w: cloudwatch returned %s over the last %s%s", ErrNoValues, detail, c.lookback, cloudWatchNotes(out.Messages))
	case len(withData) > 1:
		ids := make([]string, len(withData))
		for i, r := range withData {
			ids[i] = r.ID
		}
		return 0, fmt.Errorf("the query returned %d series with data (%s), it must return exactly one: set \"ReturnData\": false on every MetricDataQuery but the one to compare",
			len(withData), strings.Join(ids, ", "))
	}
	v := float64(withData[0].Values[0])
	if math.IsNaN(v) {
		return 0, ErrNaN
	}
	return v, nil
}

// IsOnline sends a signed GetMetricData for a metric that does not exist:
// it needs only the permission the queries need, and an answer proves the
// endpoint, the region and the credentials. It is false, with the error,
// on any other answer than 2xx.
func (c *CloudWatch) IsOnline(ctx context.Context) (bool, error) {
	probe := []cloudWatchQuery{{
		ID: "online",
		MetricStat: &cloudWatchMetricStat{
			Metric: cloudWatchMetric{Namespace: "Sluice/OnlineCheck", MetricName: "None"},
			Period: 60,
			Stat:   "SampleCount",
		},
	}}
	end := c.now()
	if _, err := c.getMetricData(ctx, probe, end.Add(-5*time.Minute), end); err != nil {
		return false, err
	}
	return true, nil
}

// getMetricData sends one GetMetricData request and decodes its answer.
func (c *CloudWatch) getMetricData(ctx context.Context, queries []cloudWatchQuery, start, end time.Time) (*getMetricDataOutput, error) {
	body, err := json.Marshal(getMetricDataInput{
		MetricDataQueries: queries,
		StartTime:         start.Unix(),
		EndTime:           end.Unix(),
		ScanBy:            "TimestampDescending",
	})
	if err != nil {
		return nil, fmt.Errorf("cloudwatch: encoding the request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("cloudwatch: %w", err)
	}
	req.Header.Set("Content-Type", cloudWatchContentType)
	req.Header.Set("X-Amz-Target", cloudWatchTarget+"GetMetricData")
	answer, err := callAPI(c.client, req, "cloudwatch")
	if err != nil {
		return nil, err
	}
	var out getMetricDataOutput
	if err := json.Unmarshal(answer, &out); err != nil {
		return nil, fmt.Errorf("cloudwatch at %s: the answer is not a GetMetricData result: %w", c.endpoint, err)
	}
	return &out, nil
}

// cloudWatchNotes formats CloudWatch's messages for an error, or returns
// "" when there are none.
func cloudWatchNotes(msgs []cloudWatchMessage) string {
	if len(msgs) == 0 {
		return ""
	}
	notes := make([]string, len(msgs))
	for i, m := range msgs {
		notes[i] = strings.TrimSpace(m.Code + " " + m.Value)
	}
	return " (" + strings.Join(notes, "; ") + ")"
}

// awsTransport signs every request with SigV4 and rewrites AWS JSON error
// answers ({"__type": ..., "message": ...}) into "Code: message", so that
// callAPI's errors read well.
type awsTransport struct {
	base   http.RoundTripper
	signer sigv4Signer
}

// RoundTrip signs a copy of req and sends it.
func (t *awsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading the request body to sign it: %w", err)
		}
	}
	signed := req.Clone(req.Context())
	signed.Body, signed.GetBody, signed.ContentLength = http.NoBody, nil, int64(len(body))
	if len(body) > 0 {
		signed.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		signed.Body, _ = signed.GetBody()
	}
	t.signer.sign(signed, body, time.Now())
	resp, err := t.base.RoundTrip(signed)
	if err != nil || resp.StatusCode < 300 {
		return resp, err
	}
	return explainAWSError(resp), nil
}

// CloseIdleConnections closes the idle connections of the base transport.
func (t *awsTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// explainAWSError replaces the body of an AWS JSON error answer with its
// error code (the __type without namespace) and message. Other bodies are
// left as they are.
func explainAWSError(resp *http.Response) *http.Response {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	_ = resp.Body.Close()
	text := string(raw)
	if err == nil {
		var e struct {
			Type     string `json:"__type"`
			Message  string `json:"message"`
			MessageC string `json:"Message"`
		}
		_ = json.Unmarshal(raw, &e)
		code := e.Type
		if code == "" {
			code = resp.Header.Get("X-Amzn-ErrorType")
		}
		if i := strings.LastIndex(code, "#"); i >= 0 {
			code = code[i+1:]
		}
		code, _, _ = strings.Cut(code, ":")
		msg := e.Message
		if msg == "" {
			msg = e.MessageC
		}
		if code != "" || msg != "" {
			text = strings.TrimPrefix(strings.TrimSpace(code+": "+msg), ": ")
			text = strings.TrimSuffix(text, ":")
		}
	}
	resp.Body = io.NopCloser(strings.NewReader(text))
	resp.ContentLength = int64(len(text))
	return resp
}
