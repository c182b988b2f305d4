package metrics

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// maxAnswer bounds how much of an answer the plain HTTP providers read.
const maxAnswer = 16 << 20

// maxRedirects bounds the redirects a provider follows on its own host.
const maxRedirects = 5

// Timeouts of the shared transports. The whole request is bounded by the
// client's timeout (the provider's QueryTimeout); these bound its phases,
// so that a backend that accepts a connection and never answers cannot
// hold one for long.
const (
	dialTimeout           = 5 * time.Second
	tlsHandshakeTimeout   = 5 * time.Second
	responseHeaderTimeout = 30 * time.Second
	idleConnTimeout       = 90 * time.Second
)

// transportKey names one shared transport: a provider kind, and whether it
// verifies certificates.
type transportKey struct {
	kind     string
	insecure bool
}

// transports holds one *http.Transport per transportKey, so that every
// provider of a kind shares one connection pool, whatever the number of
// templates and intervals, instead of a pool per provider.
var transports sync.Map

// sharedTransport returns the transport of a provider kind, creating it on
// the first use. insecure makes it accept any certificate (a template's
// insecureSkipVerify); those providers get a pool of their own.
func sharedTransport(kind string, insecure bool) *http.Transport {
	key := transportKey{kind: kind, insecure: insecure}
	if t, ok := transports.Load(key); ok {
		return t.(*http.Transport)
	}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   10,
		IdleConnTimeout:       idleConnTimeout,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
	}
	if insecure {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for it with insecureSkipVerify
	}
	actual, _ := transports.LoadOrStore(key, t)
	return actual.(*http.Transport)
}

// queryTimeout is cfg's timeout, or DefaultQueryTimeout.
func queryTimeout(cfg ProviderConfig) time.Duration {
	if cfg.Timeout > 0 {
		return cfg.Timeout
	}
	return DefaultQueryTimeout
}

// newHTTPClient returns an HTTP client over the shared transport of cfg's
// kind that sends cfg's headers and sets the credentials with auth (when
// not nil), both only to the host of cfg's address (address when cfg has
// none); follows redirects only on that host; and gives up after cfg's
// timeout.
func newHTTPClient(cfg ProviderConfig, address string, auth func(http.Header)) *http.Client {
	if cfg.Address != "" {
		address = cfg.Address
	}
	host := ""
	if u, err := url.Parse(address); err == nil {
		host = u.Host
	}
	return &http.Client{
		Timeout:       queryTimeout(cfg),
		Transport:     &headerTransport{base: sharedTransport(cfg.Type, cfg.InsecureSkipVerify), host: host, headers: cfg.Headers, auth: auth},
		CheckRedirect: sameHostRedirects,
	}
}

// sameHostRedirects is the redirect policy of every provider client: a
// redirect is followed only to the scheme and host of the first request,
// so that no credential (a header the client library set, a bearer token,
// an API key) is ever replayed to another server.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", len(via))
	}
	first := via[0].URL
	if !strings.EqualFold(req.URL.Host, first.Host) || req.URL.Scheme != first.Scheme {
		return fmt.Errorf("the backend redirected to %s://%s, another server than the configured %s://%s; "+
			"Sluice sends credentials only to the configured address, so it does not follow: set the address to where the API answers",
			req.URL.Scheme, req.URL.Host, first.Scheme, first.Host)
	}
	return nil
}

// headerTransport adds fixed headers and credentials to the requests sent
// to one host. Requests to another host go out without them.
type headerTransport struct {
	base    http.RoundTripper
	host    string
	headers map[string][]string
	auth    func(http.Header)
}

// RoundTrip sends a copy of req with the headers set, when req goes to the
// transport's host.
func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.host != "" && !strings.EqualFold(req.URL.Host, t.host) {
		return t.base.RoundTrip(req)
	}
	req = req.Clone(req.Context())
	for k, vs := range t.headers {
		req.Header.Del(k)
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if t.auth != nil {
		t.auth(req.Header)
	}
	return t.base.RoundTrip(req)
}

// callAPI sends req with client and returns the body of a 2xx answer.
// Another status is an error that gives the status, the start of the body
// and, for 401, 403 and 429, what to check. backend names the provider in
// messages.
func callAPI(client *http.Client, req *http.Request, backend string) ([]byte, error) {
	where := fmt.Sprintf("%s at %s", backend, req.URL.Scheme+"://"+req.URL.Host)
	resp, err := client.Do(req)
	if err != nil {
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
	return nil, statusError(where, resp, body)
}

// statusError describes a non-2xx answer: the status, the start of the
// body and, for 401, 403 and 429, what to check.
func statusError(where string, resp *http.Response, body []byte) error {
	msg := fmt.Sprintf("%s: %s", where, resp.Status)
	if detail := strings.Join(strings.Fields(string(body)), " "); detail != "" {
		if len(detail) > 200 {
			detail = detail[:200] + "..."
		}
		msg += ": " + detail
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		msg += " (check the credentials in the MetricTemplate's Secret)"
	case http.StatusTooManyRequests:
		msg += " (the backend is rate limiting the queries)"
	}
	return errors.New(msg)
}
