package loadtester

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/sluicedev/sluice/pkg/webhook"
)

// task is one command of a POST /: what the payload asks for.
type task struct {
	canary, namespace string
	// kind is the metadata type: cmd, bash, helm, helmv3 or kubectl.
	kind    string
	command string
	// logOutput logs the command's output (metadata logCmdOutput).
	logOutput bool
	// returnOutput answers with the output of a command run synchronously
	// (metadata returnCmdOutput or logCmdOutput).
	returnOutput bool
}

func (t task) log(l logr.Logger) logr.Logger {
	return l.WithValues("canary", t.canary, "namespace", t.namespace, "type", t.kind)
}

// handleTask runs the command in a webhook payload's metadata:
//
//   - type cmd (the default) runs in the background and answers 202 at once,
//     "already running" when the same command runs for the canary. A hey
//     command line runs in process; others run with sh -c.
//   - types bash (bash -c), helm, helmv3 (helm) and kubectl run before the
//     answer: 200 (with the output when asked), 500 with the error and the
//     end of the output when they fail.
//
// A malformed payload or command, or an unknown type, answers 400; a
// command the server does not allow (see Config), or a load test beyond its
// targets and caps, answers 403 saying why; a command whose binary is not
// installed answers 500 naming it; 429 when -max-jobs commands run.
func (s *Server) handleTask(w http.ResponseWriter, r *http.Request) {
	p, ok := s.payload(w, r, false)
	if !ok {
		return
	}
	t, err := newTask(p)
	if err != nil {
		reply(w, http.StatusBadRequest, "%v", err)
		return
	}
	switch t.kind {
	case "cmd":
		s.startCmd(w, t)
	case "bash":
		if s.permit(w, t, "bash", "") {
			s.runSync(w, r, t, "bash", []string{"-c", t.command})
		}
	case "helm", "helmv3", "kubectl":
		bin := strings.TrimSuffix(t.kind, "v3")
		if !s.permit(w, t, bin, "") {
			return
		}
		line, err := parseCommandLine(t.command)
		if err != nil {
			reply(w, http.StatusBadRequest, "%v", err)
			return
		}
		if line.syntax != "" {
			reply(w, http.StatusBadRequest, "the %s arguments use %s: they are passed to %s as literal words, without a shell (use type bash for shell syntax)", bin, line.syntax, bin)
			return
		}
		args := line.words
		if len(args) > 0 && args[0] == bin { // "helm test x" and "test x" both mean helm test x
			args = args[1:]
		}
		s.runSync(w, r, t, bin, args)
	}
}

// newTask reads the task of a payload.
func newTask(p webhook.Payload) (task, error) {
	if p.Metadata == nil {
		return task{}, errors.New("the payload has no metadata: it needs metadata.cmd")
	}
	t := task{
		canary: p.Name, namespace: p.Namespace, kind: p.Metadata["type"], command: strings.TrimSpace(p.Metadata["cmd"]),
		logOutput:    p.Metadata["logCmdOutput"] == "true",
		returnOutput: p.Metadata["returnCmdOutput"] == "true" || p.Metadata["logCmdOutput"] == "true",
	}
	switch t.kind {
	case "":
		t.kind = "cmd"
	case "cmd", "bash", "helm", "helmv3", "kubectl":
	case "concord", "ngrinder":
		return task{}, fmt.Errorf("metadata.type %q is not supported by the Sluice load tester", t.kind)
	default:
		return task{}, fmt.Errorf("unknown metadata.type %q: want cmd, bash, helm, helmv3 or kubectl", t.kind)
	}
	if t.command == "" {
		return task{}, errors.New("metadata.cmd is missing or empty")
	}
	return t, nil
}

// startCmd starts a type cmd command in the background: an in-process hey
// load test, or a command line run with sh -c once the policy allows every
// command in it.
func (s *Server) startCmd(w http.ResponseWriter, t task) {
	line, err := parseCommandLine(t.command)
	if err != nil {
		reply(w, http.StatusBadRequest, "%v", err)
		return
	}
	var run func(ctx context.Context)
	switch {
	case slices.ContainsFunc(line.commands, isHey):
		load, err := s.heyLoad(line)
		if err != nil {
			s.refused(t, "hey", err)
			reply(w, statusOf(err), "%v", err)
			return
		}
		s.warnLong(t, load.Duration)
		run = func(ctx context.Context) {
			s.runLoad(ctx, t, "hey", load.URL, func(ctx context.Context, o Observer) (Result, error) { return Generate(ctx, load, o) })
		}
	case slices.ContainsFunc(line.commands, isGhz):
		load, err := s.ghzLoad(line)
		if err != nil {
			s.refused(t, "ghz", err)
			reply(w, statusOf(err), "%v", err)
			return
		}
		s.warnLong(t, load.Duration)
		run = func(ctx context.Context) {
			s.runLoad(ctx, t, "ghz", load.Target+load.Method, func(ctx context.Context, o Observer) (Result, error) { return GenerateGRPC(ctx, load, o) })
		}
	default:
		if !s.permitLine(w, t, line) {
			return
		}
		if err := s.checkShellCommand(line); err != nil {
			reply(w, http.StatusInternalServerError, "%v", err)
			return
		}
		run = func(ctx context.Context) { s.runShell(ctx, t) }
	}
	switch err := s.runs.goRun(key(t.canary, t.namespace)+"\x00"+t.command, s.timeout, run); {
	case errors.Is(err, errAlreadyRunning):
		reply(w, http.StatusAccepted, "already running")
	case errors.Is(err, errTooMany):
		reply(w, http.StatusTooManyRequests, "%v", err)
	case err != nil:
		reply(w, http.StatusServiceUnavailable, "%v", err)
	default:
		reply(w, http.StatusAccepted, "command started")
	}
}

// heyLoad reads a hey command line into the Load the policy lets it run.
// hey runs in process, never through a shell: its line must be one command
// of literal words.
func (s *Server) heyLoad(line commandLine) (Load, error) {
	if line.words == nil {
		return Load{}, fmt.Errorf("the hey command line uses %s, which the in-process hey does not run: give one hey command with literal words "+
			"(no variables, pipes or lists; quote a URL holding & in single quotes)", line.syntax)
	}
	h, err := parseHey(line.words[1:])
	if err != nil {
		return Load{}, fmt.Errorf("parsing the hey command: %w", err)
	}
	return s.load.apply(h)
}

// ghzLoad reads a ghz command line into the GRPCLoad the policy lets it
// run; like hey, ghz runs in process.
func (s *Server) ghzLoad(line commandLine) (GRPCLoad, error) {
	if line.words == nil {
		return GRPCLoad{}, fmt.Errorf("the ghz command line uses %s, which the in-process ghz does not run: give one ghz command with literal words", line.syntax)
	}
	g, err := parseGhz(line.words[1:])
	if err != nil {
		return GRPCLoad{}, fmt.Errorf("parsing the ghz command: %w", err)
	}
	return s.load.applyGRPC(g)
}

// warnLong logs a load test that the command timeout will cut short.
func (s *Server) warnLong(t task, d time.Duration) {
	if d > s.timeout {
		t.log(s.log).Info("The load test's duration is longer than the command timeout; it will stop at the timeout", "duration", d.String(), "timeout", s.timeout.String())
	}
}

// refused logs and counts a load test the load tester refuses by policy.
func (s *Server) refused(t task, tool string, err error) {
	if statusOf(err) != http.StatusForbidden {
		return
	}
	t.kind = tool
	t.log(s.log).Info("Load test refused", "reason", err.Error(), "cmd", t.command)
	s.metrics.commands.WithLabelValues(t.canary, t.namespace, tool, "refused").Inc()
}

// runLoad runs an in-process load test (tool hey or ghz, against target)
// and reports it.
func (s *Server) runLoad(ctx context.Context, t task, tool, target string, generate func(context.Context, Observer) (Result, error)) {
	log := t.log(s.log).WithValues("tool", tool, "target", target)
	log.Info("Load test started", "cmd", t.command)
	res, err := generate(ctx, s.metrics.observer(t.canary, t.namespace))
	s.metrics.finished(t.canary, t.namespace, res)
	kv := []any{
		"requests", res.Requests, "errors", res.Errors, "transportErrors", res.TransportErrors, "codes", res.Codes,
		"elapsed", res.Elapsed.Round(time.Millisecond).String(), "rps", fmt.Sprintf("%.1f", res.RPS()),
		"p50", res.P50.String(), "p90", res.P90.String(), "p99", res.P99.String(),
	}
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		s.metrics.commands.WithLabelValues(t.canary, t.namespace, tool, "stopped").Inc()
		log.Info("Load test stopped", append(kv, "reason", err.Error())...)
	case err != nil:
		s.metrics.commands.WithLabelValues(t.canary, t.namespace, tool, "failed").Inc()
		log.Error(err, "Load test failed", kv...)
	default:
		s.metrics.commands.WithLabelValues(t.canary, t.namespace, tool, "succeeded").Inc()
		log.Info("Load test finished", kv...)
	}
}

// runShell runs a type cmd command that is not an in-process hey with sh -c.
func (s *Server) runShell(ctx context.Context, t task) {
	log := t.log(s.log).WithValues("cmd", t.command)
	log.Info("Command started")
	out, err := s.exec(ctx, "sh", "-c", t.command)
	s.report(log, t, out, err)
}

// runSync runs a command before answering.
func (s *Server) runSync(w http.ResponseWriter, r *http.Request, t task, bin string, args []string) {
	if _, err := s.lookPath(bin); err != nil {
		reply(w, http.StatusInternalServerError, "%s is not installed in the load tester: %v", bin, err)
		return
	}
	ctx, end, err := s.runs.begin(r.Context(), "", s.timeout)
	if errors.Is(err, errTooMany) {
		reply(w, http.StatusTooManyRequests, "%v", err)
		return
	}
	if err != nil {
		reply(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	defer end()
	log := t.log(s.log).WithValues("cmd", t.command)
	out, err := s.exec(ctx, bin, args...)
	s.report(log, t, out, err)
	if err != nil {
		reply(w, http.StatusInternalServerError, "%v\n%s", err, excerpt(out))
		return
	}
	if !t.returnOutput {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(out)
}

// report logs and counts the end of a command.
func (s *Server) report(log logr.Logger, t task, out []byte, err error) {
	if t.logOutput || err != nil {
		log = log.WithValues("output", string(out))
	}
	switch {
	case err != nil:
		s.metrics.commands.WithLabelValues(t.canary, t.namespace, t.kind, "failed").Inc()
		log.Error(err, "Command failed")
	default:
		s.metrics.commands.WithLabelValues(t.canary, t.namespace, t.kind, "succeeded").Inc()
		log.Info("Command finished")
	}
}
