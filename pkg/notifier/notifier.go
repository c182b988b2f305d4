// Package notifier tells people what a Canary did: chat services and
// generic webhooks behind one interface, and a Dispatcher that delivers
// each message to the providers a Canary's analysis.alerts name, in the
// background, with retries.
//
// It is not a stable Go API: Sluice's packages under pkg/ may change
// without notice.
package notifier

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"

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
	// Severity is info, warn or error. Empty means info.
	Severity Severity
	// Text says what happened.
	Text string
	// Fields are labelled details shown under the text, such as the
	// target and the traffic routing of a release that starts.
	Fields []Field
}

// Field is one labelled detail of a message.
type Field struct {
	// Name labels the value.
	Name string
	// Value is the detail.
	Value string
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

// KindWebhook is the kind of the generic JSON webhook notifier. It is not an
// AlertProvider type; the other kinds are AlertProvider spec.type values.
const KindWebhook = "webhook"

// Config says where and how one notifier delivers messages.
type Config struct {
	// Address is the incoming-webhook URL. For Slack with a Token it is the
	// Web API's chat.postMessage URL (or the API's base URL); empty means
	// https://slack.com/api/.
	Address string
	// Token is a bearer token sent in the Authorization header (Slack bot
	// tokens, generic webhooks).
	Token string
	// Channel is the channel to post to, where the service lets the sender
	// choose (Slack, Rocket.Chat).
	Channel string
	// Username is the name messages are posted as, where the service lets
	// the sender choose (Slack, Discord, Rocket.Chat).
	Username string
	// Proxy is the URL of an HTTP proxy for reaching the service.
	Proxy string
	// ClusterName is shown in every message when set.
	ClusterName string
	// HTTPClient sends the requests; nil means a client with a 5s timeout
	// that honours HTTPS_PROXY. Proxy, when set, replaces its transport's
	// proxy.
	HTTPClient *http.Client
}

// registry builds a notifier of each kind.
var registry = map[string]func(Config) (Interface, error){
	flaggerv1beta1.AlertProviderSlack:   newSlack,
	flaggerv1beta1.AlertProviderMSTeams: newMSTeams,
	flaggerv1beta1.AlertProviderDiscord: newDiscord,
	flaggerv1beta1.AlertProviderGChat:   newGChat,
	flaggerv1beta1.AlertProviderRocket:  newRocket,
	KindWebhook:                         newWebhook,
}

// New builds the notifier of a kind: slack, msteams, discord, gchat, rocket
// or webhook.
func New(kind string, cfg Config) (Interface, error) {
	build, ok := registry[kind]
	if !ok {
		return nil, fmt.Errorf("unknown notifier kind %q: want one of %v", kind, Kinds())
	}
	n, err := build(cfg)
	if err != nil {
		return nil, fmt.Errorf("configuring the %s notifier: %w", kind, err)
	}
	return n, nil
}

// Kinds lists the notifier kinds New accepts, sorted.
func Kinds() []string {
	kinds := make([]string, 0, len(registry))
	for k := range registry {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

// severities are ordered from the least to the most severe.
var severities = []Severity{flaggerv1beta1.SeverityInfo, flaggerv1beta1.SeverityWarn, flaggerv1beta1.SeverityError}

// rank orders a severity; empty and unknown values count as info.
func rank(s Severity) int {
	return max(slices.Index(severities, s), 0)
}

// Receives reports whether a provider whose alert has severity threshold
// receives a message of severity s: info receives everything, warn receives
// warn and error, error receives error only. An empty threshold or severity
// means info.
func Receives(threshold, s Severity) bool {
	return rank(s) >= rank(threshold)
}
