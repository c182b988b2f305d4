package meshsim

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// maxMirroredBody is the largest request body the proxy copies to a
// mirror; larger requests are not mirrored.
const maxMirroredBody = 1 << 20

// frontProxy routes each request as the VirtualService says and counts it
// as the client-side proxy (an ingress gateway, reporter="source") would.
type frontProxy struct {
	sim     *Sim
	proxies [numVersions]*httputil.ReverseProxy
	client  *http.Client
	mirrors sync.WaitGroup
}

// newFrontProxy returns the front proxy of a sim whose backends run.
func newFrontProxy(s *Sim) *frontProxy {
	transport := &http.Transport{
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}
	p := &frontProxy{sim: s, client: &http.Client{Transport: transport, Timeout: 30 * time.Second}}
	for _, v := range versions {
		target, _ := url.Parse(s.backends[v])
		p.proxies[v] = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Host = pr.In.Host
			},
			Transport: transport,
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
				w.Header().Set(HeaderVersion, v.String())
				http.Error(w, "upstream connect error or disconnect/reset before headers", http.StatusServiceUnavailable)
			},
		}
	}
	return p
}

// ServeHTTP routes one request: the first matching HTTP route, then a
// destination by weight. No route is 404 (NR); a version without ready
// pods, or a host that is no version's Service, is 503 (UH), as Envoy
// answers.
func (p *frontProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := p.sim.current()
	h := hop{namespace: p.sim.opts.Namespace, flags: "-"}
	var rt *route
	if st.table != nil {
		rt = st.table.match(r)
	}
	d, ok := dest{}, false
	if rt != nil {
		d, ok = rt.pick()
	}
	switch {
	case !ok:
		h.code, h.flags = http.StatusNotFound, "NR"
		http.Error(w, "no route", h.code)
	case !d.known || len(st.ready[d.version]) == 0:
		h.service, h.code, h.flags = d.service, http.StatusServiceUnavailable, "UH"
		if d.known {
			w.Header().Set(HeaderVersion, d.version.String())
		}
		http.Error(w, "no healthy upstream", h.code)
	default:
		h.service, h.workload = d.service, p.sim.workload(d.version)
		if rt.mirror > 0 && rt.mirrorTo.known && rand.Float64() < rt.mirror {
			p.mirror(r, rt.mirrorTo)
		}
		r.Header.Set(headerService, d.service)
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK, respond: d.respond}
		p.proxies[d.version].ServeHTTP(rec, r)
		h.code = rec.code
		if rec.code == http.StatusServiceUnavailable && rec.pod == "" {
			h.workload, h.flags = "", "UH" // the backend had no pod left
		}
	}
	h.elapsed = time.Since(start)
	p.sim.metrics.record(h)
}

// mirror sends a copy of r to d's backend in the background and forgets
// the answer, as Envoy's shadowing does. The backend counts it.
func (p *frontProxy) mirror(r *http.Request, d dest) {
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		orig := r.Body
		b, err := io.ReadAll(io.LimitReader(orig, maxMirroredBody+1))
		if err != nil || len(b) > maxMirroredBody {
			// Too large to copy: the original request goes on unmirrored.
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(b), orig), orig}
			return
		}
		body = b
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	u := p.sim.backends[d.version] + r.URL.RequestURI()
	req, err := http.NewRequestWithContext(context.Background(), r.Method, u, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header = r.Header.Clone()
	req.Header.Set(headerService, d.service)
	req.Host = r.Host + "-shadow"
	p.mirrors.Go(func() {
		resp, err := p.client.Do(req)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	})
}

// wait waits for the mirrored requests in flight.
func (p *frontProxy) wait() { p.mirrors.Wait() }

// statusRecorder remembers the status code written through it and the
// pod that answered, and applies the destination's response header
// operations to the answer.
type statusRecorder struct {
	http.ResponseWriter
	code  int
	wrote bool
	// pod is the backend's HeaderPod, read before respond may remove it.
	pod     string
	respond headerOps
}

// WriteHeader records the status code and the pod, and applies the
// header operations before the headers are sent.
func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.code, s.wrote = code, true
		s.pod = s.Header().Get(HeaderPod)
		s.respond.apply(s.Header())
	}
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap gives http.ResponseController the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
