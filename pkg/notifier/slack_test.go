package notifier

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

func TestSlack_PostsAttachmentToTheIncomingWebhook(t *testing.T) {
	t.Parallel()
	srv := newService(t, answer(http.StatusOK, "ok"))
	n, err := New(flaggerv1beta1.AlertProviderSlack, Config{
		Address: srv.URL + "/services/T000/B000/XXXX", Channel: "deploys", Username: "flagger", ClusterName: "prod-eu",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Post(context.Background(), rollback); err != nil {
		t.Fatalf("Post: %v", err)
	}
	r := srv.requests()[0]
	if r.Method != http.MethodPost || r.Path != "/services/T000/B000/XXXX" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request = %s %s (%s), want a JSON POST to the webhook path", r.Method, r.Path, r.Header.Get("Content-Type"))
	}
	if got := r.Header.Get("Authorization"); got != "" {
		t.Errorf("Authorization = %q, want none for a webhook", got)
	}
	golden(t, "slack-webhook", r.Body)
}

func TestSlack_PostsWithTheBotTokenToChatPostMessage(t *testing.T) {
	t.Parallel()
	for _, suffix := range []string{"/api/chat.postMessage", "/api/", "/api"} {
		t.Run(suffix, func(t *testing.T) {
			t.Parallel()
			var form url.Values
			srv := newService(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"ok":true,"channel":"C0123","ts":"1700000000.000100","message":{"text":"","type":"message"}}`)
			})
			n, err := New(flaggerv1beta1.AlertProviderSlack, Config{
				Address: srv.URL + suffix, Token: "xoxb-test-token", Channel: "deploys", Username: "flagger", ClusterName: "prod-eu",
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Post(context.Background(), rollback); err != nil {
				t.Fatalf("Post: %v", err)
			}
			r := srv.requests()[0]
			if r.Method != http.MethodPost || r.Path != "/api/chat.postMessage" {
				t.Errorf("request = %s %s, want POST /api/chat.postMessage", r.Method, r.Path)
			}
			if got := r.Header.Get("Authorization"); got != "Bearer xoxb-test-token" {
				t.Errorf("Authorization = %q, want the bot token", got)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
				t.Errorf("Content-Type = %q, want a form", ct)
			}
			form, err = url.ParseQuery(string(r.Body))
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range map[string]string{"channel": "deploys", "username": "flagger", "icon_emoji": ":rocket:"} {
				if got := form.Get(k); got != want {
					t.Errorf("form %s = %q, want %q", k, got, want)
				}
			}
			golden(t, "slack-token-attachments", []byte(form.Get("attachments")))
		})
	}
}

func TestSlack_ReportsAnAPIErrorAsPermanent(t *testing.T) {
	t.Parallel()
	srv := newService(t, answer(http.StatusOK, `{"ok":false,"error":"channel_not_found"}`))
	n, err := New(flaggerv1beta1.AlertProviderSlack, Config{Address: srv.URL + "/api/", Token: "xoxb", Channel: "nope"})
	if err != nil {
		t.Fatal(err)
	}
	err = n.Post(context.Background(), rollback)
	if err == nil || retryable(err) {
		t.Fatalf("Post = %v, want a permanent error", err)
	}
	if want := "posting to Slack channel nope: the service answered 200 OK: channel_not_found"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestSlack_ColoursEachSeverity(t *testing.T) {
	t.Parallel()
	for severity, want := range map[Severity]string{
		"": "good", flaggerv1beta1.SeverityInfo: "good", flaggerv1beta1.SeverityWarn: "warning", flaggerv1beta1.SeverityError: "danger",
	} {
		srv := newService(t, answer(http.StatusOK, "ok"))
		n, err := New(flaggerv1beta1.AlertProviderSlack, Config{Address: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		m := rollback
		m.Severity = severity
		if err := n.Post(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Attachments []struct{ Color string } `json:"attachments"`
		}
		if err := json.Unmarshal(srv.requests()[0].Body, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Attachments) != 1 || got.Attachments[0].Color != want {
			t.Errorf("severity %q: attachments %+v, want colour %q", severity, got.Attachments, want)
		}
	}
}

func TestSlack_GoesThroughTheConfiguredProxy(t *testing.T) {
	t.Parallel()
	var target string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target = r.URL.String() // a proxy receives the absolute URL
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(proxy.Close)
	n, err := New(flaggerv1beta1.AlertProviderSlack, Config{Address: "http://hooks.slack.invalid/services/T/B/X", Proxy: proxy.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Post(context.Background(), rollback); err != nil {
		t.Fatalf("Post: %v", err)
	}
	if target != "http://hooks.slack.invalid/services/T/B/X" {
		t.Errorf("the proxy was asked for %q, want the webhook URL", target)
	}
}
