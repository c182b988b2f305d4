//go:build pprof

package main

import (
	"net/http"
	"net/http/pprof"
)

// A build with -tags pprof serves Go's profiles on -port, for
// `make bench-scale BENCH_SCALE_FLAGS=-pprof`: never in a release build.
func init() {
	debugHandlers = map[string]http.Handler{
		"/debug/pprof/":        http.HandlerFunc(pprof.Index),
		"/debug/pprof/profile": http.HandlerFunc(pprof.Profile),
	}
}
