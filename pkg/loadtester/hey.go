package loadtester

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"
)

// isHey reports whether a command name runs hey.
func isHey(name string) bool {
	return path.Base(name) == "hey"
}

// heyCommand is a hey command line read: the load it describes and the file
// it names with -D, which only the load policy may read.
type heyCommand struct {
	load Load
	// bodyFile is -D: a file whose content is the request body.
	bodyFile string
}

// headerLine is hey's "Name: value" header syntax.
var headerLine = regexp.MustCompile(`^([\w-]+):\s*(.+)$`)

// headerFlags collects repeated -H flags.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

// heyFlags are hey's command-line flags.
type heyFlags struct {
	headers                             headerFlags
	requests, workers, timeout          int
	qps                                 float64
	duration                            time.Duration
	method, body, bodyFile, contentType string
	accept, auth, agent, proxy, host    string
	output                              string
	http2, noCompress, noKeepAlive      bool
	noRedirect                          bool
}

func (f *heyFlags) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("hey", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&f.headers, "H", "")
	fs.IntVar(&f.requests, "n", 200, "")
	fs.IntVar(&f.workers, "c", 50, "")
	fs.Float64Var(&f.qps, "q", 0, "")
	fs.DurationVar(&f.duration, "z", 0, "")
	fs.IntVar(&f.timeout, "t", 20, "")
	fs.StringVar(&f.method, "m", http.MethodGet, "")
	fs.StringVar(&f.body, "d", "", "")
	fs.StringVar(&f.bodyFile, "D", "", "")
	fs.StringVar(&f.contentType, "T", "text/html", "")
	fs.StringVar(&f.accept, "A", "", "")
	fs.StringVar(&f.auth, "a", "", "")
	fs.StringVar(&f.agent, "U", "", "")
	fs.StringVar(&f.proxy, "x", "", "")
	fs.StringVar(&f.host, "host", "", "")
	fs.StringVar(&f.output, "o", "", "")
	fs.BoolVar(&f.http2, "h2", false, "")
	fs.BoolVar(&f.noCompress, "disable-compression", false, "")
	fs.BoolVar(&f.noKeepAlive, "disable-keepalive", false, "")
	fs.BoolVar(&f.noRedirect, "disable-redirects", false, "")
	fs.Int("cpus", 0, "") // accepted; Go uses every CPU
	return fs
}

// parseHey reads hey's arguments (the words after "hey"), with hey's
// defaults: 200 requests, 50 workers, GET, Content-Type text/html, 20s
// request timeout. Flags go before the URL, as with hey. It reads no file
// and checks no policy: see loadPolicy.
func parseHey(args []string) (heyCommand, error) {
	var f heyFlags
	fs := f.flagSet()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return heyCommand{}, errors.New("hey -h asks for help; give a URL to load")
		}
		return heyCommand{}, fmt.Errorf("parsing hey's flags: %w", err)
	}
	switch {
	case fs.NArg() == 0:
		return heyCommand{}, errors.New("hey needs a URL")
	case fs.NArg() > 1:
		return heyCommand{}, fmt.Errorf("unexpected argument %q after the URL %q; hey takes its flags before the URL", fs.Arg(1), fs.Arg(0))
	}
	if err := f.validate(); err != nil {
		return heyCommand{}, err
	}
	target, err := url.Parse(fs.Arg(0))
	if err != nil {
		return heyCommand{}, fmt.Errorf("parsing the URL: %w", err)
	}
	if (target.Scheme != "http" && target.Scheme != "https") || target.Hostname() == "" {
		return heyCommand{}, fmt.Errorf("the URL %q must be an absolute http or https URL", fs.Arg(0))
	}
	if target.User != nil {
		return heyCommand{}, errors.New("the URL must not carry a user and password; use -a user:password")
	}
	l := Load{
		Method: strings.ToUpper(f.method), URL: target.String(), Body: []byte(f.body),
		Requests: f.requests, Duration: f.duration, Workers: f.workers, QPS: f.qps,
		Timeout: time.Duration(f.timeout) * time.Second, HTTP2: f.http2,
		DisableCompression: f.noCompress, DisableKeepAlives: f.noKeepAlive, DisableRedirects: f.noRedirect,
	}
	if f.duration > 0 {
		l.Requests = 0
	}
	if f.proxy != "" {
		if l.Proxy, err = url.Parse("http://" + f.proxy); err != nil || l.Proxy.Hostname() == "" || l.Proxy.User != nil ||
			l.Proxy.Path != "" || l.Proxy.RawQuery != "" {
			return heyCommand{}, fmt.Errorf("the proxy address -x %q must be host:port", f.proxy)
		}
	}
	if l.Header, l.Host, err = f.header(); err != nil {
		return heyCommand{}, err
	}
	return heyCommand{load: l, bodyFile: f.bodyFile}, nil
}

func (f *heyFlags) validate() error {
	switch {
	case f.output != "":
		return fmt.Errorf("hey -o %s is not supported: results go to the log and /metrics", f.output)
	case f.duration < 0 || f.timeout < 0 || f.qps < 0:
		return errors.New("-z, -t and -q cannot be negative")
	case math.IsNaN(f.qps) || math.IsInf(f.qps, 0):
		return fmt.Errorf("-q must be a number of requests per second, got %g", f.qps)
	case f.workers < 1:
		return fmt.Errorf("-c must be at least 1, got %d", f.workers)
	case f.duration == 0 && f.requests < 1:
		return fmt.Errorf("-n must be at least 1, got %d", f.requests)
	case f.duration == 0 && f.requests < f.workers:
		return fmt.Errorf("-n (%d) cannot be less than -c (%d)", f.requests, f.workers)
	case f.auth != "" && !strings.Contains(f.auth, ":"):
		return fmt.Errorf("-a %q must be user:password", f.auth)
	}
	return nil
}

// header builds the request headers and the Host header from -H, -T, -A,
// -a, -U and -host.
func (f *heyFlags) header() (http.Header, string, error) {
	h := http.Header{}
	host := ""
	h.Set("Content-Type", f.contentType)
	if f.accept != "" {
		h.Set("Accept", f.accept)
	}
	if f.auth != "" {
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(f.auth)))
	}
	for _, line := range f.headers {
		m := headerLine.FindStringSubmatch(line)
		if m == nil {
			return nil, "", fmt.Errorf("-H %q must be \"Name: value\"", line)
		}
		if strings.EqualFold(m[1], "Host") {
			host = m[2]
			continue
		}
		h.Add(m[1], m[2])
	}
	if f.host != "" {
		host = f.host
	}
	if f.agent != "" {
		h.Set("User-Agent", f.agent)
	}
	ua := userAgent
	if v := h.Get("User-Agent"); v != "" {
		ua = v + " " + userAgent
	}
	h.Set("User-Agent", ua)
	return h, host, nil
}
