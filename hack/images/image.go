package main

import (
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// nonRoot is the user and group the images run as (distroless's "nonroot").
const nonRoot = 65532

// layerSpec is one layer of an image and the history line describing it.
type layerSpec struct {
	// CreatedBy says what the layer holds, for `docker history`.
	CreatedBy string
	Entries   []entry
}

// imageSpec is everything one platform's image is made of.
type imageSpec struct {
	Platform   v1.Platform
	Layers     []layerSpec
	Entrypoint []string
	Env        []string
	// Created is the timestamp of the image, its history and every file.
	Created time.Time
	// Annotations go on the manifest and, as labels, into the config.
	Annotations map[string]string
}

// baseEntries is the scratch base every image starts from: CA
// certificates, a passwd and group file naming root and the non-root user,
// its home directory and a world-writable /tmp.
func baseEntries(caCerts []byte) []entry {
	passwd := "root:x:0:0:root:/root:/sbin/nologin\n" +
		fmt.Sprintf("nonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonRoot, nonRoot)
	group := "root:x:0:\n" + fmt.Sprintf("nonroot:x:%d:\n", nonRoot)
	home := dir("/home/nonroot", 0o700)
	home.UID, home.GID = nonRoot, nonRoot
	return []entry{
		file("/etc/passwd", 0o644, []byte(passwd)),
		file("/etc/group", 0o644, []byte(group)),
		file("/etc/ssl/certs/ca-certificates.crt", 0o644, caCerts),
		dir("/root", 0o700),
		home,
		dir("/tmp", 0o1777),
	}
}

// buildImage assembles an OCI image from spec: its layers in order, a
// config running Entrypoint as the non-root user, and fixed timestamps, so
// the same spec always gives the same digest.
func buildImage(spec imageSpec) (v1.Image, error) {
	created := v1.Time{Time: spec.Created.UTC().Truncate(time.Second)}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: spec.Platform.Architecture,
		OS:           spec.Platform.OS,
		Variant:      spec.Platform.Variant,
		Created:      created,
		Config: v1.Config{
			Entrypoint: spec.Entrypoint,
			Env:        spec.Env,
			User:       fmt.Sprintf("%d:%d", nonRoot, nonRoot),
			WorkingDir: "/home/nonroot",
			Labels:     spec.Annotations,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("setting the image config: %w", err)
	}
	adds := make([]mutate.Addendum, 0, len(spec.Layers))
	for _, ls := range spec.Layers {
		layer, err := newLayer(ls.Entries, created.Time)
		if err != nil {
			return nil, fmt.Errorf("layer %q: %w", ls.CreatedBy, err)
		}
		adds = append(adds, mutate.Addendum{
			Layer:     layer,
			MediaType: types.OCILayer,
			History:   v1.History{Created: created, CreatedBy: ls.CreatedBy, Comment: "sluice hack/images"},
		})
	}
	if img, err = mutate.Append(img, adds...); err != nil {
		return nil, fmt.Errorf("adding layers: %w", err)
	}
	if img, err = mutate.CreatedAt(img, created); err != nil {
		return nil, fmt.Errorf("setting the creation time: %w", err)
	}
	withAnns, ok := mutate.Annotations(img, spec.Annotations).(v1.Image)
	if !ok {
		return nil, fmt.Errorf("annotating the image: unexpected type")
	}
	return withAnns, nil
}

// platformImage is one image of a multi-platform index.
type platformImage struct {
	Platform v1.Platform
	Image    v1.Image
}

// buildIndex makes an OCI image index of images, one per platform, in the
// order given.
func buildIndex(images []platformImage, annotations map[string]string) v1.ImageIndex {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, pi := range images {
		p := pi.Platform
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        pi.Image,
			Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &p},
		})
	}
	return mutate.Annotations(idx, annotations).(v1.ImageIndex)
}

// parsePlatform reads "os/arch" or "os/arch/variant".
func parsePlatform(s string) (v1.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return v1.Platform{}, fmt.Errorf("platform %q: want os/arch, e.g. linux/arm64", s)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}
