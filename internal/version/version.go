// Package version holds the version of the Sluice build.
package version

import (
	"fmt"
	"runtime"
)

// Version is the release of this build. `make build` sets it with
// -ldflags "-X github.com/sluicedev/sluice/internal/version.Version=<version>";
// a plain `go build` leaves it at "dev".
var Version = "dev"

// String returns one line naming the Sluice version, the Go version it was
// built with and the platform, for example "sluice v0.1.0 go1.26.0 linux/amd64".
func String() string {
	return fmt.Sprintf("sluice %s %s %s/%s", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
