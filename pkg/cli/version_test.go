package cli

import (
	"strings"
	"testing"
)

func TestVersion_PrintsTheBuild(t *testing.T) {
	t.Parallel()
	r := sluiceIn(t.Context(), t, Options{}, "version").ok(t)
	if !strings.HasPrefix(r.out, "kubectl-sluice dev go1.") {
		t.Errorf("version printed %q", r.out)
	}
}

func TestCompletion_PrintsEachShellsScript(t *testing.T) {
	t.Parallel()
	for shell, want := range map[string]string{
		"bash": "__start_kubectl-sluice",
		"zsh":  "#compdef kubectl-sluice",
		"fish": "complete -c kubectl-sluice",
	} {
		r := sluiceIn(t.Context(), t, Options{}, "completion", shell).ok(t)
		if !strings.Contains(r.out, want) {
			t.Errorf("completion %s does not contain %q", shell, want)
		}
	}
	sluiceIn(t.Context(), t, Options{}, "completion", "tcsh").failsWith(t, `unknown shell "tcsh"`)
	sluiceIn(t.Context(), t, Options{}, "completion").failsWith(t, "name the shell")
}
