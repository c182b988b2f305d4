package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// stub answers Prometheus instant queries at once and plays the slow
// webhook. It speaks the wire format of Prometheus' HTTP API
// (/api/v1/query, GET or POST form, a vector of one sample), which is all
// the controllers' Prometheus clients read, so no Prometheus is needed.
type stub struct {
	// URL is the stub's base address, http://127.0.0.1:port.
	URL string
	// Queries and Hooks count the requests answered.
	Queries, Hooks atomic.Int64

	slowDelay time.Duration
	srv       *http.Server
	stop      chan struct{}

	mu      sync.Mutex
	failing map[string]bool
}

// healthyValue and failingValue are the answers for a healthy and a failing
// revision; the Canaries want at least 99.
const (
	healthyValue = 100
	failingValue = 0
)

// targetLabel finds the target named in a query rendered from the
// MetricTemplate.
var targetLabel = regexp.MustCompile(`target="([^"]+)"`)

// startStub serves the stub on a free loopback port. A request to
// slowHookPath is answered after slowDelay.
func startStub(slowDelay time.Duration) (*stub, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the metrics stub: %w", err)
	}
	s := &stub{URL: "http://" + l.Addr().String(), slowDelay: slowDelay, stop: make(chan struct{}), failing: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/query", s.query)
	mux.HandleFunc(slowHookPath, s.slowHook)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

// Close stops serving and releases the slow webhooks still waiting.
func (s *stub) Close() {
	close(s.stop)
	_ = s.srv.Close()
}

// SetFailing makes the queries of these targets answer failingValue, and
// those of every other target healthyValue.
func (s *stub) SetFailing(targets []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = map[string]bool{}
	for _, t := range targets {
		s.failing[t] = true
	}
}

// value is the answer to query: 1 for the controllers' liveness probe
// vector(1), failingValue for a failing target, else healthyValue.
func (s *stub) value(query string) float64 {
	if strings.TrimSpace(query) == "vector(1)" {
		return 1
	}
	if m := targetLabel.FindStringSubmatch(query); m != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.failing[m[1]] {
			return failingValue
		}
	}
	return healthyValue
}

// query answers an instant query with a vector of one sample.
func (s *stub) query(w http.ResponseWriter, r *http.Request) {
	s.Queries.Add(1)
	if err := r.ParseForm(); err != nil {
		http.Error(w, `{"status":"error","errorType":"bad_data","error":"bad form"}`, http.StatusBadRequest)
		return
	}
	v := s.value(r.Form.Get("query"))
	now := float64(time.Now().UnixMilli()) / 1000
	body := map[string]any{
		"status": "success",
		"data": map[string]any{
			"resultType": "vector",
			"result": []any{map[string]any{
				"metric": map[string]string{},
				"value":  []any{now, strconv.FormatFloat(v, 'f', -1, 64)},
			}},
		},
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

// slowHook answers 200 after slowDelay, as a webhook behind a slow
// service would.
func (s *stub) slowHook(w http.ResponseWriter, r *http.Request) {
	s.Hooks.Add(1)
	select {
	case <-time.After(s.slowDelay):
		w.WriteHeader(http.StatusOK)
	case <-r.Context().Done():
	case <-s.stop:
	}
}
