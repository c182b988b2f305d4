// Command apidocs writes the API reference, docs/api.md, from the CRDs that
// controller-gen generates out of the Go types in api/. `make manifests` runs
// it after controller-gen:
//
//	go run ./hack/apidocs -crds kustomize/base/crd -out docs/api.md
//
// The output depends only on the CRD files, so a test can tell when
// docs/api.md is stale.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
)

func main() {
	crdDir := flag.String("crds", "kustomize/base/crd", "directory holding the generated CRD YAML files")
	out := flag.String("out", "docs/api.md", "Markdown file to write, or - for standard output")
	flag.Parse()

	if err := run(*crdDir, *out); err != nil {
		fmt.Fprintln(os.Stderr, "apidocs:", err)
		os.Exit(1)
	}
}

func run(crdDir, out string) error {
	doc, err := generate(crdDir)
	if err != nil {
		return err
	}
	if out == "-" {
		_, err = os.Stdout.Write(doc)
		return err
	}
	if err := os.WriteFile(out, doc, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return nil
}

// generate renders the Markdown reference for every CRD in crdDir.
func generate(crdDir string) ([]byte, error) {
	crds, err := loadCRDs(crdDir)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	writeDocument(&buf, crds)
	return buf.Bytes(), nil
}
