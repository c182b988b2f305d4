// Package version holds the version of the Sluice build.
package version

import (
	"fmt"
	"runtime"
)

// Version is the release of this build. `make build` and `make images` set
// it with -ldflags "-X github.com/sluicedev/sluice/internal/version.Version=<version>";
// a plain `go build` leaves it at "dev".
var Version = "dev"

// Commit is the git commit the build was made from, set like Version by
// `make build` and `make images`; empty when unknown.
var Commit = ""

// String returns one line naming the Sluice version, the Go version it was
// built with, the platform and, when known, the commit, for example
// "sluice v0.1.0 go1.26.0 linux/amd64 commit 58bc4f4".
func String() string {
	s := fmt.Sprintf("sluice %s %s %s/%s", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if Commit != "" {
		s += " commit " + Commit
	}
	return s
}
