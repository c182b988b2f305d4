// Package contour holds minimal Go types for Contour's HTTPProxy (API
// group projectcontour.io), as the contour router writes it. They carry
// only the fields Sluice writes and reads; the Go module that ships
// Contour's types pulls in all of Contour, so Sluice does not depend on it.
//
// The packages under pkg are not a stable Go API.
package contour
