package notifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// webhookNotifier posts messages as JSON to any HTTP endpoint, in the
// shape of Flagger's event webhooks so that their receivers work unchanged.
type webhookNotifier struct {
	address string
	token   string
	http    *http.Client
	cluster string
	now     func() time.Time
}

// newWebhook builds a generic webhook notifier for cfg.Address; cfg.Token,
// when set, is sent as a bearer token.
func newWebhook(cfg Config) (Interface, error) {
	if cfg.Address == "" {
		return nil, errors.New("webhook needs an address")
	}
	c, err := newHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	return &webhookNotifier{address: cfg.Address, token: cfg.Token, http: c, cluster: cfg.ClusterName, now: time.Now}, nil
}

// webhookPayload is what the generic webhook receives.
type webhookPayload struct {
	// Name is the Canary's name.
	Name string `json:"name"`
	// Namespace is the Canary's namespace.
	Namespace string `json:"namespace"`
	// Phase is the Canary's phase.
	Phase flaggerv1beta1.CanaryPhase `json:"phase"`
	// Metadata holds eventMessage, eventType (Normal or Warning), severity,
	// timestamp (Unix milliseconds) and, when set, cluster.
	Metadata map[string]string `json:"metadata"`
}

// Post sends the message.
func (n *webhookNotifier) Post(ctx context.Context, m Message) error {
	severity := m.Severity
	if severity == "" {
		severity = flaggerv1beta1.SeverityInfo
	}
	eventType := "Normal"
	if severity != flaggerv1beta1.SeverityInfo {
		eventType = "Warning"
	}
	p := webhookPayload{Name: m.Canary, Namespace: m.Namespace, Phase: m.Phase, Metadata: map[string]string{
		"eventMessage": m.Text,
		"eventType":    eventType,
		"severity":     string(severity),
		"timestamp":    strconv.FormatInt(n.now().UnixMilli(), 10),
	}}
	if n.cluster != "" {
		p.Metadata["cluster"] = n.cluster
	}
	if _, err := postJSON(ctx, n.http, n.address, n.token, p); err != nil {
		return fmt.Errorf("posting to the webhook: %w", err)
	}
	return nil
}
