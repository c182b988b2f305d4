package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/hostlist"
)

// DefaultTimeout bounds a webhook call without a timeout, as in Flagger.
const DefaultTimeout = 10 * time.Second

// The waits between the attempts of a call: exponential from
// min(initialBackoff, timeout/4), doubling up to maxBackoff, each moved by
// up to ±50% at random so that hooks failing together do not retry
// together.
const (
	initialBackoff = time.Second
	maxBackoff     = 30 * time.Second
	jitter         = 0.5
)

// maxBody is how much of a failed answer is kept in the error.
const maxBody = 256

// maxDrain is how much of a successful answer is read so that its
// connection can be reused.
const maxDrain = 64 << 10

// Caller calls one webhook; a nil error means the webhook said yes.
type Caller interface {
	Call(ctx context.Context, hook flaggerv1beta1.CanaryWebhook, p Payload) error
}

// The shared HTTP clients of every webhook call, one verifying TLS and one
// not (disableTLS), so that connections are reused from call to call. They
// never follow redirects: a 3xx answer is a "no".
var (
	sharedClient   = &http.Client{Transport: newTransport(false), CheckRedirect: noRedirect}
	insecureClient = &http.Client{Transport: newTransport(true), CheckRedirect: noRedirect}
)

func newTransport(insecure bool) *http.Transport {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   10,
		ForceAttemptHTTP2:     true,
	}
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for it with disableTLS
	}
	return tr
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// HTTPCaller POSTs the payload as JSON. Answers 200 to 202 are success;
// anything else, a timeout or a connection error is a failure whose message
// holds the status code and the start of the answer, with secrets redacted
// (see Redact). Its zero value is ready to use.
//
// A failed call is tried again hook.retries times when it may succeed
// later, as Flagger's retrying client does: after a connection error or a
// timeout, a 429 or a 5xx other than 501. A 3xx (never followed), another
// 4xx or a TLS certificate error is final. The waits grow exponentially
// with jitter (and follow Retry-After), and the whole call, waits
// included, ends within timeout × (retries+1) and ctx's deadline.
type HTTPCaller struct {
	// Transport, when set, replaces the shared transport for webhooks
	// that verify TLS, token or not (for tests).
	Transport http.RoundTripper
	// Token, when set, gives the bearer token sent as "Authorization:
	// Bearer <token>" to the webhooks whose host is in TokenHosts; see
	// package token for one read from a Secret.
	Token TokenSource
	// TokenHosts are the hosts that receive the token; nil means
	// hostlist.Default, the cluster's Services, so that a webhook pointing
	// outside the cluster never gets it. Calls carrying the token connect
	// through TokenHosts.Dialer, without a proxy: a Service name is
	// resolved in the cluster only, never through another search domain.
	TokenHosts *hostlist.List

	tokenOnce    sync.Once
	tokenClients [2]*http.Client // verifying TLS, and not
}

// TokenSource gives the bearer token sent with webhook calls.
type TokenSource interface {
	// Token returns the token, or an error saying why there is none.
	Token(ctx context.Context) (string, error)
}

// Timeout is a webhook's timeout: its timeout field, or DefaultTimeout
// when unset or invalid.
func Timeout(hook flaggerv1beta1.CanaryWebhook) time.Duration {
	if d, err := time.ParseDuration(hook.Timeout); err == nil && d > 0 {
		return d
	}
	return DefaultTimeout
}

// Call calls the webhook, retrying as HTTPCaller says.
func (c *HTTPCaller) Call(ctx context.Context, hook flaggerv1beta1.CanaryWebhook, p Payload) error {
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding the payload: %w", err)
	}
	if _, err := time.ParseDuration(hook.Timeout); hook.Timeout != "" && err != nil {
		// Flagger's CRD admits timeouts such as 10sec, and Flagger fails
		// the call on them; so does Sluice, rather than guess.
		return fmt.Errorf("the timeout %q of webhook %s is not a duration such as 30s or 1m: %w", hook.Timeout, hook.Name, err)
	}
	u, err := url.Parse(hook.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("the webhook URL %q is not an absolute http or https URL", Redact(hook.URL))
	}
	r := request{url: u, body: body, timeout: Timeout(hook), header: http.Header{"Content-Type": {"application/json"}}}
	withToken, err := c.authorize(ctx, u, r.header)
	if err != nil {
		return err
	}
	r.client = c.client(hook.DisableTLS, withToken)
	return r.retry(ctx, max(int(hook.Retries), 0)+1)
}

func (c *HTTPCaller) client(insecure, withToken bool) *http.Client {
	switch {
	case c.Transport != nil && !insecure:
		return &http.Client{Transport: c.Transport, CheckRedirect: noRedirect}
	case withToken:
		c.tokenOnce.Do(func() {
			for i, insecure := range []bool{false, true} {
				tr := newTransport(insecure)
				tr.Proxy = nil
				tr.DialContext = c.TokenHosts.Dialer(&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second})
				c.tokenClients[i] = &http.Client{Transport: tr, CheckRedirect: noRedirect}
			}
		})
		if insecure {
			return c.tokenClients[1]
		}
		return c.tokenClients[0]
	case insecure:
		return insecureClient
	}
	return sharedClient
}

// authorize adds the bearer token for a URL whose host may receive it,
// and says whether it did.
func (c *HTTPCaller) authorize(ctx context.Context, u *url.URL, h http.Header) (bool, error) {
	if c.Token == nil || !c.TokenHosts.Allows(u.Hostname()) {
		return false, nil
	}
	token, err := c.Token.Token(ctx)
	if err != nil {
		return false, fmt.Errorf("reading the webhook bearer token: %w", err)
	}
	h.Set("Authorization", "Bearer "+token)
	return true, nil
}

// request is one webhook call.
type request struct {
	client  *http.Client
	url     *url.URL
	body    []byte
	header  http.Header
	timeout time.Duration
}

// retry posts up to attempts times. Each attempt may take the whole
// timeout, so a retry starts only when it can end within timeout ×
// attempts from the first; none starts after ctx's deadline.
func (r request) retry(ctx context.Context, attempts int) error {
	maxElapsed := r.timeout * time.Duration(attempts-1)
	if d, ok := ctx.Deadline(); ok {
		maxElapsed = min(maxElapsed, time.Until(d))
	}
	if maxElapsed <= 0 {
		attempts = 1 // and backoff's zero MaxElapsedTime means no limit
	}
	var last error
	tries := 0
	op := func() (struct{}, error) {
		tries++
		last = r.post(ctx)
		return struct{}{}, retryable(last)
	}
	b := &backoff.ExponentialBackOff{
		InitialInterval: min(initialBackoff, r.timeout/4), RandomizationFactor: jitter, Multiplier: 2, MaxInterval: maxBackoff,
	}
	_, err := backoff.Retry(ctx, op, backoff.WithBackOff(b), backoff.WithMaxTries(uint(attempts)), //nolint:gosec // attempts is at least 1
		backoff.WithMaxElapsedTime(maxElapsed))
	if err == nil {
		return nil
	}
	if tries > 1 {
		last = fmt.Errorf("%w (after %d attempts)", last, tries)
	}
	if err := ctx.Err(); err != nil && !errors.Is(last, err) {
		last = fmt.Errorf("%w; stopped: %w", last, err)
	}
	return last
}

// statusError is an answer outside 200-202.
type statusError struct {
	code       int
	retryAfter time.Duration
	msg        string
}

func (e *statusError) Error() string { return e.msg }

// retryable marks the errors worth no second attempt as permanent, and
// turns a Retry-After into the wait before the next attempt.
func retryable(err error) error {
	if err == nil {
		return nil
	}
	var se *statusError
	if errors.As(err, &se) {
		if se.code != http.StatusTooManyRequests && (se.code < 500 || se.code == http.StatusNotImplemented) {
			return backoff.Permanent(err)
		}
		if se.retryAfter > 0 {
			return errors.Join(err, backoff.RetryAfter(int(min(se.retryAfter, maxBackoff).Seconds())))
		}
		return err
	}
	var certErr *tls.CertificateVerificationError
	var authority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &authority) || errors.As(err, &hostname) {
		return backoff.Permanent(err)
	}
	return err
}

// post makes one attempt, bounded by the timeout.
func (r request) post(parent context.Context) error {
	ctx, cancel := context.WithTimeout(parent, r.timeout)
	defer cancel()
	where := "POST " + Redact(r.url.String())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url.String(), bytes.NewReader(r.body))
	if err != nil {
		return redactErr(fmt.Errorf("building the request to %s: %w", where, err))
	}
	req.Header = r.header.Clone()
	resp, err := r.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL, unredacted
		}
		if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
			return fmt.Errorf("%s: no answer within %s", where, r.timeout)
		}
		return redactErr(fmt.Errorf("%s: %w", where, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode <= 202 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		return nil
	}
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	se := &statusError{code: resp.StatusCode, retryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	msg := strings.TrimSpace(string(excerpt))
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		se.msg = fmt.Sprintf("%s: status %d: webhooks do not follow redirects (Location: %s); point the webhook at the final address",
			where, resp.StatusCode, resp.Header.Get("Location"))
	case msg == "":
		se.msg = fmt.Sprintf("%s: status %d", where, resp.StatusCode)
	default:
		se.msg = fmt.Sprintf("%s: status %d: %s", where, resp.StatusCode, msg)
	}
	se.msg = Redact(se.msg)
	return se
}

// retryAfter reads a Retry-After header given in seconds; 0 when absent or
// given as a date.
func retryAfter(v string) time.Duration {
	s, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || s < 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}
