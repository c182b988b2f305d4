package version

import (
	"runtime"
	"strings"
	"testing"
)

func TestString_NamesVersionGoVersionAndPlatform(t *testing.T) {
	old := Version
	Version = "v1.2.3"
	t.Cleanup(func() { Version = old })

	got := String()
	for _, want := range []string{"sluice", "v1.2.3", runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(got, want) {
			t.Errorf("String() = %q, want it to contain %q", got, want)
		}
	}
	if strings.Contains(got, "\n") {
		t.Errorf("String() = %q, want one line", got)
	}
	if strings.Contains(got, "commit") {
		t.Errorf("String() = %q with no Commit set, want no commit", got)
	}
}

func TestString_EndsWithCommitWhenSet(t *testing.T) {
	oldV, oldC := Version, Commit
	Version, Commit = "v1.2.3", "0123abc"
	t.Cleanup(func() { Version, Commit = oldV, oldC })

	if got := String(); !strings.HasPrefix(got, "sluice v1.2.3 go") || !strings.HasSuffix(got, " commit 0123abc") {
		t.Errorf("String() = %q, want \"sluice v1.2.3 go... commit 0123abc\"", got)
	}
}
