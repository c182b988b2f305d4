package notifier

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
)

// gChatNotifier posts to a Google Chat space's incoming webhook: a
// one-line text, shown in notifications, and a card with the details.
type gChatNotifier struct {
	address string
	http    *http.Client
	cluster string
}

// newGChat builds a Google Chat notifier for the webhook at cfg.Address
// (which carries the space's key and token).
func newGChat(cfg Config) (Interface, error) {
	if cfg.Address == "" {
		return nil, errors.New("gchat needs an incoming-webhook address")
	}
	c, err := newHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	return &gChatNotifier{address: cfg.Address, http: c, cluster: cfg.ClusterName}, nil
}

type gChatMessage struct {
	Text    string        `json:"text"`
	CardsV2 []gChatCardV2 `json:"cardsV2"`
}

type gChatCardV2 struct {
	CardID string    `json:"cardId"`
	Card   gChatCard `json:"card"`
}

type gChatCard struct {
	Header   gChatHeader    `json:"header"`
	Sections []gChatSection `json:"sections"`
}

type gChatHeader struct {
	Title    string `json:"title"`
	Subtitle string `json:"subtitle,omitempty"`
}

type gChatSection struct {
	Widgets []gChatWidget `json:"widgets"`
}

// gChatWidget is a paragraph or a labelled value.
type gChatWidget struct {
	TextParagraph *gChatText      `json:"textParagraph,omitempty"`
	DecoratedText *gChatDecorated `json:"decoratedText,omitempty"`
}

type gChatText struct {
	Text string `json:"text"`
}

type gChatDecorated struct {
	TopLabel string `json:"topLabel"`
	Text     string `json:"text"`
}

// Post sends the message; the card's text is in the severity's colour.
func (n *gChatNotifier) Post(ctx context.Context, m Message) error {
	st := styleOf(m.Severity)
	widgets := []gChatWidget{{TextParagraph: &gChatText{
		Text: fmt.Sprintf(`<font color="#%s">%s</font>`, st.hex, html.EscapeString(m.Text)),
	}}}
	for _, f := range facts(m, n.cluster) {
		widgets = append(widgets, gChatWidget{DecoratedText: &gChatDecorated{TopLabel: f.Title, Text: html.EscapeString(f.Value)}})
	}
	msg := gChatMessage{
		Text: summary(m, n.cluster),
		CardsV2: []gChatCardV2{{CardID: "sluice", Card: gChatCard{
			Header:   gChatHeader{Title: st.emoji + " " + subject(m), Subtitle: "Sluice"},
			Sections: []gChatSection{{Widgets: widgets}},
		}}},
	}
	if _, err := postJSON(ctx, n.http, n.address, "", msg); err != nil {
		return fmt.Errorf("posting to the Google Chat webhook: %w", err)
	}
	return nil
}
