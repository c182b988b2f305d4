// Package controller holds the Canary reconciler.
//
// It is not a stable Go API: Sluice's packages under pkg/ may change
// without notice.
package controller
