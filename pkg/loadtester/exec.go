package loadtester

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
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

// exec runs a binary found on the path and returns its combined output (at
// most maxOutput bytes). ctx ending kills it.
func (s *Server) exec(ctx context.Context, bin string, args ...string) ([]byte, error) {
	path, err := s.lookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("%s is not installed in the load tester: %w", bin, err)
	}
	var out cappedBuffer
	cmd := exec.CommandContext(ctx, path, args...)
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

// shellBuiltins are the first words of shell commands that need no binary.
var shellBuiltins = map[string]bool{
	".": true, ":": true, "[": true, "!": true, "{": true, "alias": true, "case": true, "cd": true,
	"command": true, "echo": true, "eval": true, "exec": true, "exit": true, "export": true, "false": true,
	"for": true, "if": true, "printf": true, "read": true, "set": true, "source": true, "test": true,
	"time": true, "trap": true, "true": true, "type": true, "ulimit": true, "umask": true, "unset": true,
	"until": true, "wait": true, "while": true,
}

// checkShellCommand fails when sh, or the binary a type cmd command starts
// with, is not installed, so the webhook fails now instead of the
// background run failing unseen. needsShell says the line uses shell
// syntax; its words then are not known.
func (s *Server) checkShellCommand(words []string, needsShell bool) error {
	if _, err := s.lookPath("sh"); err != nil {
		return fmt.Errorf("sh is not installed in the load tester: %w", err)
	}
	if needsShell || len(words) == 0 {
		return nil
	}
	first := words[0]
	if shellBuiltins[first] || strings.ContainsAny(first, "/=") {
		return nil
	}
	if _, err := s.lookPath(first); err != nil {
		return fmt.Errorf("%s is not installed in the load tester: %w", first, err)
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
