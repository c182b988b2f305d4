// Package traefik holds minimal Go types for Traefik's TraefikService
// (API group traefik.io), as the traefik router writes it. They carry only
// the fields Sluice writes and reads; the Go module that ships Traefik's
// types pulls in all of Traefik, so Sluice does not depend on it.
//
// The packages under pkg are not a stable Go API.
package traefik
