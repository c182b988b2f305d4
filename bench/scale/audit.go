package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// controllerUser is the user the controller under test authenticates as;
// the audit policy logs this user's requests and no one else's.
const controllerUser = "bench-controller"

// auditPolicy logs every request of controllerUser at the Metadata level
// (verb, resource, name, status; no bodies), once it is answered.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  users: ["` + controllerUser + `"]
- level: None
`

// request is one API request of the controller, from the audit log.
type request struct {
	At time.Time
	// Verb is the Kubernetes verb: get, list, watch, create, update,
	// patch, delete, deletecollection.
	Verb string
	// Resource is the resource with its subresource (canaries/status), or
	// the path of a non-resource request (/version).
	Resource  string
	Namespace string
	Name      string
	Code      int
}

// isWrite reports whether the request changes something.
func (r request) isWrite() bool {
	switch r.Verb {
	case "create", "update", "patch", "delete", "deletecollection":
		return true
	}
	return false
}

// auditLog reads the API server's audit log (JSON lines) incrementally.
type auditLog struct {
	path string

	mu     sync.Mutex
	offset int64
	// partial is the start of a line whose end was not written yet.
	partial []byte
	reqs    []request
}

// auditEvent is the part of an audit.k8s.io/v1 Event the benchmark reads.
type auditEvent struct {
	Stage      string `json:"stage"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	RequestReceivedTimestamp time.Time `json:"requestReceivedTimestamp"`
}

// parseAuditLine turns one line of the audit log into a request, and
// reports false for lines that are not one answered request of the
// controller: a watch counts when it starts, anything else when it
// completes.
func parseAuditLine(line []byte) (request, bool, error) {
	var ev auditEvent
	if err := json.Unmarshal(line, &ev); err != nil {
		return request{}, false, fmt.Errorf("reading an audit event: %w", err)
	}
	if ev.User.Username != controllerUser {
		return request{}, false, nil
	}
	switch {
	case ev.Verb == "watch" && ev.Stage != "ResponseStarted":
		return request{}, false, nil
	case ev.Verb != "watch" && ev.Stage != "ResponseComplete" && ev.Stage != "Panic":
		return request{}, false, nil
	}
	r := request{At: ev.RequestReceivedTimestamp, Verb: ev.Verb}
	if ev.ResponseStatus != nil {
		r.Code = ev.ResponseStatus.Code
	}
	if o := ev.ObjectRef; o != nil && o.Resource != "" {
		r.Resource, r.Namespace, r.Name = o.Resource, o.Namespace, o.Name
		if o.Subresource != "" {
			r.Resource += "/" + o.Subresource
		}
	} else if u, err := url.Parse(ev.RequestURI); err == nil {
		r.Resource = u.Path
	} else {
		r.Resource = ev.RequestURI
	}
	return r, true, nil
}

// refresh reads what the API server appended since the last call.
func (a *auditLog) refresh() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := os.Open(a.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // nothing logged yet
	}
	if err != nil {
		return fmt.Errorf("opening the audit log: %w", err)
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Seek(a.offset, io.SeekStart); err != nil {
		return fmt.Errorf("reading the audit log: %w", err)
	}
	br := bufio.NewReaderSize(f, 1<<20)
	for {
		chunk, err := br.ReadBytes('\n')
		a.offset += int64(len(chunk))
		if errors.Is(err, io.EOF) {
			a.partial = append(a.partial, chunk...)
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the audit log: %w", err)
		}
		line := chunk
		if len(a.partial) > 0 {
			line = append(a.partial, chunk...)
			a.partial = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		r, ok, err := parseAuditLine(line)
		if err != nil {
			return err
		}
		if ok {
			a.reqs = append(a.reqs, r)
		}
	}
}

// between returns the controller's requests received in [from, to), after
// reading the log up to now.
func (a *auditLog) between(from, to time.Time) ([]request, error) {
	if err := a.refresh(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []request
	for _, r := range a.reqs {
		if !r.At.Before(from) && r.At.Before(to) {
			out = append(out, r)
		}
	}
	return out, nil
}

// requestCounts are requests counted by verb, by resource and by both.
type requestCounts struct {
	Total  int `json:"total"`
	Writes int `json:"writes"`
	Gets   int `json:"gets"`
	// Errors were answered with a status of 400 or more (a conflict, a
	// missing object).
	Errors int            `json:"errors"`
	ByVerb map[string]int `json:"byVerb"`
	// ByResource counts by resource (with subresource).
	ByResource map[string]int `json:"byResource"`
	// ByVerbResource counts by "verb resource", such as "get deployments".
	ByVerbResource map[string]int `json:"byVerbResource"`
}

// countRequests counts reqs.
func countRequests(reqs []request) requestCounts {
	c := requestCounts{ByVerb: map[string]int{}, ByResource: map[string]int{}, ByVerbResource: map[string]int{}}
	for _, r := range reqs {
		c.Total++
		if r.isWrite() {
			c.Writes++
		}
		if r.Verb == "get" {
			c.Gets++
		}
		if r.Code >= 400 {
			c.Errors++
		}
		c.ByVerb[r.Verb]++
		c.ByResource[r.Resource]++
		c.ByVerbResource[r.Verb+" "+r.Resource]++
	}
	return c
}

// count returns how many requests of verb on resource were counted; an
// empty verb or resource matches any.
func (c requestCounts) count(verb, resource string) int {
	n := 0
	for k, count := range c.ByVerbResource {
		v, res, _ := strings.Cut(k, " ")
		if (verb == "" || v == verb) && (resource == "" || res == resource) {
			n += count
		}
	}
	return n
}
