// Package router creates the Services of a Canary (<apex>, <apex>-primary,
// <apex>-canary) and shifts traffic between primary and canary through one
// router per traffic provider.
//
// It is not a stable Go API: Sluice's packages under pkg/ may change
// without notice.
package router
