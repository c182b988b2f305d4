//go:build tools

// Package helm pins the Helm command that the load tester image carries
// (hack/tool.sh helm builds it). It is its own module so that Helm's
// dependencies never move the versions the Kubernetes binaries in
// ../go.mod are built with.
package helm

import _ "helm.sh/helm/v4/cmd/helm"
