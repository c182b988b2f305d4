package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// recipe says what goes into one image.
type recipe struct {
	// Package is the Go main package of the image's program.
	Package string
	// Binary is the program's name in /usr/local/bin.
	Binary string
	// Tools adds a layer of extra programs for a platform, or is nil.
	Tools func(ctx context.Context, b *builder, p v1.Platform) (layerSpec, error)
}

// recipes are the images `make images` builds, by name.
var recipes = map[string]recipe{
	"sluice":            {Package: "./cmd/sluice", Binary: "sluice"},
	"sluice-loadtester": {Package: "./cmd/loadtester", Binary: "loadtester"},
}

// imageNames lists the recipes' names, sorted.
func imageNames() []string {
	names := make([]string, 0, len(recipes))
	for n := range recipes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// builder turns recipes into images for one version and commit.
type builder struct {
	root, work      string
	version, commit string
	created         time.Time
	caCerts         []byte
	source          string
}

// annotations are the OCI annotations of every image and index.
func (b *builder) annotations() map[string]string {
	return map[string]string{
		"org.opencontainers.image.created":  b.created.Format(time.RFC3339),
		"org.opencontainers.image.version":  b.version,
		"org.opencontainers.image.revision": b.commit,
		"org.opencontainers.image.source":   b.source,
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
}

// image builds r's program for p and assembles its image.
func (b *builder) image(ctx context.Context, r recipe, p v1.Platform) (v1.Image, error) {
	bin := filepath.Join(b.work, p.OS+"-"+p.Architecture+p.Variant, r.Binary)
	if err := b.goBuild(ctx, r.Package, p, bin); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	spec := imageSpec{
		Platform:    p,
		Entrypoint:  []string{"/usr/local/bin/" + r.Binary},
		Env:         imageEnv,
		Created:     b.created,
		Annotations: b.annotations(),
		Layers:      []layerSpec{{CreatedBy: "scratch base: CA certificates, passwd, group", Entries: baseEntries(b.caCerts)}},
	}
	if r.Tools != nil {
		tools, err := r.Tools(ctx, b, p)
		if err != nil {
			return nil, err
		}
		spec.Layers = append(spec.Layers, tools)
	}
	spec.Layers = append(spec.Layers, layerSpec{
		CreatedBy: fmt.Sprintf("%s %s (%s)", r.Binary, b.version, r.Package),
		Entries:   []entry{file("/usr/local/bin/"+r.Binary, 0o755, data)},
	})
	return buildImage(spec)
}

// imageEnv is the environment of every image.
var imageEnv = []string{
	"PATH=/usr/local/bin:/usr/bin:/bin",
	"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
	"HOME=/home/nonroot",
}

// goBuild cross-compiles pkg for p into out as a static binary with the
// version and commit baked in, reproducibly (-trimpath, no build id, no VCS
// stamp: the commit is passed explicitly).
func (b *builder) goBuild(ctx context.Context, pkg string, p v1.Platform, out string) error {
	if _, err := os.Stat(out); err == nil {
		return nil // built for an earlier image of the same run
	}
	ldflags := fmt.Sprintf("-s -w -buildid= -X %s.Version=%s -X %s.Commit=%s", versionPkg, b.version, versionPkg, b.commit)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out, pkg)
	cmd.Dir = b.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	if p.Architecture == "arm" && p.Variant != "" {
		cmd.Env = append(cmd.Env, "GOARM="+p.Variant[1:])
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s/%s: %w\n%s", pkg, p.OS, p.Architecture, err, out)
	}
	return nil
}
