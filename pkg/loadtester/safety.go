package loadtester

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
)

// commandPolicy says which binaries the load tester may run for the
// commands that are not in-process hey load tests.
type commandPolicy struct {
	// all allows every binary (-allow-commands).
	all bool
	// allowed are the binaries allowed by name (-allowed-commands).
	allowed map[string]bool
}

func newCommandPolicy(all bool, names []string) commandPolicy {
	p := commandPolicy{all: all, allowed: map[string]bool{}}
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" {
			p.allowed[n] = true
		}
	}
	return p
}

// allows reports whether bin may run. A name matches only itself: an
// allowed "kubectl" does not allow "/tmp/kubectl".
func (p commandPolicy) allows(bin string) bool {
	return p.all || p.allowed[bin]
}

// permitLine answers 403 and returns false unless the policy allows every
// command of a type cmd line run with sh -c. A line whose effect cannot be
// checked command by command (see commandLine.shellOnly) needs sh itself to
// be allowed.
func (s *Server) permitLine(w http.ResponseWriter, t task, line commandLine) bool {
	if s.policy.allows("sh") {
		return true // sh -c runs the line, and sh may run anything
	}
	if line.shellOnly != "" {
		return s.permit(w, t, "sh", fmt.Sprintf("the command line uses %s, which only a shell runs and which can run any command or read any file", line.shellOnly))
	}
	if len(line.commands) == 0 {
		reply(w, http.StatusBadRequest, "%v", errNoCommand)
		return false
	}
	for _, bin := range line.commands {
		why := ""
		if len(line.commands) > 1 {
			why = "every command of a pipeline or list must be allowed"
		}
		if !s.permit(w, t, bin, why) {
			return false
		}
	}
	return true
}

// permit answers 403 and returns false when the policy refuses bin for a
// task; why, when set, tells how bin was chosen. The refusal is logged and
// counted with the result "refused".
func (s *Server) permit(w http.ResponseWriter, t task, bin, why string) bool {
	if s.policy.allows(bin) {
		return true
	}
	t.log(s.log).Info("Command refused: its binary is not allowed", "binary", bin, "cmd", t.command)
	s.metrics.commands.WithLabelValues(t.canary, t.namespace, t.kind, "refused").Inc()
	if why != "" {
		why += "; "
	}
	reply(w, http.StatusForbidden,
		"command refused: %sthe binary %q is not allowed by this load tester; start it with -allowed-commands=%s (a comma-separated list of binaries) or -allow-commands (every binary)",
		why, bin, bin)
	return false
}

// tokenHash is the SHA-256 digest of a bearer token: comparing digests
// takes the same time whatever the length of the token sent.
type tokenHash [sha256.Size]byte

// authorized reports whether r carries the bearer token whose digest is
// want, in an "Authorization: Bearer <token>" header.
func authorized(r *http.Request, want tokenHash) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// requireToken answers 401 and returns false when the server has a token
// and r, other than a /healthz probe, does not carry it.
func (s *Server) requireToken(w http.ResponseWriter, r *http.Request) bool {
	if s.token == nil || r.URL.Path == "/healthz" || authorized(r, *s.token) {
		return true
	}
	// V(1): a scraper or a hook without the token would flood the log.
	s.log.V(1).Info("Request refused: missing or wrong bearer token", "path", r.URL.Path, "remote", r.RemoteAddr)
	w.Header().Set("WWW-Authenticate", `Bearer realm="sluice-loadtester"`)
	reply(w, http.StatusUnauthorized, "missing or wrong bearer token: send the header Authorization: Bearer <token>")
	return false
}
