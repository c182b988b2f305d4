package notifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// msTeamsNotifier posts Adaptive Cards to a Microsoft Teams incoming
// webhook. The message envelope with an Adaptive Card attachment is what
// both the Workflows webhooks and the older Office 365 connectors accept;
// the MessageCard format works with the connectors only.
type msTeamsNotifier struct {
	address string
	http    *http.Client
	cluster string
}

// newMSTeams builds a Microsoft Teams notifier for the webhook at
// cfg.Address.
func newMSTeams(cfg Config) (Interface, error) {
	if cfg.Address == "" {
		return nil, errors.New("msteams needs an incoming-webhook address")
	}
	c, err := newHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	return &msTeamsNotifier{address: cfg.Address, http: c, cluster: cfg.ClusterName}, nil
}

// teamsMessage is the envelope Teams webhooks accept cards in.
type teamsMessage struct {
	Type        string            `json:"type"`
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string    `json:"contentType"`
	Content     teamsCard `json:"content"`
}

type teamsCard struct {
	Schema  string         `json:"$schema"`
	Type    string         `json:"type"`
	Version string         `json:"version"`
	Body    []teamsElement `json:"body"`
	MSTeams map[string]any `json:"msteams,omitempty"`
}

// teamsElement is a Container, TextBlock or FactSet: the elements a
// message uses.
type teamsElement struct {
	Type   string         `json:"type"`
	Style  string         `json:"style,omitempty"`
	Bleed  bool           `json:"bleed,omitempty"`
	Items  []teamsElement `json:"items,omitempty"`
	Text   string         `json:"text,omitempty"`
	Weight string         `json:"weight,omitempty"`
	Size   string         `json:"size,omitempty"`
	Wrap   bool           `json:"wrap,omitempty"`
	Facts  []teamsFact    `json:"facts,omitempty"`
}

type teamsFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// Post sends the message as an Adaptive Card: a header in the severity's
// colour with the Canary, the text, and the cluster and phase as facts.
func (n *msTeamsNotifier) Post(ctx context.Context, m Message) error {
	st := styleOf(m.Severity)
	body := []teamsElement{
		{Type: "Container", Style: st.teams, Bleed: true, Items: []teamsElement{
			{Type: "TextBlock", Text: st.emoji + " " + subject(m), Weight: "Bolder", Size: "Medium", Wrap: true},
		}},
		{Type: "TextBlock", Text: m.Text, Wrap: true},
	}
	if fs := facts(m, n.cluster); len(fs) > 0 {
		set := teamsElement{Type: "FactSet"}
		for _, f := range fs {
			set.Facts = append(set.Facts, teamsFact(f))
		}
		body = append(body, set)
	}
	msg := teamsMessage{Type: "message", Attachments: []teamsAttachment{{
		ContentType: "application/vnd.microsoft.card.adaptive",
		Content: teamsCard{
			Schema:  "http://adaptivecards.io/schemas/adaptive-card.json",
			Type:    "AdaptiveCard",
			Version: "1.4",
			Body:    body,
			MSTeams: map[string]any{"width": "Full"},
		},
	}}}
	if _, err := postJSON(ctx, n.http, n.address, "", msg); err != nil {
		return fmt.Errorf("posting to the Microsoft Teams webhook: %w", err)
	}
	return nil
}
