package notifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/slack-go/slack"
)

// slackIcon is the avatar of Sluice's Slack messages, as Flagger's.
const slackIcon = ":rocket:"

// slackNotifier posts to Slack through an incoming webhook or, with a bot
// token, through the Web API's chat.postMessage.
type slackNotifier struct {
	webhook  string
	api      *slack.Client
	http     *http.Client
	channel  string
	username string
	cluster  string
}

// newSlack builds a Slack notifier. With a token it calls chat.postMessage
// on the API at cfg.Address (default https://slack.com/api/) and needs a
// channel; without one, cfg.Address is an incoming-webhook URL.
func newSlack(cfg Config) (Interface, error) {
	c, err := newHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	n := &slackNotifier{http: c, channel: cfg.Channel, username: cfg.Username, cluster: cfg.ClusterName}
	if cfg.Token == "" {
		if cfg.Address == "" {
			return nil, errors.New("slack needs an incoming-webhook address or a bot token")
		}
		n.webhook = cfg.Address
		return n, nil
	}
	if cfg.Channel == "" {
		return nil, errors.New("slack with a bot token needs a channel")
	}
	n.api = slack.New(cfg.Token,
		slack.OptionHTTPClient(bearerClient{client: c, token: cfg.Token}),
		slack.OptionAPIURL(slackAPIURL(cfg.Address)))
	return n, nil
}

// slackAPIURL returns the base URL of the Web API from an address that may
// be empty, the base URL, or the chat.postMessage URL Flagger's
// AlertProviders use.
func slackAPIURL(address string) string {
	if address == "" {
		return slack.APIURL
	}
	base := strings.TrimSuffix(strings.TrimSuffix(address, "/"), "chat.postMessage")
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return base
}

// Post sends the message as one coloured attachment.
func (n *slackNotifier) Post(ctx context.Context, m Message) error {
	att := n.attachment(m)
	if n.api == nil {
		msg := &slack.WebhookMessage{
			Channel:     n.channel,
			Username:    n.username,
			IconEmoji:   slackIcon,
			Attachments: []slack.Attachment{att},
		}
		if err := slack.PostWebhookCustomHTTPContext(ctx, n.webhook, n.http, msg); err != nil {
			return fmt.Errorf("posting to the Slack webhook: %w", slackError(err))
		}
		return nil
	}
	opts := []slack.MsgOption{slack.MsgOptionAttachments(att), slack.MsgOptionIconEmoji(slackIcon)}
	if n.username != "" {
		opts = append(opts, slack.MsgOptionUsername(n.username))
	}
	if _, _, err := n.api.PostMessageContext(ctx, n.channel, opts...); err != nil {
		return fmt.Errorf("posting to Slack channel %s: %w", n.channel, slackError(err))
	}
	return nil
}

// attachment renders a message: the Canary as author, the text, and the
// cluster and phase as fields, in the severity's colour.
func (n *slackNotifier) attachment(m Message) slack.Attachment {
	att := slack.Attachment{
		Color:      styleOf(m.Severity).slack,
		Fallback:   slackEscape(summary(m, n.cluster)),
		AuthorName: subject(m),
		Text:       slackEscape(m.Text),
		MarkdownIn: []string{"text"},
	}
	for _, f := range facts(m, n.cluster) {
		att.Fields = append(att.Fields, slack.AttachmentField{Title: f.Title, Value: f.Value, Short: true})
	}
	return att
}

// slackEscape escapes the characters Slack reads as markup ("success rate
// 98% < 99%" would otherwise start a link).
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// slackError turns slack-go's errors into a *StatusError, so that the
// Dispatcher knows which ones to retry, and drops the request URL.
func slackError(err error) error {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return &StatusError{Code: http.StatusTooManyRequests, RetryAfter: rl.RetryAfter}
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		return &StatusError{Code: sc.Code}
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		code := http.StatusOK
		if se.Err == "ratelimited" {
			code = http.StatusTooManyRequests
		}
		return &StatusError{Code: code, Body: se.Err}
	}
	return withoutURL(err)
}

// bearerClient adds the bot token as a bearer token: slack-go sends it in
// the form only, while Slack prefers the Authorization header.
type bearerClient struct {
	client *http.Client
	token  string
}

// Do sends the request with the Authorization header set.
func (b bearerClient) Do(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.token)
	return b.client.Do(req)
}
