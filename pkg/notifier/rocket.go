package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// rocketNotifier posts to a Rocket.Chat incoming webhook.
type rocketNotifier struct {
	address  string
	http     *http.Client
	channel  string
	username string
	cluster  string
}

// newRocket builds a Rocket.Chat notifier for the webhook at cfg.Address.
// The channel and username override the webhook's own when set.
func newRocket(cfg Config) (Interface, error) {
	if cfg.Address == "" {
		return nil, errors.New("rocket needs an incoming-webhook address")
	}
	c, err := newHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	return &rocketNotifier{address: cfg.Address, http: c, channel: cfg.Channel, username: cfg.Username, cluster: cfg.ClusterName}, nil
}

type rocketMessage struct {
	Alias       string             `json:"alias,omitempty"`
	Emoji       string             `json:"emoji"`
	Channel     string             `json:"channel,omitempty"`
	Text        string             `json:"text"`
	Attachments []rocketAttachment `json:"attachments"`
}

type rocketAttachment struct {
	Title  string        `json:"title"`
	Text   string        `json:"text"`
	Color  string        `json:"color"`
	Fields []rocketField `json:"fields,omitempty"`
}

type rocketField struct {
	Short bool   `json:"short"`
	Title string `json:"title"`
	Value string `json:"value"`
}

// Post sends the message as one attachment in the severity's colour.
// Rocket.Chat answers {"success": false, "error": ...} when it rejects a
// message.
func (n *rocketNotifier) Post(ctx context.Context, m Message) error {
	st := styleOf(m.Severity)
	att := rocketAttachment{Title: subject(m), Text: m.Text, Color: "#" + st.hex}
	for _, f := range facts(m, n.cluster) {
		att.Fields = append(att.Fields, rocketField{Short: true, Title: f.Title, Value: f.Value})
	}
	msg := rocketMessage{
		Alias: n.username, Emoji: slackIcon, Channel: n.channel,
		Text: summary(m, n.cluster), Attachments: []rocketAttachment{att},
	}
	answer, err := postJSON(ctx, n.http, n.address, "", msg)
	if err != nil {
		return fmt.Errorf("posting to the Rocket.Chat webhook: %w", err)
	}
	var result struct {
		Success *bool  `json:"success"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(answer, &result) == nil && result.Success != nil && !*result.Success {
		return fmt.Errorf("posting to the Rocket.Chat webhook: %w", &StatusError{Code: http.StatusOK, Body: result.Error})
	}
	return nil
}
