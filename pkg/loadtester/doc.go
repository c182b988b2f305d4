// Package loadtester is Sluice's load tester: an HTTP server that answers
// the API of Flagger's loadtester, so Canary webhooks written for Flagger
// keep working. It runs commands sent as webhook payloads (hey load tests
// in process, other commands through their binaries) and keeps the manual
// gates that confirm-* and rollback webhooks ask about.
//
// It is not a stable Go API: Sluice's packages under pkg/ may change
// without notice.
package loadtester
