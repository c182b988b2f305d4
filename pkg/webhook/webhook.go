// Package webhook calls the webhooks of a Canary's analysis: gates, load
// tests and notifications, with the payload Flagger's webhooks receive.
//
// It is not a stable Go API: Sluice's packages under pkg/ may change
// without notice.
package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// DefaultTimeout bounds a webhook call without a timeout, as in Flagger.
const DefaultTimeout = 10 * time.Second

// Payload is the JSON body POSTed to a webhook.
type Payload struct {
	// Name is the Canary's name.
	Name string `json:"name"`
	// Namespace is the Canary's namespace.
	Namespace string `json:"namespace"`
	// Phase is the Canary's phase when the call is made.
	Phase flaggerv1beta1.CanaryPhase `json:"phase"`
	// Checksum identifies the revision under analysis (pod template and
	// tracked configs).
	Checksum string `json:"checksum"`
	// Metadata is the webhook's metadata from the spec.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// NewPayload builds the payload of a call about a Canary.
func NewPayload(cd *flaggerv1beta1.Canary, hook flaggerv1beta1.CanaryWebhook) Payload {
	return Payload{
		Name: cd.Name, Namespace: cd.Namespace, Phase: cd.Status.Phase,
		Checksum: cd.Status.LastAppliedSpec, Metadata: hook.Metadata,
	}
}

// NewEventPayload builds the payload of an event webhook: the Canary's
// payload with the event in metadata (eventMessage, eventType and
// timestamp in milliseconds since the epoch), which the hook's own metadata
// cannot override.
func NewEventPayload(cd *flaggerv1beta1.Canary, hook flaggerv1beta1.CanaryWebhook, eventType, message string, at time.Time) Payload {
	p := NewPayload(cd, hook)
	meta := make(map[string]string, len(hook.Metadata)+3)
	for k, v := range hook.Metadata {
		meta[k] = v
	}
	meta["eventMessage"] = message
	meta["eventType"] = eventType
	meta["timestamp"] = strconv.FormatInt(at.UnixMilli(), 10)
	p.Metadata = meta
	return p
}

// Caller calls one webhook; a nil error means the webhook said yes.
type Caller interface {
	Call(ctx context.Context, hook flaggerv1beta1.CanaryWebhook, p Payload) error
}

// HTTPCaller POSTs the payload as JSON. Answers 200 to 202 are success;
// anything else, a timeout or a connection error is a failure whose message
// holds the status code and the start of the answer.
type HTTPCaller struct {
	// Client is used for webhooks that verify TLS; nil means a default client.
	Client *http.Client
}

// maxBody is how much of a failed answer is kept in the error.
const maxBody = 256

// Call calls the webhook, retrying hook.retries times on failure. It calls
// at least once: negative retries count as none, as in Flagger. A timeout
// that is not a Go duration fails the call without sending it, as in
// Flagger (the CRD admits what Flagger's pattern admits, such as 10sec).
func (c *HTTPCaller) Call(ctx context.Context, hook flaggerv1beta1.CanaryWebhook, p Payload) error {
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding the payload: %w", err)
	}
	timeout := DefaultTimeout
	if hook.Timeout != "" {
		d, err := time.ParseDuration(hook.Timeout)
		if err != nil {
			return fmt.Errorf("the timeout %q of webhook %s is not a duration such as 30s or 1m: %w", hook.Timeout, hook.Name, err)
		}
		if d > 0 {
			timeout = d
		}
	}
	client := c.client(hook.DisableTLS)
	var last error
	for attempt := 0; attempt <= max(int(hook.Retries), 0); attempt++ {
		if last = post(ctx, client, hook.URL, body, timeout); last == nil {
			return nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return last
}

func (c *HTTPCaller) client(insecure bool) *http.Client {
	base := c.Client
	if base == nil {
		base = &http.Client{}
	}
	if !insecure {
		return base
	}
	tr, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return base
	}
	tr = tr.Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for it with disableTLS
	return &http.Client{Transport: tr, Timeout: base.Timeout}
}

func post(ctx context.Context, client *http.Client, url string, body []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building the request to %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("POST %s: no answer within %s", url, timeout)
		}
		return fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode <= 202 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	msg := strings.TrimSpace(string(excerpt))
	if msg == "" {
		return fmt.Errorf("POST %s: status %d", url, resp.StatusCode)
	}
	return fmt.Errorf("POST %s: status %d: %s", url, resp.StatusCode, msg)
}
