package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// imageRef matches an image reference to one of Sluice's images.
var imageRef = regexp.MustCompile(`ghcr\.io/sluicedev/(sluice(?:-loadtester)?)(:[^\s"'}]*)?`)

// TestManifests_NeverReferenceLatest walks every manifest, chart and
// dashboard in the repository: none may name an image :latest, and every
// reference to Sluice's images carries one and the same release tag, the one
// `make manifests VERSION=...` sets.
func TestManifests_NeverReferenceLatest(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	latest := regexp.MustCompile(`:latest\b`)
	tags := map[string][]string{}
	checked := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			switch rel {
			case ".git", "bin", "dist", "e2e/tmp", ".cache":
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(p) {
		case ".yaml", ".yml", ".json", ".tpl":
		default:
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		checked++
		if filepath.Base(p) == "values.yaml" && strings.HasPrefix(rel, "charts"+string(filepath.Separator)) {
			// A chart names its image in two values.
			var v struct {
				Image struct{ Repository, Tag string }
			}
			if err := yaml.Unmarshal(data, &v); err != nil {
				return err
			}
			if m := imageRef.FindStringSubmatch(v.Image.Repository); m != nil {
				tags[":"+v.Image.Tag] = append(tags[":"+v.Image.Tag], rel)
			}
			data = []byte(strings.ReplaceAll(string(data), v.Image.Repository, ""))
		}
		for i, line := range strings.Split(string(data), "\n") {
			if latest.MatchString(line) {
				t.Errorf("%s:%d references :latest: %s", rel, i+1, strings.TrimSpace(line))
			}
			for _, m := range imageRef.FindAllStringSubmatch(line, -1) {
				if strings.Contains(rel, "testdata") {
					continue
				}
				tags[m[2]] = append(tags[m[2]], rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("checked only %d files: is the repository root %s?", checked, root)
	}
	if len(tags) != 1 {
		t.Errorf("Sluice's images are referenced with several tags (want one, set by make manifests VERSION=...): %v", tags)
	}
	for tag, files := range tags {
		if tag == "" {
			t.Errorf("untagged image references (they mean :latest) in %v", files)
		}
	}
}
