package testenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
)

// FlaggerModule is the Go module of Flagger, whose CRDs and source Sluice's
// compatibility tests read. It is not a dependency of Sluice's go.mod: it is
// fetched on its own into the module cache.
const FlaggerModule = "github.com/fluxcd/flagger"

// FlaggerVersion is the Flagger release Sluice is compatible with.
// hack/install-deps.sh downloads the same version.
const FlaggerVersion = "v1.44.0"

var flaggerDir = sync.OnceValues(func() (string, error) {
	return downloadModule(FlaggerModule + "@" + FlaggerVersion)
})

// FlaggerModuleDir returns the directory of Flagger's module at
// FlaggerVersion in the Go module cache, downloading it through the module
// proxy when it is not there yet. It holds Flagger's CRDs
// (artifacts/flagger/crd.yaml) and its source, which can be built with
// `go build` from that directory.
func FlaggerModuleDir() (string, error) {
	return flaggerDir()
}

// downloadModule runs `go mod download -json module@version` in an empty
// directory, so that no go.mod is consulted or changed, and returns the
// module's directory in the cache.
func downloadModule(modVersion string) (string, error) {
	tmp, err := os.MkdirTemp("", "sluice-mod-")
	if err != nil {
		return "", fmt.Errorf("creating a directory to download %s from: %w", modVersion, err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	cmd := exec.Command("go", "mod", "download", "-json", modVersion)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.Output()
	// With -json, go mod download reports a failure for the module in
	// the JSON's Error field and exits non-zero; read it either way.
	var info struct {
		Dir   string
		Error string
	}
	if jerr := json.Unmarshal(out, &info); jerr != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go mod download %s: %w: %s", modVersion, err, ee.Stderr)
		}
		return "", fmt.Errorf("go mod download %s: reading its answer: %w", modVersion, errors.Join(err, jerr))
	}
	if info.Error != "" {
		return "", fmt.Errorf("go mod download %s: %s", modVersion, info.Error)
	}
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", modVersion, err)
	}
	if _, err := os.Stat(info.Dir); err != nil {
		return "", fmt.Errorf("go mod download %s: the module directory is missing: %w", modVersion, err)
	}
	return info.Dir, nil
}
