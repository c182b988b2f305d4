package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// entry is one file, directory or symbolic link of a layer. Ownership and
// modes are given explicitly, never taken from the build machine, so that a
// layer depends only on its entries.
type entry struct {
	// Path is the absolute path in the image, e.g. /etc/passwd.
	Path string
	// Type is tar.TypeReg, tar.TypeDir or tar.TypeSymlink.
	Type byte
	// Mode holds the permission bits, e.g. 0o755.
	Mode int64
	// UID and GID own the entry; 0 is root.
	UID, GID int
	// Data is a regular file's content.
	Data []byte
	// Link is a symbolic link's target.
	Link string
}

// file, dir and symlink build root-owned entries.
func file(p string, mode int64, data []byte) entry {
	return entry{Path: p, Type: tar.TypeReg, Mode: mode, Data: data}
}

func dir(p string, mode int64) entry { return entry{Path: p, Type: tar.TypeDir, Mode: mode} }

func symlink(p, target string) entry {
	return entry{Path: p, Type: tar.TypeSymlink, Mode: 0o777, Link: target}
}

// layerTar writes entries as an uncompressed tar stream that depends only on
// the entries and mtime: entries sorted by path, missing parent directories
// added (root, 0755), every timestamp mtime, no user or group names. Two
// entries with the same path are an error.
func layerTar(entries []entry, mtime time.Time) ([]byte, error) {
	byPath := map[string]entry{}
	for _, e := range entries {
		p := path.Clean("/" + e.Path)
		if p == "/" {
			return nil, fmt.Errorf("layer entry with an empty path")
		}
		e.Path = p
		if _, dup := byPath[p]; dup {
			return nil, fmt.Errorf("two layer entries for %s", p)
		}
		byPath[p] = e
	}
	for p := range byPath {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = dir(d, 0o755)
			}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime = mtime.UTC().Truncate(time.Second)
	for _, p := range paths {
		e := byPath[p]
		h := &tar.Header{
			Name:     strings.TrimPrefix(p, "/"),
			Typeflag: e.Type,
			Mode:     e.Mode,
			Uid:      e.UID,
			Gid:      e.GID,
			ModTime:  mtime,
			Format:   tar.FormatPAX,
		}
		switch e.Type {
		case tar.TypeReg:
			h.Size = int64(len(e.Data))
		case tar.TypeDir:
			h.Name += "/"
		case tar.TypeSymlink:
			h.Linkname = e.Link
		default:
			return nil, fmt.Errorf("layer entry %s: unsupported type %q", p, e.Type)
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing the tar header of %s: %w", p, err)
		}
		if _, err := tw.Write(e.Data); err != nil {
			return nil, fmt.Errorf("writing %s: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("closing the layer tar: %w", err)
	}
	return buf.Bytes(), nil
}

// newLayer makes an OCI layer (gzip) from entries; see layerTar.
func newLayer(entries []entry, mtime time.Time) (v1.Layer, error) {
	data, err := layerTar(entries, mtime)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
