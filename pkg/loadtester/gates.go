package loadtester

import (
	"net/http"
	"sync"
)

// gates holds the open/closed state of one kind of gate per canary
// (name.namespace), in memory: a restart closes every gate.
type gates struct {
	mu   sync.Mutex
	open map[string]bool
}

func newGates() *gates { return &gates{open: map[string]bool{}} }

func (g *gates) set(key string, open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if open {
		g.open[key] = true
		return
	}
	delete(g.open, key)
}

func (g *gates) isOpen(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open[key]
}

// gateAPI serves one kind of gate: check answers 200 when the canary's gate
// is open and 403 when it is closed (the default); open and close answer
// 202, as Flagger's loadtester does.
type gateAPI struct {
	server *Server
	gates  *gates
	// kind names the gate in answers and logs: "gate" or "rollback".
	kind string
}

func (a *gateAPI) check(w http.ResponseWriter, r *http.Request) {
	p, ok := a.server.payload(w, r, true)
	if !ok {
		return
	}
	if a.gates.isOpen(key(p.Name, p.Namespace)) {
		reply(w, http.StatusOK, "%s open for %s.%s", a.kind, p.Name, p.Namespace)
		return
	}
	reply(w, http.StatusForbidden, "%s closed for %s.%s", a.kind, p.Name, p.Namespace)
}

func (a *gateAPI) handleSet(open bool) http.HandlerFunc {
	verb := map[bool]string{true: "opened", false: "closed"}[open]
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := a.server.payload(w, r, true)
		if !ok {
			return
		}
		a.gates.set(key(p.Name, p.Namespace), open)
		a.server.log.Info("Gate "+verb, "kind", a.kind, "canary", p.Name, "namespace", p.Namespace)
		reply(w, http.StatusAccepted, "%s %s for %s.%s", a.kind, verb, p.Name, p.Namespace)
	}
}

// approve and halt are fixed manual gates: a webhook pointed at approve
// always passes, one pointed at halt never does.
func approve(w http.ResponseWriter, _ *http.Request) { reply(w, http.StatusOK, "approved") }
func halt(w http.ResponseWriter, _ *http.Request)    { reply(w, http.StatusForbidden, "halted") }

// key names a canary in the gates and the running commands.
func key(name, namespace string) string { return name + "." + namespace }
