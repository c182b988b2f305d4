package metrics

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/fxamacker/cbor/v2"
)

// cloudWatchMaxPages bounds how many pages of one GetMetricData answer are
// read: enough to tell one series with data from several.
const cloudWatchMaxPages = 5

// CloudWatch runs GetMetricData queries against Amazon CloudWatch through
// the AWS SDK for Go v2 (github.com/aws/aws-sdk-go-v2/service/cloudwatch),
// which signs its requests and speaks the protocol CloudWatch's current
// service model names.
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
// address, or the SDK's regional endpoint.
//
// Requests go through the SDK's own HTTP client, shared by every
// CloudWatch template of a region (see awsConfigCache).
//
// Credentials: the Secret's aws_access_key_id and aws_secret_access_key
// (and aws_session_token for temporary keys) when it has them; otherwise
// the SDK's default chain, as Flagger's provider uses: the AWS_*
// environment, IRSA (web identity token), EKS Pod Identity and other
// container credentials, the shared config and credentials files
// (AWS_PROFILE), and the EC2 instance role. The credentials need
// cloudwatch:GetMetricData.
type CloudWatch struct {
	endpoint string
	lookback time.Duration
	client   *cloudwatch.Client
	now      func() time.Time
}

// awsRegion is the shape of an AWS region name (us-east-1, us-gov-west-1).
var awsRegion = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)+$`)

// NewCloudWatch returns a CloudWatch provider for cfg. The region is
// required; the credentials are read when the first query is signed.
func NewCloudWatch(cfg ProviderConfig) (*CloudWatch, error) {
	region := cfg.Region
	switch {
	case region == "":
		return nil, errors.New("cloudwatch: no region: set the MetricTemplate's provider.region (us-east-1, ...)")
	case !awsRegion.MatchString(region):
		return nil, fmt.Errorf("cloudwatch: %q is not an AWS region name (us-east-1, ...)", region)
	}
	static, err := awsStaticKeys(cfg)
	if err != nil {
		return nil, err
	}
	base, err := awsConfigs.get(awsConfigKey{region: region, timeout: queryTimeout(cfg), insecure: cfg.InsecureSkipVerify})
	if err != nil {
		return nil, err
	}
	awsCfg := base.Copy()
	if static != nil {
		awsCfg.Credentials = aws.NewCredentialsCache(static)
	}
	endpoint := strings.TrimSuffix(cfg.Address, "/")
	client := cloudwatch.NewFromConfig(awsCfg, func(o *cloudwatch.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		for k, vs := range cfg.Headers {
			for _, v := range vs {
				o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue(k, v))
			}
		}
	})
	if endpoint == "" {
		endpoint = "the regional endpoint of " + region
	}
	window := cfg.Window
	if window <= 0 {
		window = time.Minute
	}
	return &CloudWatch{endpoint: endpoint, lookback: lookbackIntervals * window, client: client, now: time.Now}, nil
}

// awsConfigKey names one loaded AWS configuration.
type awsConfigKey struct {
	region   string
	timeout  time.Duration
	insecure bool
}

// awsConfigCache keeps the AWS configuration loaded for each region,
// timeout and certificate policy: the SDK's default credential chain and
// its HTTP client (awshttp.BuildableClient, which the SDK needs to apply
// AWS_CA_BUNDLE and whose redirect policy follows only 307 and 308 and
// drops the session token towards another host). Every CloudWatch
// provider of a key shares one HTTP transport and one credentials cache,
// so that IRSA's token is traded once, not once per template.
type awsConfigCache struct {
	mu      sync.Mutex
	configs map[awsConfigKey]aws.Config
}

// awsConfigs is the process's cache.
var awsConfigs = &awsConfigCache{configs: map[awsConfigKey]aws.Config{}}

// get returns the configuration of key, loading it on the first use.
func (c *awsConfigCache) get(key awsConfigKey) (aws.Config, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cfg, ok := c.configs[key]; ok {
		return cfg, nil
	}
	httpClient := awshttp.NewBuildableClient().WithTimeout(key.timeout).WithTransportOptions(func(tr *http.Transport) {
		tr.TLSHandshakeTimeout = tlsHandshakeTimeout
		tr.ResponseHeaderTimeout = responseHeaderTimeout
		tr.IdleConnTimeout = idleConnTimeout
		if key.insecure {
			if tr.TLSClientConfig == nil {
				tr.TLSClientConfig = &tls.Config{}
			}
			tr.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // the user asked for it with insecureSkipVerify
		}
	}).WithDialerOptions(func(d *net.Dialer) { d.Timeout = dialTimeout })
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(key.region), config.WithHTTPClient(httpClient))
	if err != nil {
		return aws.Config{}, fmt.Errorf("cloudwatch: reading the AWS configuration: %w", err)
	}
	cfg.HTTPClient = wellFormedCBOR{next: cfg.HTTPClient}
	c.configs[key] = cfg
	return cfg, nil
}

// wellFormedCBOR wraps the SDK's HTTP client of CloudWatch with checks the
// SDK's decoder lacks: a successful answer is read up to maxAnswer and
// must be one well-formed CBOR data item, since the decoder reads the
// items of a truncated answer as if it were whole.
type wellFormedCBOR struct{ next aws.HTTPClient }

// Do sends req and checks a successful answer's body.
func (c wellFormedCBOR) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.next.Do(req)
	if err != nil || resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	_ = resp.Body.Close()
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading the answer: %w", err)
	case len(body) > maxAnswer:
		return nil, finalError{fmt.Errorf("the answer is larger than %d bytes", maxAnswer)}
	case len(body) > 0:
		if err := cbor.Wellformed(body); err != nil {
			return nil, finalError{fmt.Errorf("the answer is not well-formed CBOR: %w", err)}
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// finalError is an error the SDK must not retry: the same request would
// get the same answer.
type finalError struct{ error }

// RetryableError tells the SDK's retryer not to retry.
func (finalError) RetryableError() bool { return false }

// Unwrap returns the error.
func (e finalError) Unwrap() error { return e.error }

// reset forgets every configuration, for tests that change the
// environment.
func (c *awsConfigCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.configs = map[awsConfigKey]aws.Config{}
}

// awsStaticKeys returns the credentials of the Secret, nil when it has no
// AWS keys (the default chain applies), or an error for an incomplete
// pair.
func awsStaticKeys(cfg ProviderConfig) (aws.CredentialsProvider, error) {
	get := func(k string) string { v, _ := cfg.credential(k); return strings.TrimSpace(v) }
	id, secret, token := get("aws_access_key_id"), get("aws_secret_access_key"), get("aws_session_token")
	switch {
	case id == "" && secret == "" && token == "":
		return nil, nil
	case id == "":
		return nil, errors.New("cloudwatch: the secret has no aws_access_key_id (it has other AWS keys)")
	case secret == "":
		return nil, errors.New("cloudwatch: the secret has aws_access_key_id but no aws_secret_access_key")
	}
	return credentials.NewStaticCredentialsProvider(id, secret, token), nil
}

// cloudWatchQuery is one MetricDataQuery as a template writes it.
type cloudWatchQuery struct {
	ID         string                `json:"Id"`
	Expression string                `json:"Expression,omitempty"`
	Label      string                `json:"Label,omitempty"`
	MetricStat *cloudWatchMetricStat `json:"MetricStat,omitempty"`
	Period     int32                 `json:"Period,omitempty"`
	ReturnData *bool                 `json:"ReturnData,omitempty"`
	AccountID  string                `json:"AccountId,omitempty"`
}

// cloudWatchMetricStat is a metric and the statistic to read from it.
type cloudWatchMetricStat struct {
	Metric cloudWatchMetric `json:"Metric"`
	Period int32            `json:"Period"`
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
func parseCloudWatchQuery(query string) ([]cwtypes.MetricDataQuery, error) {
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
	out := make([]cwtypes.MetricDataQuery, 0, len(queries))
	for i, q := range queries {
		switch {
		case q.ID == "":
			return nil, fmt.Errorf("cloudwatch: MetricDataQuery %d of the query has no Id", i+1)
		case q.Expression == "" && q.MetricStat == nil:
			return nil, fmt.Errorf("cloudwatch: MetricDataQuery %q has neither Expression nor MetricStat", q.ID)
		}
		out = append(out, q.sdk())
	}
	return out, nil
}

// sdk converts the query into the SDK's type.
func (q cloudWatchQuery) sdk() cwtypes.MetricDataQuery {
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return aws.String(s)
	}
	num := func(n int32) *int32 {
		if n == 0 {
			return nil
		}
		return aws.Int32(n)
	}
	out := cwtypes.MetricDataQuery{
		Id: aws.String(q.ID), Expression: str(q.Expression), Label: str(q.Label),
		Period: num(q.Period), ReturnData: q.ReturnData, AccountId: str(q.AccountID),
	}
	if ms := q.MetricStat; ms != nil {
		m := &cwtypes.Metric{Namespace: str(ms.Metric.Namespace), MetricName: str(ms.Metric.MetricName)}
		for _, d := range ms.Metric.Dimensions {
			m.Dimensions = append(m.Dimensions, cwtypes.Dimension{Name: aws.String(d.Name), Value: aws.String(d.Value)})
		}
		out.MetricStat = &cwtypes.MetricStat{Metric: m, Period: aws.Int32(ms.Period), Stat: aws.String(ms.Stat), Unit: cwtypes.StandardUnit(ms.Unit)}
	}
	return out
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
	results, notes, err := c.getMetricData(ctx, queries, end.Add(-c.lookback), end)
	if err != nil {
		return 0, err
	}
	return pickCloudWatchValue(results, notes, c.lookback)
}

// pickCloudWatchValue returns the newest point of the one series with data
// among results (newest point first, as ScanBy TimestampDescending asks).
func pickCloudWatchValue(results []cwtypes.MetricDataResult, notes []cwtypes.MessageData, lookback time.Duration) (float64, error) {
	var withData []cwtypes.MetricDataResult
	var failed, empty []string
	for _, r := range results {
		id := aws.ToString(r.Id)
		if r.StatusCode != "" && r.StatusCode != cwtypes.StatusCodeComplete && r.StatusCode != cwtypes.StatusCodePartialData {
			failed = append(failed, fmt.Sprintf("%s: %s%s", id, r.StatusCode, cloudWatchNotes(r.Messages)))
		}
		if len(r.Values) > 0 {
			withData = append(withData, r)
		} else {
			empty = append(empty, id)
		}
	}
	switch {
	case len(failed) > 0:
		return 0, fmt.Errorf("cloudwatch: the query failed: %s%s", strings.Join(failed, "; "), cloudWatchNotes(notes))
	case len(withData) == 0:
		detail := "no series"
		if len(empty) > 0 {
			detail = "no data points in series " + strings.Join(empty, ", ")
		}
		return 0, fmt.Errorf("%w: cloudwatch returned %s over the last %s%s", ErrNoValues, detail, lookback, cloudWatchNotes(notes))
	case len(withData) > 1:
		ids := make([]string, len(withData))
		for i, r := range withData {
			ids[i] = aws.ToString(r.Id)
		}
		return 0, fmt.Errorf("the query returned %d series with data (%s), it must return exactly one: set \"ReturnData\": false on every MetricDataQuery but the one to compare",
			len(withData), strings.Join(ids, ", "))
	}
	v := withData[0].Values[0]
	if math.IsNaN(v) {
		return 0, ErrNaN
	}
	return v, nil
}

// IsOnline sends a GetMetricData for a metric that does not exist: it
// needs only the permission the queries need, and an answer proves the
// endpoint, the region and the credentials.
func (c *CloudWatch) IsOnline(ctx context.Context) (bool, error) {
	probe := cloudWatchQuery{
		ID:         "online",
		MetricStat: &cloudWatchMetricStat{Metric: cloudWatchMetric{Namespace: "Sluice/OnlineCheck", MetricName: "None"}, Period: 60, Stat: "SampleCount"},
	}
	end := c.now()
	if _, _, err := c.getMetricData(ctx, []cwtypes.MetricDataQuery{probe.sdk()}, end.Add(-5*time.Minute), end); err != nil {
		return false, err
	}
	return true, nil
}

// getMetricData runs GetMetricData, following up to cloudWatchMaxPages
// pages, and returns the series (the points of a series split over pages
// joined) and the answer's messages.
func (c *CloudWatch) getMetricData(ctx context.Context, queries []cwtypes.MetricDataQuery, start, end time.Time) ([]cwtypes.MetricDataResult, []cwtypes.MessageData, error) {
	in := &cloudwatch.GetMetricDataInput{
		MetricDataQueries: queries,
		StartTime:         aws.Time(start),
		EndTime:           aws.Time(end),
		ScanBy:            cwtypes.ScanByTimestampDescending,
	}
	var results []cwtypes.MetricDataResult
	var notes []cwtypes.MessageData
	index := map[string]int{}
	for page := 0; page < cloudWatchMaxPages; page++ {
		out, err := c.client.GetMetricData(ctx, in)
		if err != nil {
			return nil, nil, c.explain(err)
		}
		notes = append(notes, out.Messages...)
		for _, r := range out.MetricDataResults {
			id := aws.ToString(r.Id)
			if i, ok := index[id]; ok {
				results[i].Values = append(results[i].Values, r.Values...)
				results[i].Messages = append(results[i].Messages, r.Messages...)
				if r.StatusCode != cwtypes.StatusCodeComplete {
					results[i].StatusCode = r.StatusCode
				}
				continue
			}
			index[id] = len(results)
			results = append(results, r)
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	return results, notes, nil
}

// explain turns an SDK error into one that says what failed and what to
// check.
func (c *CloudWatch) explain(err error) error {
	where := "cloudwatch at " + c.endpoint
	var apiErr smithy.APIError
	var respErr *awshttp.ResponseError
	status := 0
	if errors.As(err, &respErr) {
		status = respErr.HTTPStatusCode()
	}
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("%s: %w", where, err)
	}
	msg := strings.TrimSuffix(strings.TrimPrefix(apiErr.ErrorCode()+": "+apiErr.ErrorMessage(), ": "), ": ")
	var hint string
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		hint = " (check the AWS credentials: the MetricTemplate's Secret or Sluice's role, and that they allow cloudwatch:GetMetricData)"
	case status == http.StatusTooManyRequests || strings.Contains(apiErr.ErrorCode(), "Throttl"):
		hint = " (CloudWatch is rate limiting the queries)"
	}
	if status != 0 {
		return fmt.Errorf("%s: %d %s: %s%s", where, status, http.StatusText(status), msg, hint)
	}
	return fmt.Errorf("%s: %s%s", where, msg, hint)
}

// cloudWatchNotes formats CloudWatch's messages for an error, or returns
// "" when there are none.
func cloudWatchNotes(msgs []cwtypes.MessageData) string {
	if len(msgs) == 0 {
		return ""
	}
	notes := make([]string, len(msgs))
	for i, m := range msgs {
		notes[i] = strings.TrimSpace(aws.ToString(m.Code) + " " + aws.ToString(m.Value))
	}
	return " (" + strings.Join(notes, "; ") + ")"
}
