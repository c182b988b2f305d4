package cluster

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// auditPolicy records the metadata of every request a ServiceAccount
// makes, once its response is complete, and nothing else.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: Metadata
  userGroups: ["system:serviceaccounts"]
- level: None
`

// auditFlags writes the audit policy into Dir and returns the API server
// flags that log to Dir/audit.log.
func (c *Cluster) auditFlags() (map[string]string, error) {
	policy := filepath.Join(c.Dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o644); err != nil {
		return nil, fmt.Errorf("writing the audit policy: %w", err)
	}
	c.AuditLogPath = filepath.Join(c.Dir, "audit.log")
	return map[string]string{
		"audit-policy-file": policy,
		"audit-log-path":    c.AuditLogPath,
		"audit-log-format":  "json",
		// Write each event when it happens, so a reader sees everything
		// that was answered before it reads.
		"audit-log-mode": "blocking",
	}, nil
}

// AuditEvent is the part of an audit.k8s.io/v1 Event the e2e checks read.
type AuditEvent struct {
	Verb string `json:"verb"`
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		APIGroup    string `json:"apiGroup"`
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	RequestURI     string `json:"requestURI"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// ReadAudit returns the events of the audit log so far.
func (c *Cluster) ReadAudit() ([]AuditEvent, error) {
	if c.AuditLogPath == "" {
		return nil, fmt.Errorf("the cluster was started without AuditServiceAccounts")
	}
	f, err := os.Open(c.AuditLogPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var events []AuditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("reading %s: %w", c.AuditLogPath, err)
		}
		events = append(events, e)
	}
	return events, sc.Err()
}
