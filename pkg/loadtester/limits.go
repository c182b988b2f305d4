package loadtester

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicedev/sluice/pkg/hostlist"
)

// The defaults of the load tester's caps (see Config).
const (
	// DefaultMaxJobs caps the commands running at once.
	DefaultMaxJobs = 20
	// DefaultMaxLoadDuration caps hey -z.
	DefaultMaxLoadDuration = 30 * time.Minute
	// DefaultMaxLoadRate caps the requests per second of one load test.
	DefaultMaxLoadRate = 1000
	// DefaultMaxLoadWorkers caps hey -c.
	DefaultMaxLoadWorkers = 200
	// maxBodyFile bounds a hey -D request body.
	maxBodyFile = 10 << 20
)

// refusal is an error answered with its own HTTP status.
type refusal struct {
	status int
	msg    string
}

func (r *refusal) Error() string { return r.msg }

func refuse(status int, format string, args ...any) error {
	return &refusal{status: status, msg: fmt.Sprintf(format, args...)}
}

// statusOf is the HTTP status of an error: a refusal's own, else 400.
func statusOf(err error) int {
	var r *refusal
	if errors.As(err, &r) {
		return r.status
	}
	return http.StatusBadRequest
}

// loadPolicy is what the load tester lets a hey load test do.
type loadPolicy struct {
	targets    *hostlist.List
	bodyDir    string
	maxDur     time.Duration
	maxRate    float64
	maxWorkers int
}

// apply turns a parsed hey command into the Load to run, or refuses it
// (403) when it asks for more than the policy allows: a target host or
// proxy outside the allow-list, a -D file outside the body directory, more
// workers, a longer duration or a higher rate than the caps. A load test
// without -q is paced at the rate cap.
func (p loadPolicy) apply(h heyCommand) (Load, error) {
	l := h.load
	u, err := url.Parse(l.URL)
	if err != nil {
		return Load{}, fmt.Errorf("parsing the URL: %w", err)
	}
	if err := p.targets.Check(u.Hostname()); err != nil {
		return Load{}, refuse(http.StatusForbidden, "load test target refused: %v; start the load tester with -allowed-targets listing it", err)
	}
	if l.Proxy != nil {
		if err := p.targets.Check(l.Proxy.Hostname()); err != nil {
			return Load{}, refuse(http.StatusForbidden, "load test proxy -x refused: %v; start the load tester with -allowed-targets listing it", err)
		}
	}
	if err := p.caps("hey", l.Workers, l.Duration, &l.QPS); err != nil {
		return Load{}, err
	}
	if h.bodyFile != "" {
		if l.Body, err = p.readBody(h.bodyFile); err != nil {
			return Load{}, err
		}
	}
	l.Targets = p.targets
	return l, nil
}

// applyGRPC checks a ghz load against the policy as apply does.
func (p loadPolicy) applyGRPC(g GRPCLoad) (GRPCLoad, error) {
	host, _, err := net.SplitHostPort(g.Target)
	if err != nil {
		return GRPCLoad{}, fmt.Errorf("the target %q must be host:port", g.Target)
	}
	if err := p.targets.Check(host); err != nil {
		return GRPCLoad{}, refuse(http.StatusForbidden, "load test target refused: %v; start the load tester with -allowed-targets listing it", err)
	}
	if err := p.caps("ghz", g.Workers, g.Duration, &g.QPS); err != nil {
		return GRPCLoad{}, err
	}
	g.Targets = p.targets
	return g, nil
}

// caps checks a load's workers, duration and rate (qps per worker, which
// becomes the rate cap's share when 0).
func (p loadPolicy) caps(tool string, workers int, duration time.Duration, qps *float64) error {
	switch rate := *qps * float64(workers); {
	case workers > p.maxWorkers:
		return refuse(http.StatusForbidden, "%s -c %d asks for more workers than this load tester allows (-max-load-workers=%d)", tool, workers, p.maxWorkers)
	case duration > p.maxDur:
		return refuse(http.StatusForbidden, "%s -z %s is longer than this load tester allows (-max-load-duration=%s)", tool, duration, p.maxDur)
	case rate > p.maxRate:
		return refuse(http.StatusForbidden, "%s asks for %g requests per second (-q, -c); this load tester allows at most %g (-max-load-rate)", tool, rate, p.maxRate)
	case *qps == 0:
		*qps = p.maxRate / float64(workers)
	}
	return nil
}

// readBody reads a hey -D file, only from inside the body directory: an
// absolute path must lie in it, a relative one is taken from it, and
// neither .. nor a symbolic link may lead out of it.
func (p loadPolicy) readBody(name string) ([]byte, error) {
	if p.bodyDir == "" {
		return nil, refuse(http.StatusForbidden,
			"hey -D %s refused: -D reads a file of the load tester and sends it, so it is off unless the load tester is started with -hey-body-dir=<directory>; send the body inline with -d instead", name)
	}
	rel := name
	if filepath.IsAbs(name) {
		var err error
		rel, err = filepath.Rel(p.bodyDir, name)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return nil, refuse(http.StatusForbidden, "hey -D %s refused: only files in %s (-hey-body-dir) may be sent", name, p.bodyDir)
		}
	}
	root, err := os.OpenRoot(p.bodyDir)
	if err != nil {
		return nil, refuse(http.StatusInternalServerError, "opening -hey-body-dir: %v", err)
	}
	defer root.Close()
	f, err := root.Open(rel)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, refuse(http.StatusBadRequest, "hey -D %s: no such file in %s (-hey-body-dir)", name, p.bodyDir)
		}
		return nil, refuse(http.StatusForbidden, "hey -D %s refused: only files in %s (-hey-body-dir) may be sent: %v", name, p.bodyDir, err)
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, maxBodyFile+1))
	switch {
	case err != nil:
		return nil, refuse(http.StatusBadRequest, "hey -D %s: %v", name, err)
	case len(body) > maxBodyFile:
		return nil, refuse(http.StatusBadRequest, "hey -D %s: the file is larger than %d bytes", name, maxBodyFile)
	}
	return body, nil
}
