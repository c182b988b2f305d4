package notifier

import (
	"errors"
	"fmt"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// GlobalConfig is the notifier of the manager's flags, which receives the
// messages of every Canary without analysis.alerts. Slack wins when both
// Slack and Teams are set, as in Flagger.
type GlobalConfig struct {
	// SlackURL is -slack-url: a Slack incoming webhook, or with SlackToken
	// the Web API's chat.postMessage URL.
	SlackURL string
	// SlackToken is -slack-token: a bot token for chat.postMessage.
	SlackToken string
	// SlackChannel is -slack-channel; required with SlackToken.
	SlackChannel string
	// SlackUser is -slack-user: the name Slack messages are posted as.
	SlackUser string
	// SlackProxyURL is -slack-proxy-url.
	SlackProxyURL string
	// MSTeamsURL is -msteams-url: a Microsoft Teams incoming webhook.
	MSTeamsURL string
	// MSTeamsProxyURL is -msteams-proxy-url.
	MSTeamsProxyURL string
}

// config returns the kind and Config of the global notifier; ok is false
// when no flag asks for one.
func (g GlobalConfig) config() (kind string, cfg Config, ok bool, err error) {
	switch {
	case g.SlackURL != "" || g.SlackToken != "":
		if g.SlackToken != "" && g.SlackChannel == "" {
			return "", Config{}, false, errors.New("-slack-token needs -slack-channel")
		}
		return flaggerv1beta1.AlertProviderSlack, Config{
			Address: g.SlackURL, Token: g.SlackToken, Channel: g.SlackChannel,
			Username: g.SlackUser, Proxy: g.SlackProxyURL,
		}, true, nil
	case g.MSTeamsURL != "":
		return flaggerv1beta1.AlertProviderMSTeams, Config{Address: g.MSTeamsURL, Proxy: g.MSTeamsProxyURL}, true, nil
	default:
		return "", Config{}, false, nil
	}
}

// NewGlobal builds the notifier of the manager's flags, posting
// synchronously; it is Nop when no flag is set. The Dispatcher builds its
// own from Options.Global; NewGlobal is for callers without one.
func NewGlobal(g GlobalConfig, clusterName string) (Interface, error) {
	kind, cfg, ok, err := g.config()
	if err != nil {
		return nil, err
	}
	if !ok {
		return Nop{}, nil
	}
	cfg.ClusterName = clusterName
	n, err := New(kind, cfg)
	if err != nil {
		return nil, fmt.Errorf("building the notifier of the -%s flags: %w", kind, err)
	}
	return n, nil
}
