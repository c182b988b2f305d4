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
}
