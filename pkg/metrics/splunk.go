package metrics

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// splunkTokenHeader carries a Splunk Observability access token.
const splunkTokenHeader = "X-SF-Token"

// maxSignalFlowEvent bounds one line of a SignalFlow event stream.
const maxSignalFlowEvent = 1 << 20

// Splunk runs SignalFlow programs against Splunk Observability Cloud
// (formerly SignalFx), as Flagger's splunk provider does, over
// SignalFlow's HTTP API: POST <stream>/v2/signalflow/execute with the
// program as the body and start, stop (milliseconds since the epoch) and
// immediate=true in the query, answered with a stream of server-sent
// events (control-message, metadata, data, message, error). Flagger uses
// the WebSocket API through signalflow-client-go; the HTTP API carries
// the same messages as JSON, so that Sluice reads them with the standard
// library, over its shared transport, its timeouts and its redirect
// policy, and a malformed frame is an error instead of a crash.
//
// The range ends now and starts ten metric intervals earlier, as in
// Flagger. The value is the newest non-null point; points of more than
// one time series (tsId) are an error, as in Flagger (publish a single
// stream, for example with .sum()). No point is ErrNoValues.
//
// The provider's address is required, as in Flagger: the realm's API
// (https://api.<realm>.signalfx.com) or stream
// (wss://stream.<realm>.signalfx.com) endpoint. Programs go to the stream
// host (api. becomes stream., ws becomes http) and the online check, GET
// /v2/metric?limit=1, to the API host.
//
// Secret keys, as in Flagger: sf_token_key, an access token with the API
// scope, sent as X-SF-Token.
type Splunk struct {
	stream   string // base URL of the SignalFlow API
	api      string // base URL of the REST API
	lookback time.Duration
	client   *http.Client // for the stream host
	apiHTTP  *http.Client // for the API host
	now      func() time.Time
}

// NewSplunk returns a Splunk provider for cfg. The address and the token
// are required.
func NewSplunk(cfg ProviderConfig) (*Splunk, error) {
	if strings.TrimSpace(cfg.Address) == "" {
		return nil, errors.New("splunk: no address: set the MetricTemplate's provider.address to the realm's API, https://api.<realm>.signalfx.com")
	}
	token, ok := cfg.credential("sf_token_key")
	if !ok || strings.TrimSpace(token) == "" {
		return nil, errors.New("splunk: the secret has no sf_token_key")
	}
	stream, api, err := splunkEndpoints(cfg.Address)
	if err != nil {
		return nil, err
	}
	window := cfg.Window
	if window <= 0 {
		window = time.Minute
	}
	auth := func(h http.Header) { h.Set(splunkTokenHeader, token) }
	streamCfg, apiCfg := cfg, cfg
	streamCfg.Address, apiCfg.Address = stream, api
	return &Splunk{
		stream: stream, api: api,
		lookback: lookbackIntervals * window,
		client:   newHTTPClient(streamCfg, stream, auth),
		apiHTTP:  newHTTPClient(apiCfg, api, auth),
		now:      time.Now,
	}, nil
}

// splunkEndpoints derives the SignalFlow and REST base URLs from an
// address of either: ws(s) becomes http(s), and a host name starting with
// api. or stream. is switched to the other for the other endpoint.
func splunkEndpoints(address string) (stream, api string, err error) {
	u, err := url.Parse(strings.TrimSuffix(strings.TrimSpace(address), "/"))
	if err != nil || u.Host == "" {
		return "", "", fmt.Errorf("splunk: the address %q is not a URL such as https://api.us1.signalfx.com", address)
	}
	switch u.Scheme {
	case "https", "http":
	case "wss":
		u.Scheme = "https"
	case "ws":
		u.Scheme = "http"
	default:
		return "", "", fmt.Errorf("splunk: the address %q is not an http(s) or ws(s) URL", address)
	}
	u.RawQuery, u.Fragment = "", ""
	s, a := *u, *u
	switch host := u.Hostname(); {
	case strings.HasPrefix(host, "api."):
		s.Host = "stream." + strings.TrimPrefix(u.Host, "api.")
	case strings.HasPrefix(host, "stream."):
		a.Host = "api." + strings.TrimPrefix(u.Host, "stream.")
	}
	s.Path = strings.TrimSuffix(strings.TrimSuffix(s.Path, "/v2/signalflow"), "/")
	a.Path = s.Path
	return s.String(), a.String(), nil
}

// RunQuery executes the SignalFlow program over the last ten intervals
// and returns its newest value.
func (s *Splunk) RunQuery(ctx context.Context, query string) (float64, error) {
	program := strings.TrimSpace(query)
	if program == "" {
		return 0, errors.New("splunk: the query is empty; it must be a SignalFlow program such as data('demo.trans.latency').mean().publish()")
	}
	stop := s.now()
	params := url.Values{
		"start":     {strconv.FormatInt(stop.Add(-s.lookback).UnixMilli(), 10)},
		"stop":      {strconv.FormatInt(stop.UnixMilli(), 10)},
		"immediate": {"true"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.stream+"/v2/signalflow/execute?"+params.Encode(), strings.NewReader(program))
	if err != nil {
		return 0, fmt.Errorf("splunk: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Accept", "text/event-stream")
	where := "splunk at " + req.URL.Scheme + "://" + req.URL.Host
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", where, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body := io.LimitReader(resp.Body, maxAnswer)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		raw, _ := io.ReadAll(body)
		return 0, statusError(where, resp, signalFlowErrorBody(raw))
	}
	v, err := readSignalFlow(body)
	if err != nil && !errors.Is(err, ErrNoValues) {
		return 0, fmt.Errorf("%s: %w", where, err)
	}
	return v, err
}

// signalFlowErrorBody returns the message of a JSON error answer
// ({"message": ..., "errorType": ...}), or the body as it is.
func signalFlowErrorBody(raw []byte) []byte {
	var e struct {
		Message   string `json:"message"`
		ErrorType string `json:"errorType"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Message != "" {
		return []byte(strings.TrimPrefix(e.ErrorType+": "+e.Message, ": "))
	}
	return raw
}

// signalFlowPoint is one value of a data message.
type signalFlowPoint struct {
	TSID  string          `json:"tsId"`
	Value json.RawMessage `json:"value"`
}

// readSignalFlow reads a SignalFlow event stream to its end and returns
// the newest non-null value of the one time series it carries.
func readSignalFlow(r io.Reader) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxSignalFlowEvent)
	st := signalFlowStream{series: map[string]bool{}, names: map[string]string{}}
	var event string
	var data bytes.Buffer
	dispatch := func() error {
		defer func() { event = ""; data.Reset() }()
		if data.Len() == 0 {
			return nil
		}
		return st.handle(event, data.Bytes())
	}
	for !st.done && sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if err := dispatch(); err != nil {
				return 0, err
			}
		case strings.HasPrefix(line, ":"): // a comment, such as a keep-alive
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				event = value
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.WriteString(value)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("reading the SignalFlow stream: %w", err)
	}
	if !st.done {
		if err := dispatch(); err != nil {
			return 0, err
		}
	}
	return st.result()
}

// signalFlowStream is what the events of a SignalFlow stream have told so
// far.
type signalFlowStream struct {
	// last is the newest non-null value; series holds the tsIds that
	// carried one, names their readable names from the metadata.
	last   *float64
	series map[string]bool
	names  map[string]string
	// infos are the codes of the informational messages, to explain an
	// empty answer.
	infos []string
	// done is set by the end of the channel.
	done bool
}

// handle takes one event of the stream, its type and its data.
func (st *signalFlowStream) handle(event string, data []byte) error {
	switch event {
	case "data":
		return st.handleData(data)
	case "metadata":
		var msg struct {
			TSID       string         `json:"tsId"`
			Properties map[string]any `json:"properties"`
		}
		if json.Unmarshal(data, &msg) == nil && msg.TSID != "" {
			st.names[msg.TSID] = signalFlowSeriesName(msg.Properties)
		}
	case "control-message":
		return st.handleControl(data)
	case "error":
		return signalFlowError(data)
	case "message":
		var msg struct {
			Message struct {
				MessageCode string `json:"messageCode"`
			} `json:"message"`
		}
		if json.Unmarshal(data, &msg) == nil && msg.Message.MessageCode != "" {
			st.infos = append(st.infos, msg.Message.MessageCode)
		}
	}
	return nil
}

// handleData records the points of a data message.
func (st *signalFlowStream) handleData(data []byte) error {
	var msg struct {
		Data []signalFlowPoint `json:"data"`
	}
	if err := json.Unmarshal(data, &msg); err != nil {
		return fmt.Errorf("a data message is not JSON of the SignalFlow stream: %w", err)
	}
	for _, p := range msg.Data {
		v, ok, err := signalFlowValue(p.Value)
		if err != nil {
			return fmt.Errorf("time series %s: %w", p.TSID, err)
		}
		if ok {
			st.series[p.TSID] = true
			st.last = &v
		}
	}
	return nil
}

// handleControl notes the end of the channel and fails on its abort.
func (st *signalFlowStream) handleControl(data []byte) error {
	var msg struct {
		Event     string         `json:"event"`
		AbortInfo map[string]any `json:"abortInfo"`
	}
	if err := json.Unmarshal(data, &msg); err != nil {
		return fmt.Errorf("a control message is not JSON of the SignalFlow stream: %w", err)
	}
	switch msg.Event {
	case "END_OF_CHANNEL":
		st.done = true
	case "CHANNEL_ABORT":
		info, _ := json.Marshal(msg.AbortInfo)
		return fmt.Errorf("the computation was aborted: %s", info)
	}
	return nil
}

// signalFlowError is the error an error event reports, shortened.
func signalFlowError(data []byte) error {
	var msg struct {
		Errors []map[string]any `json:"errors"`
	}
	_ = json.Unmarshal(data, &msg)
	detail, _ := json.Marshal(msg.Errors)
	if len(msg.Errors) == 0 {
		detail = []byte(strings.Join(strings.Fields(string(data)), " "))
	}
	if len(detail) > 300 {
		detail = append(detail[:300], "..."...)
	}
	return fmt.Errorf("the program failed: %s", detail)
}

// result is the value the stream answered: the newest point of its one
// time series.
func (st *signalFlowStream) result() (float64, error) {
	switch {
	case len(st.series) > 1:
		ids := make([]string, 0, len(st.series))
		for id := range st.series {
			if n := st.names[id]; n != "" {
				id += " " + n
			}
			ids = append(ids, id)
		}
		sort.Strings(ids)
		if len(ids) > 5 {
			ids = append(ids[:5], "...")
		}
		return 0, fmt.Errorf("the program returned %d time series, it must return exactly one (aggregate them, for example with .sum()): %s", len(st.series), strings.Join(ids, ", "))
	case st.last == nil:
		detail := ""
		if len(st.infos) > 0 {
			detail = " (" + strings.Join(st.infos, ", ") + ")"
		}
		return 0, fmt.Errorf("%w: the SignalFlow program published no data point%s", ErrNoValues, detail)
	case math.IsNaN(*st.last):
		return 0, ErrNaN
	}
	return *st.last, nil
}

// signalFlowValue reads a point's value: a number, or null (no value).
func signalFlowValue(raw json.RawMessage) (float64, bool, error) {
	text := strings.TrimSpace(string(raw))
	if text == "" || text == "null" {
		return 0, false, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, false, fmt.Errorf("the value %s is not a number", text)
	}
	v, err := n.Float64()
	if err != nil {
		return 0, false, fmt.Errorf("the value %s is not a number", text)
	}
	return v, true, nil
}

// signalFlowSeriesName names a time series by its metric and dimensions,
// for an error message.
func signalFlowSeriesName(props map[string]any) string {
	keys := make([]string, 0, len(props))
	for k := range props {
		if !strings.HasPrefix(k, "sf_") || k == "sf_originatingMetric" || k == "sf_metric" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, props[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// IsOnline lists one metric of the organization with the token: GET
// /v2/metric?limit=1 on the API host, as Flagger does.
func (s *Splunk) IsOnline(ctx context.Context) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.api+"/v2/metric?limit=1", nil)
	if err != nil {
		return false, fmt.Errorf("splunk: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if _, err := callAPI(s.apiHTTP, req, "splunk"); err != nil {
		return false, err
	}
	return true, nil
}
