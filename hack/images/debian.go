package main

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// debian fetches Debian packages of any architecture with the machine's
// apt-get, through a private apt state per architecture under dir, so the
// machine's own apt configuration and dpkg database are never touched (no
// `dpkg --add-architecture`). Sources come from /etc/apt/sources.list(.d).
type debian struct {
	dir string // e.g. ~/.cache/sluice/debian
}

// multiarch maps a Go architecture to Debian's architecture and its
// multiarch triplet.
var multiarch = map[string][2]string{
	"amd64": {"amd64", "x86_64-linux-gnu"},
	"arm64": {"arm64", "aarch64-linux-gnu"},
}

// aptOptions point apt-get and apt-cache at the private state of arch.
func (d debian) aptOptions(arch string) []string {
	base := filepath.Join(d.dir, arch, "apt")
	return []string{
		"-o", "Dir::State=" + filepath.Join(base, "state"),
		"-o", "Dir::State::status=" + filepath.Join(base, "status"),
		"-o", "Dir::Cache=" + filepath.Join(base, "cache"),
		"-o", "APT::Architecture=" + arch,
		"-o", "APT::Architectures::=" + arch,
		"-o", "APT::Sandbox::User=root",
		"-o", "Debug::NoLocking=1",
		"-q",
	}
}

// rootfs returns a directory holding the files of pkgs and of every package
// they depend on (not recommends, not pre-depends), unpacked for goArch, and
// the list "package version" of what was unpacked. The result is cached per
// package set: delete dir to take newer Debian versions.
func (d debian) rootfs(ctx context.Context, goArch string, pkgs []string) (string, []string, error) {
	ma, ok := multiarch[goArch]
	if !ok {
		return "", nil, fmt.Errorf("no Debian architecture for GOARCH %s", goArch)
	}
	arch := ma[0]
	sorted := append([]string(nil), pkgs...)
	sort.Strings(sorted)
	sum := sha256.Sum256([]byte(strings.Join(sorted, " ")))
	root := filepath.Join(d.dir, arch, "rootfs-"+hex.EncodeToString(sum[:6]))
	if versions, err := os.ReadFile(filepath.Join(root, ".packages")); err == nil {
		return root, strings.Split(strings.TrimSpace(string(versions)), "\n"), nil
	}

	opts := d.aptOptions(arch)
	if err := d.update(ctx, arch, opts); err != nil {
		return "", nil, err
	}
	names, err := closure(ctx, opts, pkgs)
	if err != nil {
		return "", nil, err
	}
	tmp := root + ".tmp"
	versions, err := unpack(ctx, opts, tmp, names)
	if err != nil {
		return "", nil, err
	}
	if err := os.RemoveAll(root); err != nil {
		return "", nil, err
	}
	return root, versions, os.Rename(tmp, root)
}

// update creates the private apt state of arch and fetches its package
// lists.
func (d debian) update(ctx context.Context, arch string, opts []string) error {
	base := filepath.Join(d.dir, arch, "apt")
	for _, dir := range []string{"state/lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(base, dir), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(base, "status"), nil, 0o644); err != nil {
		return err
	}
	_, err := command(ctx, "", "apt-get", append(opts, "update")...)
	return err
}

// closure returns pkgs and every package they depend on (not recommends,
// not pre-depends), sorted.
func closure(ctx context.Context, opts, pkgs []string) ([]string, error) {
	out, err := command(ctx, "", "apt-cache", append(append(opts, "depends", "--recurse", "--no-recommends", "--no-suggests",
		"--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", "--no-pre-depends"), pkgs...)...)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if line == "" || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "<") || seen[line] {
			continue // dependency lines, virtual packages, repeats
		}
		seen[line] = true
		names = append(names, line)
	}
	sort.Strings(names)
	return names, nil
}

// unpack downloads names into a fresh dir and unpacks them there, and
// returns "package version" of each.
func unpack(ctx context.Context, opts []string, dir string, names []string) ([]string, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	debs := filepath.Join(dir, ".debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return nil, err
	}
	if _, err := command(ctx, debs, "apt-get", append(opts, append([]string{"download"}, names...)...)...); err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(debs, "*.deb"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var versions []string
	for _, f := range files {
		if _, err := command(ctx, "", "dpkg-deb", "-x", f, dir); err != nil {
			return nil, err
		}
		v, err := command(ctx, "", "dpkg-deb", "-f", f, "Package", "Version")
		if err != nil {
			return nil, err
		}
		versions = append(versions, strings.Join(strings.Fields(strings.NewReplacer("Package:", "", "Version:", "").Replace(v)), " "))
	}
	if err := os.RemoveAll(debs); err != nil {
		return nil, err
	}
	return versions, os.WriteFile(filepath.Join(dir, ".packages"), []byte(strings.Join(versions, "\n")+"\n"), 0o644)
}

// command runs a program in dir and returns its standard output.
func command(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// elfClosure lists what a dynamically linked program in root needs to run:
// the program, its interpreter (the dynamic loader) and every shared
// library it needs, directly or through another library, found in the
// loader's default directories for the multiarch triplet. Symbolic links on
// the way are listed too, so the image keeps the same names. Paths are
// absolute paths inside root, sorted.
func elfClosure(root, program, triplet string) ([]string, error) {
	dirs := []string{"/lib/" + triplet, "/usr/lib/" + triplet, "/lib", "/usr/lib"}
	seen := map[string]bool{}
	var visit func(p string) error
	visit = func(p string) error {
		real, err := resolve(root, p, seen)
		if err != nil {
			return err
		}
		if seen[real] {
			return nil
		}
		seen[real] = true
		f, err := elf.Open(filepath.Join(root, real))
		if err != nil {
			return fmt.Errorf("reading %s: %w", real, err)
		}
		defer f.Close()
		for _, prog := range f.Progs {
			if prog.Type != elf.PT_INTERP {
				continue
			}
			b := make([]byte, prog.Filesz)
			if _, err := prog.ReadAt(b, 0); err != nil {
				return fmt.Errorf("reading the interpreter of %s: %w", real, err)
			}
			if err := visit(strings.TrimRight(string(b), "\x00")); err != nil {
				return err
			}
		}
		libs, err := f.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("reading the libraries %s needs: %w", real, err)
		}
		for _, lib := range libs {
			found := ""
			for _, d := range dirs {
				if _, err := os.Lstat(filepath.Join(root, d, lib)); err == nil {
					found = path.Join(d, lib)
					break
				}
			}
			if found == "" {
				return fmt.Errorf("%s needs %s, which no unpacked package has", real, lib)
			}
			if err := visit(found); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(program); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// resolve follows the symbolic links of p inside root (also in its parent
// directories), marks each link it passes in seen, and returns the path of
// the file itself.
func resolve(root, p string, seen map[string]bool) (string, error) {
	for range 40 {
		p = path.Clean("/" + p)
		// Resolve the parent directories first (e.g. /lib64 -> usr/lib64).
		dir, base := path.Split(p)
		if dir != "/" {
			rd, err := resolve(root, dir, seen)
			if err != nil {
				return "", err
			}
			p = path.Join(rd, base)
		}
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			return "", fmt.Errorf("%s is in no unpacked package: %w", p, err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			return p, nil
		}
		target, err := os.Readlink(filepath.Join(root, p))
		if err != nil {
			return "", err
		}
		seen[p] = true
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(p), target)
		}
		p = target
	}
	return "", fmt.Errorf("too many symbolic links at %s", p)
}

// rootEntries turns paths inside root into layer entries: files with their
// content and permission bits, symbolic links as links, all owned by root.
func rootEntries(root string, paths []string) ([]entry, error) {
	var out []entry
	for _, p := range paths {
		full := filepath.Join(root, p)
		fi, err := os.Lstat(full)
		if err != nil {
			return nil, err
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(full)
			if err != nil {
				return nil, err
			}
			out = append(out, symlink(p, target))
		case fi.IsDir():
			out = append(out, dir(p, int64(fi.Mode().Perm())))
		default:
			data, err := os.ReadFile(full)
			if err != nil {
				return nil, err
			}
			out = append(out, file(p, int64(fi.Mode().Perm()), data))
		}
	}
	return out, nil
}
