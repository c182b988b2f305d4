// Package webhook calls the webhooks of a Canary's analysis: gates, load
// tests and notifications, with the payload Flagger's webhooks receive.
//
// It is not a stable Go API: Sluice's packages under pkg/ may change
// without notice.
package webhook

import (
	"strconv"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

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
