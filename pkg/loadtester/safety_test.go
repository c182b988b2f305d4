package loadtester

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr/funcr"
)

func TestPost_RunsOnlyTheCommandsTheFlagsAllow(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, ok200)
	lookPath := fakeBinaries(t)
	tests := []struct {
		name       string
		all        bool     // -allow-commands
		allowed    []string // -allowed-commands
		metadata   map[string]string
		wantStatus int
		wantBody   []string
	}{
		{name: "hey is allowed without flags", metadata: map[string]string{"cmd": "hey -n 2 -c 1 " + tg.URL}, wantStatus: 202},
		{name: "hey is allowed with an allow-list without it", allowed: []string{"true"}, metadata: map[string]string{"cmd": "hey -n 2 -c 1 " + tg.URL}, wantStatus: 202},

		{name: "cmd is refused without flags", metadata: map[string]string{"cmd": "true"},
			wantStatus: 403, wantBody: []string{`the binary "true" is not allowed`, "-allowed-commands=true", "-allow-commands"}},
		{name: "cmd is refused before looking for its binary", metadata: map[string]string{"cmd": "k6 run /scripts/load.js"},
			wantStatus: 403, wantBody: []string{`"k6"`, "-allowed-commands=k6"}},
		{name: "cmd runs when its first word is allowed", allowed: []string{"echo", "true"}, metadata: map[string]string{"cmd": "true"}, wantStatus: 202},
		{name: "cmd runs with -allow-commands", all: true, metadata: map[string]string{"cmd": "echo hi"}, wantStatus: 202},
		{name: "cmd is refused when another binary is allowed", allowed: []string{"true"}, metadata: map[string]string{"cmd": "echo hi"},
			wantStatus: 403, wantBody: []string{`"echo"`}},
		{name: "cmd is refused when a path is given for an allowed name", allowed: []string{"true"}, metadata: map[string]string{"cmd": "/bin/true"},
			wantStatus: 403, wantBody: []string{`"/bin/true"`}},
		{name: "every command of a list must be allowed", allowed: []string{"true", "echo"}, metadata: map[string]string{"cmd": "true; id"},
			wantStatus: 403, wantBody: []string{"every command of a pipeline or list must be allowed", `the binary "id" is not allowed`, "-allowed-commands=id"}},
		{name: "every command of a pipeline must be allowed", allowed: []string{"curl"}, metadata: map[string]string{"cmd": "curl -s http://x/ | sh"},
			wantStatus: 403, wantBody: []string{`the binary "sh" is not allowed`}},
		{name: "a list of allowed commands runs", allowed: []string{"true", "echo"}, metadata: map[string]string{"cmd": "true && echo ok; true\necho ok"}, wantStatus: 202},
		{name: "Flagger's curl | grep runs when both are allowed", allowed: []string{"curl", "grep"},
			metadata: map[string]string{"cmd": "curl -sd 'test' http://podinfo-canary:9898/token | grep token"}, wantStatus: 202},
		{name: "command substitution needs sh", allowed: []string{"echo", "id"}, metadata: map[string]string{"cmd": "echo $(id)"},
			wantStatus: 403, wantBody: []string{"command substitution", `the binary "sh" is not allowed`}},
		{name: "a variable needs sh", allowed: []string{"echo"}, metadata: map[string]string{"cmd": "echo $LOADTESTER_AUTH_TOKEN"},
			wantStatus: 403, wantBody: []string{"the variable expansion $LOADTESTER_AUTH_TOKEN", `"sh"`}},
		{name: "a redirection from a file needs sh", allowed: []string{"cat"}, metadata: map[string]string{"cmd": "cat < /var/run/secrets/kubernetes.io/serviceaccount/token"},
			wantStatus: 403, wantBody: []string{"redirection <", `"sh"`}},
		{name: "an assignment needs sh", allowed: []string{"true"}, metadata: map[string]string{"cmd": "LD_PRELOAD=/tmp/x.so true"},
			wantStatus: 403, wantBody: []string{"variable assignment LD_PRELOAD=", `"sh"`}},
		{name: "a background job needs sh", allowed: []string{"true"}, metadata: map[string]string{"cmd": "true &"},
			wantStatus: 403, wantBody: []string{"uses &", `"sh"`}},
		{name: "output to /dev/null is fine", allowed: []string{"true"}, metadata: map[string]string{"cmd": "true >/dev/null 2>&1"}, wantStatus: 202},
		{name: "shell syntax runs when sh is allowed", allowed: []string{"sh"}, metadata: map[string]string{"cmd": "echo hi | cat; for i in 1; do true; done"}, wantStatus: 202},
		{name: "hey inside sh -c needs sh", allowed: []string{"true"}, metadata: map[string]string{"cmd": "sh -c 'hey http://podinfo.test/'"},
			wantStatus: 403, wantBody: []string{`the binary "sh" is not allowed`}},
		{name: "a malformed line is a 400", allowed: []string{"true"}, metadata: map[string]string{"cmd": "true |"},
			wantStatus: 400, wantBody: []string{"parsing the command line"}},

		{name: "bash is refused without flags", metadata: map[string]string{"type": "bash", "cmd": "echo hi"},
			wantStatus: 403, wantBody: []string{`"bash"`, "-allowed-commands=bash"}},
		{name: "bash is refused when only sh is allowed", allowed: []string{"sh"}, metadata: map[string]string{"type": "bash", "cmd": "echo hi"}, wantStatus: 403},
		{name: "bash runs when allowed", allowed: []string{"bash"}, metadata: map[string]string{"type": "bash", "cmd": "echo hi", "returnCmdOutput": "true"},
			wantStatus: 200, wantBody: []string{"hi\n"}},
		{name: "bash runs with -allow-commands", all: true, metadata: map[string]string{"type": "bash", "cmd": "true"}, wantStatus: 200},

		{name: "helm is refused without flags", metadata: map[string]string{"type": "helm", "cmd": "test podinfo"},
			wantStatus: 403, wantBody: []string{`"helm"`, "-allowed-commands=helm"}},
		{name: "helm is refused when only kubectl is allowed", allowed: []string{"kubectl"}, metadata: map[string]string{"type": "helm", "cmd": "test podinfo"}, wantStatus: 403},
		{name: "helm runs when allowed", allowed: []string{"helm", "kubectl"}, metadata: map[string]string{"type": "helm", "cmd": "test podinfo"}, wantStatus: 200},
		{name: "helmv3 is refused without flags", metadata: map[string]string{"type": "helmv3", "cmd": "test podinfo"},
			wantStatus: 403, wantBody: []string{`"helm"`}},
		{name: "helmv3 runs when helm is allowed", allowed: []string{"helm"}, metadata: map[string]string{"type": "helmv3", "cmd": "test podinfo"}, wantStatus: 200},

		{name: "kubectl is refused without flags", metadata: map[string]string{"type": "kubectl", "cmd": "get pods"},
			wantStatus: 403, wantBody: []string{`"kubectl"`, "-allowed-commands=kubectl"}},
		{name: "kubectl runs when allowed", allowed: []string{"helm", "kubectl"}, metadata: map[string]string{"type": "kubectl", "cmd": "get pods"}, wantStatus: 200},
		{name: "kubectl runs with -allow-commands", all: true, metadata: map[string]string{"type": "kubectl", "cmd": "get pods"}, wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, ts := newTestServer(t, Config{LookPath: lookPath, AllowCommands: tt.all, AllowedCommands: tt.allowed})
			status, body := post(t, ts.URL+"/", cmdPayload("podinfo", "test", tt.metadata))
			if status != tt.wantStatus {
				t.Errorf("status = %d %q, want %d", status, body, tt.wantStatus)
			}
			for _, want := range tt.wantBody {
				if !strings.Contains(body, want) {
					t.Errorf("body = %q, want it to contain %q", body, want)
				}
			}
		})
	}
}

func TestPost_LogsAndCountsRefusedCommands(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var logs []string
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		logs = append(logs, args)
	}, funcr.Options{})
	s := New(Config{Log: log, AllowedCommands: []string{"true"}})
	ts := httptest.NewServer(s)
	t.Cleanup(func() { ts.Close(); s.Close() })

	status, body := post(t, ts.URL+"/", cmdPayload("podinfo", "test", map[string]string{"type": "kubectl", "cmd": "delete ns prod"}))
	if status != http.StatusForbidden {
		t.Fatalf("status = %d %q, want 403", status, body)
	}
	mu.Lock()
	text := strings.Join(logs, "\n")
	mu.Unlock()
	for _, want := range []string{"Command refused", `"binary"="kubectl"`, `"cmd"="delete ns prod"`, `"canary"="podinfo"`} {
		if !strings.Contains(text, want) {
			t.Errorf("the logs lack %s:\n%s", want, text)
		}
	}
	if !hasMetric(metricsText(t, ts.URL), `sluice_loadtester_commands_total{canary="podinfo",namespace="test",result="refused",type="kubectl"}`, "1") {
		t.Error("the refused command is not counted")
	}
}

func TestServer_RequiresTheBearerTokenOnEveryEndpointButHealthz(t *testing.T) {
	t.Parallel()
	const token = "s3cr3t-token"
	tg := newTarget(t, ok200)
	_, ts := newTestServer(t, Config{AuthToken: token})
	payload := func(metadata map[string]string) []byte {
		b, err := json.Marshal(cmdPayload("podinfo", "test", metadata))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if status, body := doAuth(t, http.MethodPost, ts.URL+"/gate/open", payload(nil), "Bearer "+token); status != http.StatusAccepted {
		t.Fatalf("opening the gate with the token = %d %q", status, body)
	}
	endpoints := []struct {
		method, path string
		body         []byte
		wantOK       int // the answer with the token
	}{
		{http.MethodPost, "/", payload(map[string]string{"cmd": "hey -n 1 -c 1 " + tg.URL}), 202},
		{http.MethodPost, "/gate/check", payload(nil), 200},
		{http.MethodGet, "/metrics", nil, 200},
	}
	auths := []struct {
		name          string
		authorization string
		wantAllowed   bool
	}{
		{name: "missing token"},
		{name: "wrong token", authorization: "Bearer wrong"},
		{name: "token with a suffix", authorization: "Bearer " + token + "x"},
		{name: "token prefix", authorization: "Bearer " + token[:4]},
		{name: "empty bearer", authorization: "Bearer "},
		{name: "token without the scheme", authorization: token},
		{name: "basic scheme", authorization: "Basic " + token},
		{name: "right token", authorization: "Bearer " + token, wantAllowed: true},
		{name: "lower-case scheme", authorization: "bearer " + token, wantAllowed: true},
	}
	for _, e := range endpoints {
		for _, a := range auths {
			t.Run(fmt.Sprintf("%s %s with %s", e.method, e.path, a.name), func(t *testing.T) {
				status, body := doAuth(t, e.method, ts.URL+e.path, e.body, a.authorization)
				switch {
				case a.wantAllowed && status != e.wantOK:
					t.Errorf("status = %d %q, want %d", status, body, e.wantOK)
				case !a.wantAllowed && (status != http.StatusUnauthorized || !strings.Contains(body, "bearer token")):
					t.Errorf("status = %d %q, want 401", status, body)
				}
			})
		}
	}
	if status, body := do(t, http.MethodGet, ts.URL+"/healthz", nil); status != http.StatusOK {
		t.Errorf("/healthz without a token = %d %q, want 200", status, body)
	}
	if status, _ := do(t, http.MethodPost, ts.URL+"/nope", nil); status != http.StatusUnauthorized {
		t.Errorf("an unknown path without a token = %d, want 401", status)
	}
}

func TestServer_AnswersWithoutATokenWhenNoneIsSet(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{})
	for _, auth := range []string{"", "Bearer anything"} {
		if status, body := doAuth(t, http.MethodGet, ts.URL+"/metrics", nil, auth); status != http.StatusOK {
			t.Errorf("/metrics with Authorization %q = %d %q, want 200", auth, status, body)
		}
	}
}
