// Package notifier tells people what a Canary did: chat services and
// generic webhooks behind one interface.
//
// It is not a stable Go API: Sluice's packages under pkg/ may change
// without notice.
package notifier

import (
	"context"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// Severity orders messages; providers receive those at or above theirs.
type Severity = flaggerv1beta1.AlertSeverity

// Message is one thing to tell people about a Canary.
type Message struct {
	// Canary is the Canary's name.
	Canary string
	// Namespace is the Canary's namespace.
	Namespace string
	// Phase is the Canary's phase.
	Phase flaggerv1beta1.CanaryPhase
	// Severity is info, warn or error.
	Severity Severity
	// Text says what happened.
	Text string
}

// Interface delivers messages. A notifier is one file plus one line in the
// registry that builds it.
type Interface interface {
	Post(ctx context.Context, m Message) error
}

// Nop drops every message; it is the notifier when none is configured.
type Nop struct{}

// Post does nothing.
func (Nop) Post(context.Context, Message) error { return nil }
