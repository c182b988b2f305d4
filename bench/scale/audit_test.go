package main

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testdata/audit.log holds lines of a real kube-apiserver v1.37 audit log
// (policy auditPolicy): a watch as it starts and as it ends, a status
// patch, a non-resource GET, an event, a conflicting create, and one line
// of another user.
func TestAuditLog_CountsEachAnsweredRequestOfTheControllerOnce(t *testing.T) {
	data, err := os.ReadFile("testdata/audit.log")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	a := &auditLog{path: path}
	if err := a.refresh(); err != nil {
		t.Fatalf("refresh before the API server wrote anything: %v", err)
	}
	// The API server appends while the benchmark reads: the first read
	// ends in the middle of a line.
	cut := len(data)/2 + 7
	if err := os.WriteFile(path, data[:cut], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.refresh(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data[cut:]); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	reqs, err := a.between(time.Time{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := countRequests(reqs)
	want := map[string]int{
		"watch canaries":        1, // counted when it starts; its end is not a second request
		"patch canaries/status": 1,
		"get /api":              1,
		"create events":         1,
		"create services":       1,
	}
	if !maps.Equal(got.ByVerbResource, want) {
		t.Errorf("requests = %v, want %v", got.ByVerbResource, want)
	}
	if got.Total != 5 || got.Writes != 3 || got.Gets != 1 || got.Errors != 1 {
		t.Errorf("total %d, writes %d, gets %d, errors %d; want 5, 3, 1, 1", got.Total, got.Writes, got.Gets, got.Errors)
	}
	if n := got.count("create", ""); n != 2 {
		t.Errorf("count(create, any) = %d, want 2", n)
	}
	for _, r := range reqs {
		if r.Verb == "patch" && (r.Name != "t-00002" || r.Namespace != "bench") {
			t.Errorf("the patch names %s/%s, want bench/t-00002", r.Namespace, r.Name)
		}
	}
}

func TestAuditLog_BetweenKeepsTheRequestsReceivedInTheWindow(t *testing.T) {
	a := &auditLog{path: "testdata/audit.log"}
	from := time.Date(2026, 12, 6, 22, 53, 19, 0, time.UTC)
	reqs, err := a.between(from, from.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// Only the status patch (22:53:19.21) of the controller falls in
	// [22:53:19, 22:53:20); the other user's list is not the controller's.
	if len(reqs) != 1 || reqs[0].Verb != "patch" {
		t.Errorf("requests in the window = %+v, want the status patch alone", reqs)
	}
}

func TestAttributed_KeepsTheReleasedCanariesObjectsAndTheirTemplates(t *testing.T) {
	reqs := []request{
		{Verb: "get", Resource: "deployments", Name: "t-00001"},
		{Verb: "patch", Resource: "deployments", Name: "t-00001-primary"},
		{Verb: "create", Resource: "events", Name: "t-00001.187e2a"},
		{Verb: "get", Resource: "services", Name: "t-000011-canary"}, // another target
		{Verb: "get", Resource: "services", Name: "t-00002-canary"},
		{Verb: "get", Resource: "metrictemplates", Name: "bench-success-rate"},
		{Verb: "list", Resource: "deployments"},
		{Verb: "get", Resource: "leases", Name: "flagger-leader-election"},
	}
	got := countRequests(attributed(reqs, []string{"t-00001"}))
	want := map[string]int{"get deployments": 1, "patch deployments": 1, "create events": 1, "get metrictemplates": 1}
	if !maps.Equal(got.ByVerbResource, want) {
		t.Errorf("attributed = %v, want %v", got.ByVerbResource, want)
	}
}
