package main

import (
	"archive/tar"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// TestDebianTools_RunInAnEmptyRoot unpacks the bash, sh and curl entries of
// the load tester image, alone with the scratch base, into an empty
// directory and runs them there under chroot: a missing shared library or
// loader fails it. It fetches Debian's packages (cached in
// ~/.cache/sluice/debian) and needs root for chroot.
func TestDebianTools_RunInAnEmptyRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("fetches Debian packages")
	}
	if os.Geteuid() != 0 || runtime.GOOS != "linux" {
		t.Skip("needs root on linux for chroot")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("needs apt-get")
	}
	entries, err := debianTools(t.Context(), runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writeEntries(t, root, append(baseEntries([]byte("no CA\n")), entries...))

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"/bin/bash", "-c", "echo $((6*7)) $BASH_VERSION"}, "42 5."},
		{[]string{"/bin/sh", "-c", "x=ok; echo $x"}, "ok"},
		{[]string{"/usr/bin/curl", "--version"}, "libcurl"},
		// curl reads a local file: the protocol code and its libraries load.
		{[]string{"/usr/bin/curl", "-sS", "file:///etc/passwd"}, "nonroot:x:65532"},
	} {
		cmd := exec.Command(tc.args[0], tc.args[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
		cmd.Dir = "/"
		cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v in the image root: %v\n%s\nwant output containing %q", tc.args, err, out, tc.want)
		}
	}
}

// writeEntries lays entries out under root as an image runtime would
// unpack them.
func writeEntries(t *testing.T, root string, entries []entry) {
	t.Helper()
	for _, e := range entries {
		p := filepath.Join(root, e.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch e.Type {
		case tar.TypeDir:
			err = os.MkdirAll(p, os.FileMode(e.Mode))
		case tar.TypeSymlink:
			err = os.Symlink(e.Link, p)
		default:
			err = os.WriteFile(p, e.Data, os.FileMode(e.Mode))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
