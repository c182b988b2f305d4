// Command crdfields prints one line per field path of the CRDs in the given
// YAML files (see internal/crdfields). It produced
// api/v1beta1/testdata/flagger-fields.txt from Flagger's published CRDs:
//
//	go run ./hack/crdfields flagger-crd.yaml > api/v1beta1/testdata/flagger-fields.txt
package main

import (
	"fmt"
	"os"

	"github.com/sluicedev/sluice/internal/crdfields"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: crdfields CRD.yaml...")
		os.Exit(2)
	}
	for _, path := range os.Args[1:] {
		if err := printFields(path); err != nil {
			fmt.Fprintln(os.Stderr, "crdfields:", err)
			os.Exit(1)
		}
	}
}

func printFields(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	fields, err := crdfields.FromYAML(f)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	_, err = os.Stdout.Write(crdfields.Format(fields))
	return err
}
