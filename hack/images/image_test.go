package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64"}
	epoch = time.Unix(1767225600, 0) // 2026-01-01
)

// testIndex assembles a two-platform index around fake binaries, the way
// run does around real ones.
func testIndex(t *testing.T, binary []byte, created time.Time) v1.ImageIndex {
	t.Helper()
	var images []platformImage
	for _, p := range []v1.Platform{amd64, arm64} {
		img, err := buildImage(imageSpec{
			Platform:    p,
			Entrypoint:  []string{"/usr/local/bin/app"},
			Env:         imageEnv,
			Created:     created,
			Annotations: map[string]string{"org.opencontainers.image.version": "v1.0.0"},
			Layers: []layerSpec{
				{CreatedBy: "base", Entries: baseEntries([]byte("fake CA bundle\n"))},
				{CreatedBy: "app", Entries: []entry{file("/usr/local/bin/app", 0o755, append([]byte(p.Architecture), binary...))}},
			},
		})
		if err != nil {
			t.Fatalf("buildImage(%s): %v", p, err)
		}
		images = append(images, platformImage{Platform: p, Image: img})
	}
	return buildIndex(images, map[string]string{"org.opencontainers.image.version": "v1.0.0"})
}

func digest(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestBuildIndex_SameInputsGiveSameDigestAndLayout(t *testing.T) {
	t.Parallel()
	bin := []byte("\x7fELF fake binary")
	a, b := testIndex(t, bin, epoch), testIndex(t, bin, epoch)
	if da, db := digest(t, a), digest(t, b); da != db {
		t.Fatalf("two builds of the same inputs gave %s and %s", da, db)
	}

	// The layouts on disk are byte for byte the same too.
	dirs := []string{filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")}
	for i, idx := range []v1.ImageIndex{a, b} {
		if err := writeLayout(dirs[i], idx, "v1.0.0"); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"index.json", "oci-layout"} {
		x, _ := os.ReadFile(filepath.Join(dirs[0], f))
		y, _ := os.ReadFile(filepath.Join(dirs[1], f))
		if !bytes.Equal(x, y) || len(x) == 0 {
			t.Errorf("%s differs between two layouts of the same inputs:\n%s\n%s", f, x, y)
		}
	}
	// And the layout reads back as the index, with both platforms.
	p, err := layout.FromPath(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := top.IndexManifest()
	if err != nil || len(im.Manifests) != 1 || im.Manifests[0].Digest != digest(t, a) {
		t.Fatalf("layout index.json = %+v, %v; want one entry pointing at %s", im, err, digest(t, a))
	}
	inner, err := top.ImageIndex(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	manifests, err := inner.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range manifests.Manifests {
		got = append(got, m.Platform.String())
	}
	if len(got) != 2 || got[0] != "linux/amd64" || got[1] != "linux/arm64" {
		t.Errorf("index platforms = %v, want [linux/amd64 linux/arm64]", got)
	}
}

func TestBuildIndex_DigestFollowsContentAndTime(t *testing.T) {
	t.Parallel()
	base := digest(t, testIndex(t, []byte("one"), epoch))
	if d := digest(t, testIndex(t, []byte("two"), epoch)); d == base {
		t.Errorf("a different binary gave the same digest %s", d)
	}
	if d := digest(t, testIndex(t, []byte("one"), epoch.Add(time.Second))); d == base {
		t.Errorf("a different SOURCE_DATE_EPOCH gave the same digest %s", d)
	}
}

func TestBuildImage_ConfigRunsAsNonRootWithFixedTimes(t *testing.T) {
	t.Parallel()
	idx := testIndex(t, []byte("bin"), epoch)
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(im.Manifests[1].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" || cfg.Architecture != "arm64" || cfg.OS != "linux" {
		t.Errorf("config user %q platform %s/%s, want 65532:65532 linux/arm64", cfg.Config.User, cfg.OS, cfg.Architecture)
	}
	if !cfg.Created.Equal(epoch) {
		t.Errorf("config created %s, want %s", cfg.Created, epoch)
	}
	for _, h := range cfg.History {
		if !h.Created.Equal(epoch) {
			t.Errorf("history %q created %s, want %s", h.CreatedBy, h.Created, epoch)
		}
	}
	if len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/usr/local/bin/app" {
		t.Errorf("entrypoint %v", cfg.Config.Entrypoint)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.Config.MediaType != "application/vnd.oci.image.config.v1+json" {
		t.Errorf("media types %s / %s, want OCI", m.MediaType, m.Config.MediaType)
	}
}

func TestLayerTar_SortedWithParentsFixedOwnersAndTimes(t *testing.T) {
	t.Parallel()
	home := dir("/home/nonroot", 0o700)
	home.UID, home.GID = nonRoot, nonRoot
	data, err := layerTar([]entry{
		file("/usr/local/bin/app", 0o755, []byte("x")),
		symlink("/bin/sh", "bash"),
		home,
		file("/etc/passwd", 0o644, []byte("root")),
	}, epoch.Add(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		name string
		mode int64
		uid  int
	}
	want := []row{
		{"bin/", 0o755, 0}, {"bin/sh", 0o777, 0}, {"etc/", 0o755, 0}, {"etc/passwd", 0o644, 0},
		{"home/", 0o755, 0}, {"home/nonroot/", 0o700, nonRoot},
		{"usr/", 0o755, 0}, {"usr/local/", 0o755, 0}, {"usr/local/bin/", 0o755, 0}, {"usr/local/bin/app", 0o755, 0},
	}
	tr := tar.NewReader(bytes.NewReader(data))
	var got []row
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, row{h.Name, h.Mode, h.Uid})
		if !h.ModTime.Equal(epoch) || h.Uname != "" || h.Gname != "" || h.Uid != h.Gid {
			t.Errorf("%s: mtime %s uname %q gname %q uid %d gid %d; want %s, no names, gid=uid", h.Name, h.ModTime, h.Uname, h.Gname, h.Uid, h.Gid, epoch)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("layer entries\n got %v\nwant %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestLayerTar_RejectsTwoEntriesForOnePath(t *testing.T) {
	t.Parallel()
	_, err := layerTar([]entry{file("/a", 0o644, nil), file("a", 0o644, nil)}, epoch)
	if err == nil {
		t.Fatal("layerTar accepted /a twice")
	}
}

// TestGoBuild_StaticReproducibleWithVersion builds a small program twice
// into different directories, as two `make images` runs would, and compares
// the bytes: -trimpath, no build id and no VCS stamp leave nothing that
// varies. The binary is static and prints the version and commit baked in.
func TestGoBuild_StaticReproducibleWithVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go program")
	}
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{root: root, version: "v9.9.9", commit: "abc123"}
	p := v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	var bins []string
	for _, d := range []string{t.TempDir(), t.TempDir()} {
		out := filepath.Join(d, "version")
		if err := b.goBuild(t.Context(), "./hack/images/testdata/version", p, out); err != nil {
			t.Fatal(err)
		}
		bins = append(bins, out)
	}
	x, _ := os.ReadFile(bins[0])
	y, _ := os.ReadFile(bins[1])
	if len(x) == 0 || !bytes.Equal(x, y) {
		t.Fatal("two builds of the same source differ")
	}
	f, err := elf.Open(bins[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %s program header: not static", prog.Type)
		}
	}
	out, err := exec.Command(bins[0]).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); !strings.HasPrefix(got, "sluice v9.9.9 go") || !strings.HasSuffix(got, " commit abc123") {
		t.Errorf("the binary printed %q, want the version v9.9.9 and commit abc123 baked in", got)
	}
}
