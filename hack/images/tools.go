package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The load tester image carries what the hooks of Flagger's load tester
// image run: bash (and sh), curl, kubectl and helm; hey-style load runs in
// the load tester's own process.
//
//   - bash is Debian's bash-static, a static binary: /bin/bash, /bin/sh.
//   - curl is Debian's curl, which is linked dynamically: it is copied with
//     the dynamic loader and exactly the shared libraries it needs
//     (elfClosure), taken from the Debian packages of the image's
//     architecture. A static curl is not packaged by Debian, and building
//     one from C sources is not something this repository should carry.
//   - kubectl (k8s.io/kubernetes/cmd/kubectl, hack/tools) and helm
//     (helm.sh/helm/v4/cmd/helm, hack/tools/helm) are static Go binaries
//     cross-compiled by hack/tool.sh into bin/<os>-<arch>/.
//
// The Debian package versions are listed in
// /usr/share/sluice/debian-packages.txt inside the image.

// debianPackages are the Debian packages the load tester's programs come
// from.
var debianPackages = []string{"bash-static", "curl"}

// goTools are the programs built by hack/tool.sh NAME OS/ARCH.
var goTools = []string{"kubectl", "helm"}

func init() {
	r := recipes["sluice-loadtester"]
	r.Tools = loadtesterTools
	recipes["sluice-loadtester"] = r
}

// cacheDir is where downloaded packages are kept, as hack/tool.sh keeps
// its binaries: $SLUICE_CACHE, else ~/.cache/sluice.
func cacheDir() (string, error) {
	if d := os.Getenv("SLUICE_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "sluice"), nil
}

// debianTools returns the entries for bash, sh and curl of goArch.
func debianTools(ctx context.Context, goArch string) ([]entry, error) {
	cache, err := cacheDir()
	if err != nil {
		return nil, err
	}
	root, versions, err := debian{dir: filepath.Join(cache, "debian")}.rootfs(ctx, goArch, debianPackages)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", strings.Join(debianPackages, ", "), err)
	}
	bash, err := os.ReadFile(filepath.Join(root, "bin", "bash-static"))
	if err != nil {
		return nil, fmt.Errorf("bash-static: %w", err)
	}
	entries := []entry{
		file("/bin/bash", 0o755, bash),
		symlink("/bin/sh", "bash"),
		// glibc's resolver (curl) reads it; without it the default order
		// differs between glibc versions.
		file("/etc/nsswitch.conf", 0o644, []byte("hosts: files dns\n")),
		file("/usr/share/sluice/debian-packages.txt", 0o644, []byte(strings.Join(versions, "\n")+"\n")),
	}
	paths, err := elfClosure(root, "/usr/bin/curl", multiarch[goArch][1])
	if err != nil {
		return nil, fmt.Errorf("curl: %w", err)
	}
	curl, err := rootEntries(root, paths)
	if err != nil {
		return nil, err
	}
	return append(entries, curl...), nil
}

// loadtesterTools is the tools layer of the load tester image for p.
func loadtesterTools(ctx context.Context, b *builder, p v1.Platform) (layerSpec, error) {
	entries, err := debianTools(ctx, p.Architecture)
	if err != nil {
		return layerSpec{}, err
	}
	for _, t := range goTools {
		bin := filepath.Join(b.root, "bin", p.OS+"-"+p.Architecture, t)
		data, err := os.ReadFile(bin)
		if err != nil {
			return layerSpec{}, fmt.Errorf("%w (run hack/tool.sh %s %s/%s, or make images)", err, t, p.OS, p.Architecture)
		}
		entries = append(entries, file("/usr/local/bin/"+t, 0o755, data))
	}
	// Flagger's image names Helm 3 helmv3; hooks of type cmd may call it so.
	entries = append(entries, symlink("/usr/local/bin/helmv3", "helm"))
	return layerSpec{
		CreatedBy: "load tester tools: bash, sh, curl (Debian " + strings.Join(debianPackages, ", ") + "), " + strings.Join(goTools, ", "),
		Entries:   entries,
	}, nil
}
