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
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

const (
	// stackdriverScope is the OAuth 2.0 scope that lets a token read Cloud
	// Monitoring data (timeSeries.query, metricDescriptors.list).
	stackdriverScope = "https://www.googleapis.com/auth/monitoring.read"
	// stackdriverDefaultAddress is the Cloud Monitoring API.
	stackdriverDefaultAddress = "https://monitoring.googleapis.com"
	// stackdriverMaxPages bounds how many pages of one answer are read:
	// enough to tell one series from several.
	stackdriverMaxPages = 10
)

// Stackdriver runs Monitoring Query Language (MQL) queries through Google
// Cloud Monitoring's timeSeries.query method (POST
// /v3/projects/<project>/timeSeries:query with {"query": ...}), as
// Flagger's stackdriver provider does, with OAuth 2.0 tokens from
// golang.org/x/oauth2/google.
//
// The query carries its own time range (within, every, align), as in
// Flagger. The answer must hold exactly one time series with points; the
// first value column of its newest point is the result, a double or an
// int64. No series is ErrNoValues, NaN is ErrNaN and several series are an
// error naming their labels (fold them with group_by []).
//
// Secret keys, as in Flagger: project, the project ID (required), and
// serviceAccountKey, a service account JSON key (optional; only keys of
// type service_account are accepted from a Secret). Without a key, Sluice
// uses Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS in
// its environment, gcloud's well-known file, or the GCE/GKE metadata
// server (workload identity; GCE_METADATA_HOST replaces
// metadata.google.internal). Tokens carry the monitoring.read scope and
// are kept until shortly before they expire. The account needs
// roles/monitoring.viewer.
//
// The provider's address replaces https://monitoring.googleapis.com.
type Stackdriver struct {
	address string
	project string
	client  *http.Client
}

// NewStackdriver returns a Stackdriver provider for cfg. The Secret's
// project is required; the credentials are found when the provider is
// built and tokens are fetched when the first query is sent.
func NewStackdriver(cfg ProviderConfig) (*Stackdriver, error) {
	project, _ := cfg.credential("project")
	project = strings.TrimSpace(project)
	if project == "" {
		return nil, errors.New("stackdriver: the MetricTemplate's secretRef Secret has no project (the Google Cloud project ID)")
	}
	// The token endpoint gets neither the template's headers nor its
	// insecureSkipVerify, and is not redirected to another host either.
	tokenClient := &http.Client{Timeout: queryTimeout(cfg), Transport: sharedTransport(cfg.Type, false), CheckRedirect: sameHostRedirects}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, tokenClient)
	var creds *google.Credentials
	var err error
	if raw, ok := cfg.credential("serviceAccountKey"); ok && strings.TrimSpace(raw) != "" {
		creds, err = google.CredentialsFromJSONWithType(ctx, []byte(raw), google.ServiceAccount, stackdriverScope)
		if err != nil {
			return nil, fmt.Errorf("stackdriver: serviceAccountKey is not a service account JSON key: %w", err)
		}
	} else {
		creds, err = google.FindDefaultCredentials(ctx, stackdriverScope)
		if err != nil {
			return nil, fmt.Errorf("stackdriver: the Secret has no serviceAccountKey and Sluice found no Application Default Credentials "+
				"(workload identity, GOOGLE_APPLICATION_CREDENTIALS): %w", err)
		}
	}
	address := strings.TrimSuffix(cfg.Address, "/")
	if address == "" {
		address = stackdriverDefaultAddress
	}
	client := newHTTPClient(cfg, address, nil)
	// Authorize below the transport that adds the template's headers, so
	// that the token wins over a header of the same name.
	ht := client.Transport.(*headerTransport)
	ht.base = &oauth2.Transport{Source: tokenSource{creds.TokenSource}, Base: ht.base}
	return &Stackdriver{address: address, project: project, client: client}, nil
}

// stackdriverQueryRequest is the body of a timeSeries.query request.
type stackdriverQueryRequest struct {
	Query     string `json:"query"`
	PageToken string `json:"pageToken,omitempty"`
}

// stackdriverQueryAnswer is the part of a timeSeries.query answer Sluice
// reads.
type stackdriverQueryAnswer struct {
	TimeSeriesDescriptor struct {
		LabelDescriptors []struct {
			Key string `json:"key"`
		} `json:"labelDescriptors"`
	} `json:"timeSeriesDescriptor"`
	TimeSeriesData []stackdriverSeries `json:"timeSeriesData"`
	NextPageToken  string              `json:"nextPageToken"`
	PartialErrors  []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"partialErrors"`
}

// stackdriverSeries is one time series of an answer.
type stackdriverSeries struct {
	LabelValues []map[string]json.RawMessage `json:"labelValues"`
	PointData   []stackdriverPoint           `json:"pointData"`
}

// stackdriverPoint is one point: a value per value column and its time.
type stackdriverPoint struct {
	Values       []stackdriverValue `json:"values"`
	TimeInterval struct {
		EndTime string `json:"endTime"`
	} `json:"timeInterval"`
}

// stackdriverValue is a TypedValue; exactly one field is set.
type stackdriverValue struct {
	DoubleValue       *protoNumber    `json:"doubleValue"`
	Int64Value        *protoNumber    `json:"int64Value"`
	BoolValue         *bool           `json:"boolValue"`
	StringValue       *string         `json:"stringValue"`
	DistributionValue json.RawMessage `json:"distributionValue"`
}

// protoNumber is a number in Google's JSON mapping of protocol buffers:
// int64 values are strings, and NaN and the infinities of doubles are the
// strings "NaN", "Infinity" and "-Infinity".
type protoNumber float64

// UnmarshalJSON reads a JSON number or a string holding one.
func (n *protoNumber) UnmarshalJSON(b []byte) error {
	text := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &text); err != nil {
			return err
		}
	}
	var f float64
	switch text {
	case "NaN":
		f = math.NaN()
	case "Infinity":
		f = math.Inf(1)
	case "-Infinity":
		f = math.Inf(-1)
	default:
		var err error
		if f, err = strconv.ParseFloat(text, 64); err != nil {
			return fmt.Errorf("the value %s is not a number", b)
		}
	}
	*n = protoNumber(f)
	return nil
}

// number returns the value as a float64, or an error saying what it is
// instead.
func (v stackdriverValue) number() (float64, error) {
	switch {
	case v.DoubleValue != nil:
		return float64(*v.DoubleValue), nil
	case v.Int64Value != nil:
		return float64(*v.Int64Value), nil
	case v.BoolValue != nil:
		return 0, fmt.Errorf("the value is the boolean %t, not a number", *v.BoolValue)
	case v.StringValue != nil:
		return 0, fmt.Errorf("the value is the string %q, not a number", *v.StringValue)
	case len(v.DistributionValue) > 0:
		return 0, errors.New("the value is a distribution, not a number: reduce it, with percentile(...) or mean(...)")
	}
	return 0, errors.New("the point has an empty value")
}

// RunQuery runs the MQL query and returns the newest value of the one time
// series it must yield.
func (s *Stackdriver) RunQuery(ctx context.Context, query string) (float64, error) {
	mql := strings.TrimSpace(query)
	if mql == "" {
		return 0, errors.New("stackdriver: the query is empty; it must be an MQL query (fetch <resource> | metric <type> | ...)")
	}
	var withData []stackdriverSeries
	var labelKeys, partial []string
	pageToken := ""
	for page := 0; page < stackdriverMaxPages; page++ {
		answer, err := s.query(ctx, stackdriverQueryRequest{Query: mql, PageToken: pageToken})
		if err != nil {
			return 0, err
		}
		if page == 0 {
			for _, d := range answer.TimeSeriesDescriptor.LabelDescriptors {
				labelKeys = append(labelKeys, d.Key)
			}
		}
		for _, e := range answer.PartialErrors {
			partial = append(partial, strings.TrimSpace(fmt.Sprintf("%s (code %d)", e.Message, e.Code)))
		}
		for _, ts := range answer.TimeSeriesData {
			if len(ts.PointData) > 0 {
				withData = append(withData, ts)
			}
		}
		pageToken = answer.NextPageToken
		if pageToken == "" || len(withData) > 1 {
			break
		}
	}
	var notes string
	if len(partial) > 0 {
		notes = " (partial errors: " + strings.Join(partial, "; ") + ")"
	}
	switch {
	case len(withData) == 0:
		return 0, fmt.Errorf("%w: stackdriver returned no time series with points%s", ErrNoValues, notes)
	case len(withData) > 1:
		shown := make([]string, 0, 6)
		for i, ts := range withData {
			if i == 5 {
				shown = append(shown, "...")
				break
			}
			shown = append(shown, seriesName(labelKeys, ts.LabelValues))
		}
		more := ""
		if pageToken != "" {
			more = " or more"
		}
		return 0, fmt.Errorf("the query returned %d%s time series, it must return exactly one (fold them with | group_by [] ...): %s",
			len(withData), more, strings.Join(shown, ", "))
	}
	point := newestPoint(withData[0].PointData)
	if len(point.Values) == 0 {
		return 0, fmt.Errorf("%w: the newest point of the time series has no values%s", ErrNoValues, notes)
	}
	v, err := point.Values[0].number()
	if err != nil {
		return 0, fmt.Errorf("stackdriver: %w", err)
	}
	if math.IsNaN(v) {
		return 0, ErrNaN
	}
	return v, nil
}

// newestPoint returns the point with the latest end time; the first one
// (MQL answers newest first) when the times do not parse.
func newestPoint(points []stackdriverPoint) stackdriverPoint {
	best := 0
	var bestEnd time.Time
	for i, p := range points {
		end, err := time.Parse(time.RFC3339Nano, p.TimeInterval.EndTime)
		if err != nil {
			continue
		}
		if bestEnd.IsZero() || end.After(bestEnd) {
			best, bestEnd = i, end
		}
	}
	return points[best]
}

// seriesName formats a series' labels as {key=value, ...}.
func seriesName(keys []string, values []map[string]json.RawMessage) string {
	parts := make([]string, 0, len(values))
	for i, lv := range values {
		var value string
		for _, raw := range lv {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				s = string(raw)
			}
			value = s
		}
		key := fmt.Sprintf("label%d", i+1)
		if i < len(keys) {
			key = keys[i]
		}
		parts = append(parts, key+"="+value)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// query sends one timeSeries.query request and decodes its answer.
func (s *Stackdriver) query(ctx context.Context, body stackdriverQueryRequest) (*stackdriverQueryAnswer, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("stackdriver: encoding the request: %w", err)
	}
	endpoint := s.address + "/v3/projects/" + url.PathEscape(s.project) + "/timeSeries:query"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("stackdriver: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	answer, err := s.call(req)
	if err != nil {
		return nil, err
	}
	var out stackdriverQueryAnswer
	if err := json.Unmarshal(answer, &out); err != nil {
		return nil, fmt.Errorf("stackdriver at %s: the answer is not a timeSeries.query result: %w", s.address, err)
	}
	return &out, nil
}

// IsOnline lists one metric descriptor of the project: it proves the
// address, the project and the credentials with the permissions the
// queries need (roles/monitoring.viewer).
func (s *Stackdriver) IsOnline(ctx context.Context) (bool, error) {
	endpoint := s.address + "/v3/projects/" + url.PathEscape(s.project) + "/metricDescriptors?pageSize=1"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return false, fmt.Errorf("stackdriver: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if _, err := s.call(req); err != nil {
		return false, err
	}
	return true, nil
}

// call sends req and returns the body of a 2xx answer. A failed token
// fetch and Google's JSON error answers ({"error": {"code", "message",
// "status"}}) become errors that say what failed.
func (s *Stackdriver) call(req *http.Request) ([]byte, error) {
	where := "stackdriver at " + req.URL.Scheme + "://" + req.URL.Host
	resp, err := s.client.Do(req)
	if err != nil {
		var te tokenError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("stackdriver: getting an access token failed (check serviceAccountKey, or the workload identity of Sluice's service account): %w", te.err)
		}
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the answer: %w", where, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return body, nil
	}
	var e struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && (e.Error.Message != "" || e.Error.Status != "") {
		body = []byte(strings.TrimSuffix(strings.TrimPrefix(e.Error.Status+": "+e.Error.Message, ": "), ": "))
	}
	return nil, statusError(where, resp, body)
}

// tokenSource marks the errors of a token source, so that a failed token
// fetch reads as such rather than as a failed request to the API.
type tokenSource struct{ src oauth2.TokenSource }

// Token returns a token of the source, or its error as a tokenError.
func (s tokenSource) Token() (*oauth2.Token, error) {
	t, err := s.src.Token()
	if err != nil {
		return nil, tokenError{err}
	}
	return t, nil
}

// tokenError is an error of a token source.
type tokenError struct{ err error }

func (e tokenError) Error() string { return e.err.Error() }
func (e tokenError) Unwrap() error { return e.err }
