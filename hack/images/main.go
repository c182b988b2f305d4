// Command images builds Sluice's container images without a container
// engine: static Go binaries cross-compiled per platform, put on a scratch
// base (CA certificates, /etc/passwd and /etc/group with the non-root user
// 65532) with github.com/google/go-containerregistry, and written as OCI
// image layouts, one multi-platform index per image, under -out. With
// -registry it also pushes them as <registry>/<image>:<version>.
//
// The images are reproducible: every timestamp is -epoch (SOURCE_DATE_EPOCH,
// by default the commit time), layer entries are sorted with fixed owners
// and modes, and the binaries are built with -trimpath and without build
// ids, so the same commit gives the same digests. `make images` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// versionPkg is the package whose variables -ldflags -X sets.
const versionPkg = "github.com/sluicedev/sluice/internal/version"

// options are the command's flags.
type options struct {
	out       string
	version   string
	commit    string
	epoch     int64
	platforms []v1.Platform
	images    []string
	registry  string
	caCerts   string
	source    string
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "images: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, opts, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "images: %v\n", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var platforms, images string
	fs.StringVar(&o.out, "out", "dist", "Directory the OCI layouts are written to, one subdirectory per image.")
	fs.StringVar(&o.version, "version", "", "Version baked into the binaries and used as the image tag (required).")
	fs.StringVar(&o.commit, "commit", "", "Git commit baked into the binaries; empty asks git.")
	fs.Int64Var(&o.epoch, "epoch", -1, "Timestamp of every file and of the images, in Unix seconds; -1 takes SOURCE_DATE_EPOCH, else the commit time.")
	fs.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "Comma-separated platforms to build.")
	fs.StringVar(&images, "images", strings.Join(imageNames(), ","), "Comma-separated images to build.")
	fs.StringVar(&o.registry, "registry", "", "Push each image as <registry>/<image>:<version>, e.g. ghcr.io/sluicedev; empty writes the layouts only.")
	fs.StringVar(&o.caCerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA certificate bundle put into the images (Debian's ca-certificates package installs it).")
	fs.StringVar(&o.source, "source", "https://github.com/sluicedev/sluice", "Source repository named in the images' annotations.")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.version == "" {
		return nil, errors.New("-version is required")
	}
	if _, err := name.NewTag("example.com/x:"+o.version, name.StrictValidation); err != nil {
		return nil, fmt.Errorf("-version %q is not a valid image tag: %w", o.version, err)
	}
	for _, s := range strings.Split(platforms, ",") {
		p, err := parsePlatform(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		o.platforms = append(o.platforms, p)
	}
	for _, s := range strings.Split(images, ",") {
		s = strings.TrimSpace(s)
		if _, ok := recipes[s]; !ok {
			return nil, fmt.Errorf("unknown image %q: want one of %s", s, strings.Join(imageNames(), ", "))
		}
		o.images = append(o.images, s)
	}
	return o, nil
}

func run(ctx context.Context, o *options, stdout io.Writer) error {
	root, err := gitOutput(ctx, "", "rev-parse", "--show-toplevel")
	if err != nil {
		return err
	}
	if o.commit == "" {
		if o.commit, err = gitOutput(ctx, root, "rev-parse", "HEAD"); err != nil {
			return err
		}
	}
	if o.epoch < 0 {
		if o.epoch, err = sourceDateEpoch(ctx, root); err != nil {
			return err
		}
	}
	caCerts, err := os.ReadFile(o.caCerts)
	if err != nil {
		return fmt.Errorf("reading the CA certificates (install Debian's ca-certificates package or pass -ca-certs): %w", err)
	}
	work, err := os.MkdirTemp("", "sluice-images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	b := builder{
		root: root, work: work, version: o.version, commit: o.commit,
		created: time.Unix(o.epoch, 0).UTC(), caCerts: caCerts, source: o.source,
	}
	for _, image := range o.images {
		start := time.Now()
		var images []platformImage
		for _, p := range o.platforms {
			img, err := b.image(ctx, recipes[image], p)
			if err != nil {
				return fmt.Errorf("%s for %s: %w", image, p, err)
			}
			images = append(images, platformImage{Platform: p, Image: img})
		}
		idx := buildIndex(images, b.annotations())
		dir := filepath.Join(o.out, image)
		if err := writeLayout(dir, idx, o.version); err != nil {
			return fmt.Errorf("writing %s: %w", dir, err)
		}
		d, err := idx.Digest()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s:%s %s -> %s (%s)\n", image, o.version, d, dir, time.Since(start).Round(time.Second))
		if o.registry != "" {
			ref, err := name.NewTag(strings.TrimSuffix(o.registry, "/") + "/" + image + ":" + o.version)
			if err != nil {
				return fmt.Errorf("image reference: %w", err)
			}
			if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
				return fmt.Errorf("pushing %s: %w", ref, err)
			}
			fmt.Fprintf(stdout, "pushed %s@%s\n", ref, d)
		}
	}
	return nil
}

// writeLayout replaces dir with an OCI image layout whose index.json points
// at idx, tagged with version (org.opencontainers.image.ref.name).
func writeLayout(dir string, idx v1.ImageIndex, version string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": version,
	}))
}

// gitOutput runs git in dir and returns its trimmed output.
func gitOutput(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// sourceDateEpoch returns SOURCE_DATE_EPOCH, or else the time of the
// commit checked out in root.
func sourceDateEpoch(ctx context.Context, root string) (int64, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want Unix seconds", s)
		}
		return n, nil
	}
	s, err := gitOutput(ctx, root, "log", "-1", "--format=%ct")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(s, 10, 64)
}
