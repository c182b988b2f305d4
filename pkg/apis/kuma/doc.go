// Package kuma holds minimal Go types for Kuma's TrafficRoute (API group
// kuma.io), as the kuma router writes it. They carry only the fields
// Sluice writes and reads; the Go module that ships Kuma's types pulls in
// all of Kuma, so Sluice does not depend on it.
//
// The packages under pkg are not a stable Go API.
package kuma
