package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// The stub is read through Prometheus' own Go client, as Sluice reads it
// (Flagger sends the same query as a GET, which the client falls back to).
func TestStub_AnswersInstantQueriesKeyedOnTheTarget(t *testing.T) {
	s, err := startStub(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	c, err := api.NewClient(api.Config{Address: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	prom := promv1.NewAPI(c)
	query := func(q string) float64 {
		t.Helper()
		v, _, _, err := prom.Query(context.Background(), q, time.Now())
		if err != nil {
			t.Fatalf("query %s: %v", q, err)
		}
		vec, ok := v.(model.Vector)
		if !ok || len(vec) != 1 {
			t.Fatalf("query %s answered %v, want a vector of one sample", q, v)
		}
		return float64(vec[0].Value)
	}
	healthy := `bench_success_rate{namespace="bench",target="t-00001"}`
	failing := `bench_success_rate{namespace="bench",target="t-00010"}`

	s.SetFailing([]string{"t-00010"})
	for q, want := range map[string]float64{"vector(1)": 1, healthy: healthyValue, failing: failingValue} {
		if got := query(q); got != want {
			t.Errorf("%s = %v, want %v", q, got, want)
		}
	}
	s.SetFailing(nil)
	if got := query(failing); got != healthyValue {
		t.Errorf("after SetFailing(nil), %s = %v, want %v", failing, got, float64(healthyValue))
	}
	if n := s.Queries.Load(); n != 4 {
		t.Errorf("the stub counted %d queries, want 4", n)
	}

	resp, err := http.Get(s.URL + "/api/v1/query?query=" + "vector(1)")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /api/v1/query: %s, want 200 OK (Flagger queries with GET)", resp.Status)
	}
}

func TestStub_SlowHookAnswersAfterTheDelay(t *testing.T) {
	const delay = 300 * time.Millisecond
	s, err := startStub(delay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	begin := time.Now()
	resp, err := http.Post(s.URL+slowHookPath, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if took := time.Since(begin); resp.StatusCode != http.StatusOK || took < delay {
		t.Errorf("the slow hook answered %s after %s, want 200 OK after at least %s", resp.Status, took, delay)
	}
}
