package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// rollback is the message the golden files show.
var rollback = Message{
	Canary:    "podinfo",
	Namespace: "test",
	Phase:     flaggerv1beta1.CanaryPhaseFailed,
	Severity:  flaggerv1beta1.SeverityError,
	Text:      "Rolling back podinfo.test failed checks threshold reached 2: request-success-rate 91.20 < 99",
}

func TestNotifiers_PostTheJSONEachServiceAccepts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		kind  string
		path  string
		cfg   Config
		reply func(http.ResponseWriter, *http.Request, int)
		check func(t *testing.T, r request)
	}{
		{
			kind:  flaggerv1beta1.AlertProviderMSTeams,
			path:  "/webhookb2/abc/IncomingWebhook/def",
			reply: answer(http.StatusOK, "1"),
		},
		{
			kind:  flaggerv1beta1.AlertProviderDiscord,
			path:  "/api/webhooks/123/token",
			cfg:   Config{Username: "flagger"},
			reply: answer(http.StatusNoContent, ""),
		},
		{
			kind:  flaggerv1beta1.AlertProviderGChat,
			path:  "/v1/spaces/AAAA/messages",
			reply: answer(http.StatusOK, `{"name":"spaces/AAAA/messages/1"}`),
			check: func(t *testing.T, r request) {
				if r.Query != "key=k&token=t" {
					t.Errorf("query = %q, want the webhook's key and token kept", r.Query)
				}
			},
		},
		{
			kind:  flaggerv1beta1.AlertProviderRocket,
			path:  "/hooks/abc/def",
			cfg:   Config{Channel: "#deploys", Username: "flagger"},
			reply: answer(http.StatusOK, `{"success":true}`),
		},
		{
			kind:  KindWebhook,
			path:  "/alerts",
			cfg:   Config{Token: "s3cret"},
			reply: answer(http.StatusAccepted, ""),
			check: func(t *testing.T, r request) {
				if got := r.Header.Get("Authorization"); got != "Bearer s3cret" {
					t.Errorf("Authorization = %q, want the bearer token", got)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			srv := newService(t, tc.reply)
			cfg := tc.cfg
			cfg.Address, cfg.ClusterName = srv.URL+tc.path, "prod-eu"
			if tc.kind == flaggerv1beta1.AlertProviderGChat {
				cfg.Address += "?key=k&token=t"
			}
			n, err := New(tc.kind, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Post(context.Background(), rollback); err != nil {
				t.Fatalf("Post: %v", err)
			}
			reqs := srv.requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPost || r.Path != tc.path {
				t.Errorf("request = %s %s, want POST %s", r.Method, r.Path, tc.path)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
			body := r.Body
			if tc.kind == KindWebhook {
				body = withoutTimestamp(t, body)
			}
			golden(t, tc.kind, body)
		})
	}
}

// withoutTimestamp checks that the generic webhook's timestamp is now, in
// Unix milliseconds, and removes it for the golden file.
func withoutTimestamp(t *testing.T, body []byte) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	meta, _ := p["metadata"].(map[string]any)
	ts, _ := meta["timestamp"].(string)
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.UnixMilli(ms)).Abs() > time.Minute {
		t.Errorf("timestamp = %q, want the current time in Unix milliseconds", ts)
	}
	delete(meta, "timestamp")
	out, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNotifiers_ReportWhetherARejectionIsWorthRetrying(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		status    int
		body      string
		temporary bool
	}{
		{name: "bad request", status: http.StatusBadRequest, body: "invalid_payload"},
		{name: "gone webhook", status: http.StatusNotFound, body: "no_service"},
		{name: "rate limited", status: http.StatusTooManyRequests, temporary: true},
		{name: "server error", status: http.StatusBadGateway, temporary: true},
	}
	for _, kind := range Kinds() {
		for _, tc := range cases {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				srv := newService(t, answer(tc.status, tc.body))
				n, err := New(kind, Config{Address: srv.URL + "/hook"})
				if err != nil {
					t.Fatal(err)
				}
				err = n.Post(context.Background(), rollback)
				var se *StatusError
				if !errors.As(err, &se) {
					t.Fatalf("Post = %v, want a *StatusError", err)
				}
				if se.Code != tc.status || se.Temporary() != tc.temporary || retryable(err) != tc.temporary {
					t.Errorf("error %v: code %d temporary %v, want %d %v", err, se.Code, se.Temporary(), tc.status, tc.temporary)
				}
				if strings.Contains(err.Error(), "/hook") {
					t.Errorf("error %q shows the webhook's secret path", err)
				}
			})
		}
	}
}

func TestRocket_FailsWhenRocketChatAnswersSuccessFalse(t *testing.T) {
	t.Parallel()
	srv := newService(t, answer(http.StatusOK, `{"success":false,"error":"invalid-channel"}`))
	n, err := New(flaggerv1beta1.AlertProviderRocket, Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	err = n.Post(context.Background(), rollback)
	if err == nil || !strings.Contains(err.Error(), "invalid-channel") || retryable(err) {
		t.Errorf("Post = %v, want a permanent error naming invalid-channel", err)
	}
}

func TestDiscord_PostsNativeJSONEvenToTheSlackCompatibleAddress(t *testing.T) {
	t.Parallel()
	srv := newService(t, answer(http.StatusNoContent, ""))
	n, err := New(flaggerv1beta1.AlertProviderDiscord, Config{Address: srv.URL + "/api/webhooks/1/t/slack"})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Post(context.Background(), rollback); err != nil {
		t.Fatal(err)
	}
	if got := srv.requests()[0].Path; got != "/api/webhooks/1/t" {
		t.Errorf("path = %q, want the /slack suffix dropped", got)
	}
}

func TestNotifiers_ColourEachSeverity(t *testing.T) {
	t.Parallel()
	cases := []struct {
		severity Severity
		color    float64
	}{
		{severity: "", color: 0x2EB67D},
		{severity: flaggerv1beta1.SeverityInfo, color: 0x2EB67D},
		{severity: flaggerv1beta1.SeverityWarn, color: 0xECB22E},
		{severity: flaggerv1beta1.SeverityError, color: 0xE01E5A},
	}
	for _, tc := range cases {
		t.Run(string(tc.severity), func(t *testing.T) {
			t.Parallel()
			srv := newService(t, answer(http.StatusNoContent, ""))
			n, err := New(flaggerv1beta1.AlertProviderDiscord, Config{Address: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			m := rollback
			m.Severity = tc.severity
			if err := n.Post(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			var got struct {
				Embeds []struct{ Color float64 } `json:"embeds"`
			}
			if err := json.Unmarshal(srv.requests()[0].Body, &got); err != nil {
				t.Fatal(err)
			}
			if len(got.Embeds) != 1 || got.Embeds[0].Color != tc.color {
				t.Errorf("embeds = %+v, want one with colour %06X", got.Embeds, int(tc.color))
			}
		})
	}
}

func TestNew_RejectsUnknownKindsAndMissingSettings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		kind string
		cfg  Config
		want string
	}{
		{name: "unknown kind", kind: "pagerduty", cfg: Config{Address: "http://x"}, want: `unknown notifier kind "pagerduty"`},
		{name: "slack without address or token", kind: "slack", want: "incoming-webhook address or a bot token"},
		{name: "slack token without channel", kind: "slack", cfg: Config{Token: "xoxb"}, want: "needs a channel"},
		{name: "teams without address", kind: "msteams", want: "needs an incoming-webhook address"},
		{name: "invalid proxy", kind: "gchat", cfg: Config{Address: "http://x", Proxy: "::"}, want: "invalid proxy URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := New(tc.kind, tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestReceives_FiltersBySeverityThreshold(t *testing.T) {
	t.Parallel()
	info, warn, errs := flaggerv1beta1.SeverityInfo, flaggerv1beta1.SeverityWarn, flaggerv1beta1.SeverityError
	cases := []struct {
		threshold Severity
		want      map[Severity]bool
	}{
		{threshold: "", want: map[Severity]bool{"": true, info: true, warn: true, errs: true}},
		{threshold: info, want: map[Severity]bool{"": true, info: true, warn: true, errs: true}},
		{threshold: warn, want: map[Severity]bool{"": false, info: false, warn: true, errs: true}},
		{threshold: errs, want: map[Severity]bool{"": false, info: false, warn: false, errs: true}},
	}
	for _, tc := range cases {
		for s, want := range tc.want {
			if got := Receives(tc.threshold, s); got != want {
				t.Errorf("Receives(%q, %q) = %v, want %v", tc.threshold, s, got, want)
			}
		}
	}
}
