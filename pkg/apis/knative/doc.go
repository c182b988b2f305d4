// Package knative holds minimal Go types for Knative Serving's Service
// (API group serving.knative.dev), as the knative router reads and edits
// it: its traffic targets and the revisions in its status. The Go module
// that ships Knative's types pulls in all of Knative's libraries, so
// Sluice does not depend on it.
//
// The packages under pkg are not a stable Go API.
package knative
