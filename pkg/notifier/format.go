package notifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// defaultTimeout bounds one request of a notifier used on its own; the
// Dispatcher sets its own deadline per attempt.
const defaultTimeout = 5 * time.Second

// style is how a severity looks in each service.
type style struct {
	// hex is the colour as RRGGBB.
	hex string
	// slack is Slack's named attachment colour.
	slack string
	// emoji is a Unicode emoji.
	emoji string
	// teams is the Adaptive Card container style.
	teams string
}

// styleOf returns the look of a severity: green for info, amber for warn,
// red for error.
func styleOf(s Severity) style {
	switch s {
	case flaggerv1beta1.SeverityError:
		return style{hex: "E01E5A", slack: "danger", emoji: "\u274C", teams: "attention"}
	case flaggerv1beta1.SeverityWarn:
		return style{hex: "ECB22E", slack: "warning", emoji: "\u26A0\uFE0F", teams: "warning"}
	default:
		return style{hex: "2EB67D", slack: "good", emoji: "\u2139\uFE0F", teams: "good"}
	}
}

// fact is one labelled value shown under a message.
type fact struct {
	Title string
	Value string
}

// subject names the Canary as Flagger does: name.namespace.
func subject(m Message) string {
	return m.Canary + "." + m.Namespace
}

// facts are the labelled values of a message: the cluster, when known, the
// phase, when set, and the message's fields.
func facts(m Message, cluster string) []fact {
	var fs []fact
	if cluster != "" {
		fs = append(fs, fact{Title: "Cluster", Value: cluster})
	}
	if m.Phase != "" {
		fs = append(fs, fact{Title: "Phase", Value: string(m.Phase)})
	}
	for _, f := range m.Fields {
		fs = append(fs, fact{Title: f.Name, Value: f.Value})
	}
	return fs
}

// summary is a one-line plain-text version of a message, for previews and
// services without rich formatting.
func summary(m Message, cluster string) string {
	var b strings.Builder
	b.WriteString(styleOf(m.Severity).emoji + " " + subject(m))
	if cluster != "" {
		b.WriteString(" (" + cluster + ")")
	}
	if m.Phase != "" {
		b.WriteString(" [" + string(m.Phase) + "]")
	}
	b.WriteString(": " + m.Text)
	return b.String()
}

// StatusError is an answer from a chat service that says the message was
// not accepted.
type StatusError struct {
	// Code is the HTTP status. A 200 answer whose body reports a failure
	// (Slack's ok:false, Rocket.Chat's success:false) keeps code 200.
	Code int
	// Body is the start of the answer's body, or the service's reason.
	Body string
	// RetryAfter is how long the service asked to wait (429 answers).
	RetryAfter time.Duration
}

// Error says what the service answered.
func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("the service answered %d %s", e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("the service answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Body)
}

// Temporary reports whether sending the same message again may work: a
// timeout, a rate limit or a server error.
func (e *StatusError) Temporary() bool {
	return e.Code == http.StatusRequestTimeout || e.Code == http.StatusTooManyRequests || e.Code >= 500
}

// retryable reports whether a failed delivery is worth another attempt:
// every error except a StatusError that is not temporary.
func retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Temporary()
	}
	return true
}

// retryAfter returns the wait a service asked for, or zero.
func retryAfter(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}

// newHTTPClient returns the client a notifier sends with: cfg.HTTPClient or
// a default one, with cfg.Proxy as its proxy when set.
func newHTTPClient(cfg Config) (*http.Client, error) {
	c := cfg.HTTPClient
	if c == nil {
		c = &http.Client{Timeout: defaultTimeout}
	}
	if cfg.Proxy == "" {
		return c, nil
	}
	proxy, err := url.Parse(cfg.Proxy)
	if err != nil || proxy.Scheme == "" || proxy.Host == "" {
		return nil, fmt.Errorf("invalid proxy URL %q: want scheme://host[:port]", cfg.Proxy)
	}
	var t *http.Transport
	switch base := c.Transport.(type) {
	case nil:
		t = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		t = base.Clone()
	default:
		return nil, fmt.Errorf("cannot set proxy %s on an HTTP client whose transport is a %T", cfg.Proxy, base)
	}
	t.Proxy = http.ProxyURL(proxy)
	withProxy := *c
	withProxy.Transport = t
	return &withProxy, nil
}

// maxErrorBody bounds how much of an error answer is kept.
const maxErrorBody = 512

// postJSON sends body as JSON to address and returns the answer's body. A
// status outside 2xx is a *StatusError.
func postJSON(ctx context.Context, c *http.Client, address, token string, body any) ([]byte, error) {
	if address == "" {
		return nil, errors.New("no address configured")
	}
	data, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encoding the message: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, address, bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reaching %s: %w", redact(req.URL), withoutURL(err))
	}
	defer func() { _ = resp.Body.Close() }()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %w", redact(req.URL), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		se := &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(answer[:min(len(answer), maxErrorBody)]))}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			se.RetryAfter = time.Duration(s) * time.Second
		}
		return nil, se
	}
	return answer, nil
}

// redact keeps the scheme and host of a webhook URL: its path and query
// are secrets for most services.
func redact(u *url.URL) string {
	return u.Scheme + "://" + u.Host
}

// withoutURL drops the request URL that net/http puts in its errors, since
// the URL of a webhook is its secret.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
