package loadtester

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicedev/sluice/pkg/hostlist"
	"github.com/sluicedev/sluice/pkg/webhook"
)

// DefaultTimeout bounds every command, as the -timeout flag of Flagger's
// loadtester does.
const DefaultTimeout = time.Hour

// maxPayload bounds the size of a webhook payload.
const maxPayload = 1 << 20

// Config configures a Server.
type Config struct {
	// Log receives the server's logs; the zero value discards them.
	Log logr.Logger
	// Timeout bounds the runtime of every command, hey load tests
	// included. Zero means DefaultTimeout.
	Timeout time.Duration
	// NamespaceRegexp, when set, makes the server refuse (403) payloads
	// whose namespace does not match it.
	NamespaceRegexp *regexp.Regexp
	// LookPath finds the binary of a command; nil means exec.LookPath.
	LookPath func(file string) (string, error)
	// AllowCommands lets the server run every binary, as Flagger's
	// loadtester does. The default, false, runs only in-process hey load
	// tests and the binaries in AllowedCommands, and refuses other
	// commands with 403.
	AllowCommands bool
	// AllowedCommands are the binaries the server may run, by name: every
	// command of a type cmd line (each side of a pipe or list), "bash" for
	// type bash, "helm" for helm and helmv3, "kubectl". A line with
	// expansions, redirections, assignments, background jobs or compound
	// commands needs "sh". Allowing sh or bash allows every command.
	AllowedCommands []string
	// AuthToken, when set, makes every endpoint but /healthz answer 401 to
	// requests without the header "Authorization: Bearer <AuthToken>".
	AuthToken string
	// AllowedTargets are the hosts hey load tests may send requests to,
	// directly, through a proxy (-x) or by redirect; nil means
	// hostlist.Default, the cluster's Services.
	AllowedTargets *hostlist.List
	// BodyDir is the only directory hey -D may read request bodies from;
	// empty refuses -D.
	BodyDir string
	// MaxJobs caps the commands running at once, load tests included; more
	// are refused with 429. Zero means DefaultMaxJobs.
	MaxJobs int
	// MaxLoadDuration caps hey -z. Zero means DefaultMaxLoadDuration.
	MaxLoadDuration time.Duration
	// MaxLoadRate caps the requests per second of one load test (hey -q
	// times -c); a load test without -q is paced at this rate. Zero means
	// DefaultMaxLoadRate.
	MaxLoadRate float64
	// MaxLoadWorkers caps hey -c. Zero means DefaultMaxLoadWorkers.
	MaxLoadWorkers int
}

// Server is the load tester's HTTP API. It serves:
//
//   - POST / runs the command in the payload's metadata (see handleTask);
//   - /gate/check, /gate/open, /gate/close: a manual gate per canary,
//     closed until opened;
//   - /gate/approve (always 200) and /gate/halt (always 403);
//   - /rollback/check, /rollback/open, /rollback/close: a rollback request
//     per canary, not requested until opened;
//   - /healthz and /metrics.
//
// Commands other than hey load tests run only when Config allows their
// binaries; hey load tests run only against Config's allowed targets and
// within its caps. With Config.AuthToken every endpoint but /healthz needs
// the token. Close stops the commands it runs.
type Server struct {
	log      logr.Logger
	timeout  time.Duration
	nsRegexp *regexp.Regexp
	lookPath func(string) (string, error)
	mux      *http.ServeMux
	runs     *runs
	metrics  *metrics
	policy   commandPolicy
	load     loadPolicy
	// token is the digest of Config.AuthToken; nil means no auth.
	token *tokenHash
}

// New returns a Server with no gate open and no command running.
func New(cfg Config) *Server {
	s := &Server{
		log: cfg.Log, timeout: cfg.Timeout, nsRegexp: cfg.NamespaceRegexp,
		lookPath: cfg.LookPath, mux: http.NewServeMux(), metrics: newMetrics(),
		policy: newCommandPolicy(cfg.AllowCommands, cfg.AllowedCommands),
		load: loadPolicy{
			targets: cfg.AllowedTargets, bodyDir: cfg.BodyDir,
			maxDur: orDefault(cfg.MaxLoadDuration, DefaultMaxLoadDuration), maxRate: orDefault(cfg.MaxLoadRate, DefaultMaxLoadRate),
			maxWorkers: orDefault(cfg.MaxLoadWorkers, DefaultMaxLoadWorkers),
		},
	}
	if s.load.targets == nil {
		s.load.targets = hostlist.MustParse(hostlist.Default)
	}
	if cfg.AuthToken != "" {
		h := tokenHash(sha256.Sum256([]byte(cfg.AuthToken)))
		s.token = &h
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.lookPath == nil {
		s.lookPath = exec.LookPath
	}
	s.runs = newRuns(orDefault(cfg.MaxJobs, DefaultMaxJobs), func(n int) { s.metrics.running.Set(float64(n)) })
	gate := &gateAPI{server: s, gates: newGates(), kind: "gate"}
	rollback := &gateAPI{server: s, gates: newGates(), kind: "rollback"}
	s.mux.HandleFunc("POST /{$}", s.handleTask)
	s.mux.HandleFunc("POST /gate/check", gate.check)
	s.mux.HandleFunc("POST /gate/open", gate.handleSet(true))
	s.mux.HandleFunc("POST /gate/close", gate.handleSet(false))
	s.mux.HandleFunc("/gate/approve", approve)
	s.mux.HandleFunc("/gate/halt", halt)
	s.mux.HandleFunc("POST /rollback/check", rollback.check)
	s.mux.HandleFunc("POST /rollback/open", rollback.handleSet(true))
	s.mux.HandleFunc("POST /rollback/close", rollback.handleSet(false))
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { reply(w, http.StatusOK, "OK") })
	s.mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	return s
}

// ServeHTTP serves the load tester's API, checking the bearer token first.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.requireToken(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Close stops the running commands, refuses new ones and returns once
// they have all returned.
func (s *Server) Close() {
	s.runs.close()
}

// payload decodes the webhook payload of a request. On failure it answers
// 400 (or 403 for a namespace the server does not serve) and returns false.
// needName asks for a canary name and namespace.
func (s *Server) payload(w http.ResponseWriter, r *http.Request, needName bool) (webhook.Payload, bool) {
	var p webhook.Payload
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPayload)).Decode(&p); err != nil {
		reply(w, http.StatusBadRequest, "decoding the webhook payload: %v", err)
		return p, false
	}
	if needName && (p.Name == "" || p.Namespace == "") {
		reply(w, http.StatusBadRequest, "the payload needs the canary's name and namespace")
		return p, false
	}
	if s.nsRegexp != nil && !s.nsRegexp.MatchString(p.Namespace) {
		reply(w, http.StatusForbidden, "namespace %q is not served by this load tester", p.Namespace)
		return p, false
	}
	return p, true
}

// orDefault is v, or def when v is not positive.
func orDefault[T int | float64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// reply answers with a status and a one-line text message.
func reply(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, format+"\n", args...)
}
