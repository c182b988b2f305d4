package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// profiler saves the controller's profiles from its /debug/pprof (Go's
// net/http/pprof) on the port it was given, for -pprof.
type profiler struct {
	base string
	dir  string

	mu sync.Mutex
	// saved lists the files written, or why one could not be.
	saved []string
}

// files lists the files written, or why one could not be.
func (p *profiler) files() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.saved)
}

// fetch saves the profile at path (such as heap) to dir/name.
func (p *profiler) fetch(ctx context.Context, path, name string, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	file := filepath.Join(p.dir, name)
	err := p.save(ctx, p.base+path, file)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.saved = append(p.saved, fmt.Sprintf("%s: %v", name, err))
		return
	}
	p.saved = append(p.saved, file)
}

func (p *profiler) save(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetching %s: %s (does the controller serve /debug/pprof on its -port?)", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return fmt.Errorf("saving %s: %w", file, err)
	}
	return f.Close()
}

// during profiles the controller's CPU for d in the background, and dumps
// its goroutines after d/2; the returned function waits for both.
func (p *profiler) during(ctx context.Context, d time.Duration, cpuName, goroutinesName string) (wait func()) {
	var wg sync.WaitGroup
	wg.Go(func() {
		p.fetch(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d.Seconds())), cpuName, d+30*time.Second)
	})
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-time.After(d / 2):
			p.fetch(ctx, "/debug/pprof/goroutine?debug=2", goroutinesName, 30*time.Second)
		}
	})
	return wg.Wait
}
