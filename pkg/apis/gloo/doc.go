// Package gloo holds minimal Go types for Gloo Edge's Upstream (API group
// gloo.solo.io) and RouteTable (gateway.solo.io), as the gloo router
// writes them. They carry only the fields Sluice writes and reads; the Go
// module that ships Gloo's types pulls in all of Gloo, so Sluice does not
// depend on it.
//
// The packages under pkg are not a stable Go API.
package gloo
