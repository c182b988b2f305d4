//go:build e2e

package chaos

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// webhookMode is how the flaky webhook server answers.
type webhookMode int32

const (
	webhookOK webhookMode = iota
	// webhookHang never answers (until the caller gives up).
	webhookHang
	// webhook500 answers 500 Internal Server Error.
	webhook500
	// webhookClose closes the connection without answering.
	webhookClose
)

func (m webhookMode) String() string {
	return [...]string{"ok", "hang", "500", "close"}[m]
}

// webhookServer is the rollout webhook of some Canaries: it says yes
// unless a fault puts it in another mode.
type webhookServer struct {
	URL  string
	mode atomic.Int32
	srv  *http.Server

	mu sync.Mutex
	// bad counts the answers given in a bad mode, by path (namespace).
	bad map[string]int
}

// newWebhookServer serves on a free loopback port.
func newWebhookServer() (*webhookServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	w := &webhookServer{URL: "http://" + l.Addr().String(), bad: map[string]int{}}
	w.srv = &http.Server{Handler: w, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = w.srv.Serve(l) }()
	return w, nil
}

// set switches the mode.
func (w *webhookServer) set(m webhookMode) { w.mode.Store(int32(m)) }

// ServeHTTP answers as the mode says.
func (w *webhookServer) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	m := webhookMode(w.mode.Load())
	if m != webhookOK {
		w.mu.Lock()
		w.bad[r.URL.Path]++
		w.mu.Unlock()
	}
	switch m {
	case webhookHang:
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Minute):
		}
	case webhook500:
		http.Error(rw, "injected failure", http.StatusInternalServerError)
	case webhookClose:
		if hj, ok := rw.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	default:
		rw.WriteHeader(http.StatusOK)
	}
}

// close stops the server.
func (w *webhookServer) close() { _ = w.srv.Close() }
