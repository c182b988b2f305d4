package loadtester

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// maxOutput bounds the output kept from a command.
	maxOutput = 64 << 10
	// maxExcerpt bounds the output put in an error answer.
	maxExcerpt = 1 << 10
	// waitDelay is how long a stopped command's children may keep its
	// output open before the load tester stops waiting for them.
	waitDelay = 5 * time.Second
)

// AuthTokenEnv is the environment variable that may hold the load
// tester's bearer token; it is removed from the environment of the
// commands the load tester runs.
const AuthTokenEnv = "LOADTESTER_AUTH_TOKEN"

// childEnv is env without the load tester's own secrets.
func childEnv(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, AuthTokenEnv+"=") })
}

// exec runs a binary found on the path and returns its combined output (at
// most maxOutput bytes). ctx ending kills it.
func (s *Server) exec(ctx context.Context, bin string, args ...string) ([]byte, error) {
	path, err := s.lookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("%s is not installed in the load tester: %w", bin, err)
	}
	var out cappedBuffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = childEnv(os.Environ())
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = waitDelay
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return out.Bytes(), fmt.Errorf("running %s: %w (%w)", bin, err, ctx.Err())
		}
		return out.Bytes(), fmt.Errorf("running %s: %w", bin, err)
	}
	return out.Bytes(), nil
}

// shellBuiltins are the commands a shell runs without a binary.
var shellBuiltins = map[string]bool{
	".": true, ":": true, "[": true, "alias": true, "cd": true, "command": true, "echo": true, "eval": true,
	"exec": true, "exit": true, "export": true, "false": true, "printf": true, "read": true, "set": true,
	"test": true, "trap": true, "true": true, "type": true, "ulimit": true, "umask": true, "unset": true,
	"wait": true,
}

// checkShellCommand fails when sh, or the binary of a command of the line,
// is not installed, so the webhook fails now instead of the background run
// failing unseen.
func (s *Server) checkShellCommand(line commandLine) error {
	if _, err := s.lookPath("sh"); err != nil {
		return fmt.Errorf("sh is not installed in the load tester: %w", err)
	}
	if line.shellOnly != "" {
		return nil // its commands are not all known
	}
	for _, bin := range line.commands {
		if shellBuiltins[bin] || strings.Contains(bin, "/") {
			continue
		}
		if _, err := s.lookPath(bin); err != nil {
			return fmt.Errorf("%s is not installed in the load tester: %w", bin, err)
		}
	}
	return nil
}

// excerpt is the end of a command's output, for an error answer.
func excerpt(out []byte) string {
	s := strings.TrimSpace(string(out))
	if len(s) <= maxExcerpt {
		return s
	}
	return "..." + s[len(s)-maxExcerpt:]
}

// cappedBuffer keeps the first maxOutput bytes written to it, from several
// goroutines (a command's stdout and stderr).
type cappedBuffer struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	truncated bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := maxOutput - b.buf.Len(); len(p) > room {
		b.buf.Write(p[:max(room, 0)])
		b.truncated = true
		return len(p), nil
	}
	b.buf.Write(p)
	return len(p), nil
}

// Bytes returns the output kept, marking a cut.
func (b *cappedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := bytes.Clone(b.buf.Bytes())
	if b.truncated {
		out = append(out, "\n[output truncated]\n"...)
	}
	return out
}
