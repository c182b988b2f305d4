package notifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// logSink collects log lines.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, prefix+" "+args)
	}, funcr.Options{Verbosity: 1})
}

func (l *logSink) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// newDispatcher starts a Dispatcher with a fresh registry and closes it at
// the end of the test.
func newDispatcher(t *testing.T, opts Options) (*Dispatcher, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	d, err := NewDispatcher(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Close(ctx)
	})
	return d, reg
}

// hanging answers only when the client gives up or the test ends.
func hanging(t *testing.T) *service {
	t.Helper()
	release := make(chan struct{})
	srv := newService(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	return srv
}

// counters returns the delivery counters of a registry as text.
func counters(t *testing.T, reg *prometheus.Registry, sent, failed float64) error {
	t.Helper()
	want := fmt.Sprintf(`
# HELP sluice_notification_failures_total Notifications given up on after the last attempt or dropped, by notifier kind.
# TYPE sluice_notification_failures_total counter
sluice_notification_failures_total{provider="msteams"} %g
# HELP sluice_notifications_sent_total Notifications delivered, by notifier kind.
# TYPE sluice_notifications_sent_total counter
sluice_notifications_sent_total{provider="msteams"} %g
`, failed, sent)
	return testutil.GatherAndCompare(reg, strings.NewReader(want), "sluice_notification_failures_total", "sluice_notifications_sent_total")
}

// touch creates both counter series so that comparisons see zeros.
func touch(d *Dispatcher) {
	d.sent.WithLabelValues("msteams")
	d.failed.WithLabelValues("msteams")
}

var warn = Message{Canary: "podinfo", Namespace: "test", Phase: flaggerv1beta1.CanaryPhaseProgressing, Severity: flaggerv1beta1.SeverityWarn, Text: "Halt advancement"}

func TestDispatcher_RetriesWithBackoffUntilTheServiceAccepts(t *testing.T) {
	t.Parallel()
	srv := newService(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	d, reg := newDispatcher(t, Options{Global: GlobalConfig{MSTeamsURL: srv.URL}, Backoff: 20 * time.Millisecond})
	touch(d)
	if err := d.Post(context.Background(), warn); err != nil {
		t.Fatalf("Post: %v", err)
	}
	eventually(t, 5*time.Second, "the message is delivered", func() error { return counters(t, reg, 1, 0) })
	reqs := srv.requests()
	if len(reqs) != 3 {
		t.Fatalf("got %d requests, want 3 (two refused, one accepted)", len(reqs))
	}
	if gap := reqs[1].At.Sub(reqs[0].At); gap < 20*time.Millisecond {
		t.Errorf("first retry after %s, want at least the backoff 20ms", gap)
	}
	if gap := reqs[2].At.Sub(reqs[1].At); gap < 40*time.Millisecond {
		t.Errorf("second retry after %s, want at least the doubled backoff 40ms", gap)
	}
}

func TestDispatcher_CountsAndLogsAFailureAfterTheLastAttempt(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		status   int
		attempts int
	}{
		{name: "server errors are retried", status: http.StatusInternalServerError, attempts: 3},
		{name: "rate limits are retried", status: http.StatusTooManyRequests, attempts: 3},
		{name: "a rejected message is not retried", status: http.StatusBadRequest, attempts: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newService(t, answer(tc.status, ""))
			logs := &logSink{}
			d, reg := newDispatcher(t, Options{
				Global: GlobalConfig{MSTeamsURL: srv.URL}, MaxAttempts: 3, Backoff: time.Millisecond, Logger: logs.logger(),
			})
			touch(d)
			if err := d.Post(context.Background(), warn); err != nil {
				t.Fatalf("Post: %v", err)
			}
			eventually(t, 5*time.Second, "the failure is counted", func() error { return counters(t, reg, 0, 1) })
			if n := len(srv.requests()); n != tc.attempts {
				t.Errorf("got %d attempts, want %d", n, tc.attempts)
			}
			want := fmt.Sprintf(`"msg"="Delivering a notification failed" "error"="posting to the Microsoft Teams webhook: the service answered %d`, tc.status)
			if !logs.contains(want) || !logs.contains(fmt.Sprintf(`"attempts"=%d`, tc.attempts)) || !logs.contains(`"canary"="test/podinfo"`) {
				t.Errorf("no log line %s with attempts and canary in %q", want, logs.lines)
			}
		})
	}
}

func TestDispatcher_PostReturnsAtOnceWhenTheServiceHangs(t *testing.T) {
	t.Parallel()
	srv := hanging(t)
	logs := &logSink{}
	d, reg := newDispatcher(t, Options{
		Global: GlobalConfig{MSTeamsURL: srv.URL}, Timeout: 200 * time.Millisecond, MaxAttempts: 1, Logger: logs.logger(),
	})
	touch(d)
	start := time.Now()
	for range 5 {
		if err := d.Post(context.Background(), warn); err != nil {
			t.Fatalf("Post: %v", err)
		}
	}
	if took := time.Since(start); took >= 200*time.Millisecond {
		t.Errorf("five Posts took %s, want them to return before one delivery times out", took)
	}
	eventually(t, 10*time.Second, "every delivery times out and is counted", func() error { return counters(t, reg, 0, 5) })
	if !logs.contains("context deadline exceeded") {
		t.Errorf("no timeout in the logs: %q", logs.lines)
	}
}

func TestDispatcher_DropsMessagesWhenTheQueueIsFull(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := newService(t, func(w http.ResponseWriter, r *http.Request, _ int) { <-release })
	d, reg := newDispatcher(t, Options{Global: GlobalConfig{MSTeamsURL: srv.URL}, Workers: 1, QueueSize: 1})
	touch(d)
	if err := d.Post(context.Background(), warn); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the worker is busy with the first message", func() error {
		if len(srv.requests()) == 0 {
			return errors.New("no request yet")
		}
		return nil
	})
	if err := d.Post(context.Background(), warn); err != nil {
		t.Fatalf("second Post (queued) = %v", err)
	}
	if err := d.Post(context.Background(), warn); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third Post = %v, want ErrQueueFull", err)
	}
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := counters(t, reg, 2, 1); err != nil {
		t.Error(err)
	}
}

func TestDispatcher_CloseDeliversWhatIsQueuedThenRefusesPosts(t *testing.T) {
	t.Parallel()
	srv := newService(t, answer(http.StatusOK, "1"))
	d, reg := newDispatcher(t, Options{Global: GlobalConfig{MSTeamsURL: srv.URL}})
	for range 20 {
		if err := d.Post(context.Background(), warn); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := len(srv.requests()); n != 20 {
		t.Errorf("%d messages delivered before Close returned, want 20", n)
	}
	if err := d.Post(context.Background(), warn); !errors.Is(err, ErrClosed) {
		t.Errorf("Post after Close = %v, want ErrClosed", err)
	}
	touch(d)
	if err := counters(t, reg, 20, 0); err != nil {
		t.Error(err)
	}
}

func TestDispatcher_CloseGivesUpAtItsDeadline(t *testing.T) {
	t.Parallel()
	srv := hanging(t)
	d, reg := newDispatcher(t, Options{Global: GlobalConfig{MSTeamsURL: srv.URL}, Timeout: time.Minute})
	touch(d)
	if err := d.Post(context.Background(), warn); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the delivery is in flight", func() error {
		if len(srv.requests()) == 0 {
			return errors.New("no request yet")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := d.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want the deadline exceeded", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close took %s after its 50ms deadline", took)
	}
	if err := counters(t, reg, 0, 1); err != nil {
		t.Error(err)
	}
}

func TestDispatcher_StartDrainsWhenTheManagerStops(t *testing.T) {
	t.Parallel()
	srv := newService(t, answer(http.StatusOK, "1"))
	d, _ := newDispatcher(t, Options{Global: GlobalConfig{MSTeamsURL: srv.URL}})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Start(ctx) }()
	if err := d.Post(context.Background(), warn); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Start = %v", err)
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("%d messages delivered, want 1", n)
	}
	if d.NeedLeaderElection() {
		t.Error("NeedLeaderElection = true, want every replica to drain its queue")
	}
}

func TestDispatcher_DelayDoublesUpToAMinuteAndHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	d := &Dispatcher{opts: withDefaults(Options{Backoff: time.Second})}
	limited := fmt.Errorf("posting: %w", &StatusError{Code: http.StatusTooManyRequests, RetryAfter: 10 * time.Second})
	cases := []struct {
		attempt int
		err     error
		want    time.Duration
	}{
		{attempt: 1, err: errors.New("timeout"), want: time.Second},
		{attempt: 2, err: errors.New("timeout"), want: 2 * time.Second},
		{attempt: 3, err: errors.New("timeout"), want: 4 * time.Second},
		{attempt: 10, err: errors.New("timeout"), want: time.Minute},
		{attempt: 1, err: limited, want: 10 * time.Second},
		{attempt: 5, err: limited, want: 16 * time.Second},
		{attempt: 1, err: &StatusError{Code: 429, RetryAfter: time.Hour}, want: time.Minute},
	}
	for _, tc := range cases {
		if got := d.delay(tc.attempt, tc.err); got != tc.want {
			t.Errorf("delay(%d, %v) = %s, want %s", tc.attempt, tc.err, got, tc.want)
		}
	}
}

func TestNewGlobal_ChoosesSlackThenTeamsThenNothing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		g    GlobalConfig
		want string
		err  string
	}{
		{name: "no flags", want: "notifier.Nop"},
		{name: "slack webhook", g: GlobalConfig{SlackURL: "https://hooks.slack.com/x", MSTeamsURL: "https://teams/x"}, want: "*notifier.slackNotifier"},
		{name: "slack token", g: GlobalConfig{SlackToken: "xoxb", SlackChannel: "deploys"}, want: "*notifier.slackNotifier"},
		{name: "slack token without channel", g: GlobalConfig{SlackToken: "xoxb"}, err: "-slack-token needs -slack-channel"},
		{name: "teams", g: GlobalConfig{MSTeamsURL: "https://teams/x", MSTeamsProxyURL: "http://proxy:3128"}, want: "*notifier.msTeamsNotifier"},
		{name: "bad proxy", g: GlobalConfig{MSTeamsURL: "https://teams/x", MSTeamsProxyURL: "proxy"}, err: "invalid proxy URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, err := NewGlobal(tc.g, "prod")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("NewGlobal = %v, want an error containing %q", err, tc.err)
				}
				if _, err := NewDispatcher(Options{Global: tc.g}); err == nil {
					t.Error("NewDispatcher accepted the same flags")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%T", n); got != tc.want {
				t.Errorf("NewGlobal = %s, want %s", got, tc.want)
			}
		})
	}
}
