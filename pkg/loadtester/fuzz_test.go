package loadtester

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/sluicedev/sluice/pkg/hostlist"
)

// The fuzz targets' seed corpora are in testdata/fuzz/<target>/; `go test`
// runs them, `go test -run '^$' -fuzz <target> -fuzztime 1m` explores.

// FuzzParseCommandLine: any command line is either refused with an error
// or described consistently, and a hey or ghz line is either refused with
// a 4xx or turned into a load within the policy.
func FuzzParseCommandLine(f *testing.F) {
	s := New(Config{AllowedTargets: hostlist.MustParse("in-cluster,192.0.2.0/24"), MaxLoadWorkers: 8, MaxLoadRate: 50, MaxLoadDuration: time.Minute})
	f.Cleanup(s.Close)
	f.Fuzz(func(t *testing.T, line string) {
		c, err := parseCommandLine(line)
		if err != nil {
			return
		}
		if c.words != nil && (c.syntax != "" || c.shellOnly != "" || len(c.commands) != 1 || c.commands[0] != c.words[0]) {
			t.Fatalf("%q: one simple command described as %+v", line, c)
		}
		if c.shellOnly != "" && c.syntax == "" {
			t.Fatalf("%q: shell-only construct %q without syntax", line, c.shellOnly)
		}
		if slices.ContainsFunc(c.commands, isGhz) && !slices.ContainsFunc(c.commands, isHey) {
			g, err := s.ghzLoad(c)
			if err != nil {
				if code := statusOf(err); code != http.StatusBadRequest && code != http.StatusForbidden {
					t.Fatalf("%q: refused with %d: %v", line, code, err)
				}
				return
			}
			if g.Workers < 1 || g.Workers > 8 || g.Duration > time.Minute || g.QPS <= 0 || g.QPS*float64(g.Workers) > 50+1e-9 || g.Targets == nil {
				t.Fatalf("%q: gRPC load %+v is outside the policy", line, g)
			}
			return
		}
		if !slices.ContainsFunc(c.commands, isHey) {
			return
		}
		l, err := s.heyLoad(c)
		if err != nil {
			if code := statusOf(err); code != http.StatusBadRequest && code != http.StatusForbidden {
				t.Fatalf("%q: refused with %d: %v", line, code, err)
			}
			return
		}
		if l.Workers < 1 || l.Workers > 8 || l.Duration > time.Minute || l.QPS <= 0 || l.QPS*float64(l.Workers) > 50+1e-9 || l.Targets == nil {
			t.Fatalf("%q: load %+v is outside the policy", line, l)
		}
	})
}

// FuzzServer_Request: whatever is POSTed to the API, the load tester
// answers with a 2xx or a 4xx, never a 5xx, and never panics. Nothing is
// allowed to run but hey against an unrouted test address, for 50ms.
func FuzzServer_Request(f *testing.F) {
	s := New(Config{
		Log:            logr.Discard(),
		Timeout:        50 * time.Millisecond,
		AllowedTargets: hostlist.MustParse("192.0.2.1"),
		LookPath:       func(file string) (string, error) { return "", &exec.Error{Name: file, Err: exec.ErrNotFound} },
		MaxJobs:        4,
	})
	f.Cleanup(s.Close)
	paths := []string{"/", "/gate/check", "/gate/open", "/gate/close", "/rollback/check", "/rollback/open", "/rollback/close", "/gate/approve", "/gate/halt"}
	f.Fuzz(func(t *testing.T, path uint8, body []byte) {
		p := paths[int(path)%len(paths)]
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, p, bytes.NewReader(body)))
		if w.Code >= 500 || w.Code < 200 {
			t.Fatalf("POST %s %q = %d %q", p, body, w.Code, w.Body.String())
		}
	})
}
