package notifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// discordNotifier posts embeds to a Discord webhook in Discord's own JSON.
// Flagger posts Slack's format to the webhook's /slack endpoint instead;
// the native format keeps the colour and fields without depending on
// Discord's partial Slack compatibility, and takes the same address.
type discordNotifier struct {
	address  string
	http     *http.Client
	username string
	cluster  string
}

// newDiscord builds a Discord notifier for the webhook at cfg.Address. An
// address ending in /slack (the Slack-compatible endpoint) is used without
// that suffix.
func newDiscord(cfg Config) (Interface, error) {
	if cfg.Address == "" {
		return nil, errors.New("discord needs a webhook address")
	}
	c, err := newHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	address := strings.TrimSuffix(strings.TrimSuffix(cfg.Address, "/"), "/slack")
	return &discordNotifier{address: address, http: c, username: cfg.Username, cluster: cfg.ClusterName}, nil
}

type discordMessage struct {
	Username string         `json:"username,omitempty"`
	Embeds   []discordEmbed `json:"embeds"`
	// AllowedMentions stops texts such as "@everyone" from pinging anyone.
	AllowedMentions discordMentions `json:"allowed_mentions"`
}

type discordEmbed struct {
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Color       int            `json:"color"`
	Fields      []discordField `json:"fields,omitempty"`
}

type discordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

type discordMentions struct {
	Parse []string `json:"parse"`
}

// Post sends the message as one embed in the severity's colour.
func (n *discordNotifier) Post(ctx context.Context, m Message) error {
	st := styleOf(m.Severity)
	color, err := strconv.ParseInt(st.hex, 16, 32)
	if err != nil {
		return fmt.Errorf("parsing colour %s: %w", st.hex, err)
	}
	embed := discordEmbed{Title: st.emoji + " " + subject(m), Description: m.Text, Color: int(color)}
	for _, f := range facts(m, n.cluster) {
		embed.Fields = append(embed.Fields, discordField{Name: f.Title, Value: f.Value, Inline: true})
	}
	msg := discordMessage{Username: n.username, Embeds: []discordEmbed{embed}, AllowedMentions: discordMentions{Parse: []string{}}}
	if _, err := postJSON(ctx, n.http, n.address, "", msg); err != nil {
		return fmt.Errorf("posting to the Discord webhook: %w", err)
	}
	return nil
}
