// Package hostlist decides which hosts an outgoing request may go to: an
// allow-list of Kubernetes Service names, host names, domain suffixes and
// IP networks. The load tester checks its load test targets with it, and
// the webhook caller the hosts it may send its bearer token to.
//
// It is not a stable Go API: Sluice's packages under pkg/ may change
// without notice.
package hostlist

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// InCluster is the entry that allows Kubernetes Service names: "name",
// "name.namespace", "name.namespace.svc" and
// "name.namespace.svc.<cluster domain>".
const InCluster = "in-cluster"

// Default is the allow-list used when none is configured: in-cluster
// Services only.
const Default = InCluster

// DefaultClusterDomain is the cluster's DNS domain when none is known.
const DefaultClusterDomain = "cluster.local"

// List is a parsed allow-list. The zero value allows nothing; a nil *List
// is Default.
type List struct {
	entries   []string
	inCluster bool
	anyName   bool
	names     map[string]bool
	suffixes  []string // ".example.com" for "*.example.com"
	nets      []netip.Prefix
	// Cluster says how in-cluster names resolve; see Dialer.
	Cluster ClusterDNS
}

// ClusterDNS is the cluster's DNS naming, read from the pod's resolv.conf
// by ReadClusterDNS.
type ClusterDNS struct {
	// Domain is the cluster domain; empty means DefaultClusterDomain.
	Domain string
	// Namespace is the pod's own namespace, which single-label Service names
	// belong to; empty leaves single-label names to the resolver's search
	// path.
	Namespace string
}

func (c ClusterDNS) domain() string {
	if c.Domain == "" {
		return DefaultClusterDomain
	}
	return c.Domain
}

// Parse reads a comma-separated allow-list. Entries:
//
//   - "in-cluster": Kubernetes Service names (see InCluster);
//   - "10.0.0.0/8", "fd00::/8" or a single IP address: IP address targets
//     inside the network;
//   - "example.com": that host name only;
//   - "*.example.com": every name under example.com;
//   - "*": every host name (IP addresses still need a network entry).
//
// Blank entries are ignored; an empty spec allows nothing.
func Parse(spec string) (*List, error) {
	l := &List{names: map[string]bool{}}
	for _, raw := range strings.Split(spec, ",") {
		e := strings.ToLower(strings.TrimSpace(raw))
		if e == "" {
			continue
		}
		if err := l.add(e); err != nil {
			return nil, fmt.Errorf("allow-list entry %q: %w", strings.TrimSpace(raw), err)
		}
		l.entries = append(l.entries, e)
	}
	return l, nil
}

// MustParse is Parse for constant allow-lists; it panics on a bad one.
func MustParse(spec string) *List {
	l, err := Parse(spec)
	if err != nil {
		panic(err)
	}
	return l
}

func (l *List) add(e string) error {
	switch {
	case e == InCluster:
		l.inCluster = true
	case e == "*":
		l.anyName = true
	case strings.Contains(e, "/"):
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return fmt.Errorf("not a network: %w", err)
		}
		l.nets = append(l.nets, p.Masked())
	case isIP(e):
		a, _ := netip.ParseAddr(strings.Trim(e, "[]"))
		l.nets = append(l.nets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	case strings.HasPrefix(e, "*."):
		name := strings.TrimPrefix(e, "*.")
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			return errors.New(strings.Join(errs, "; "))
		}
		l.suffixes = append(l.suffixes, "."+name)
	default:
		name := strings.TrimSuffix(e, ".")
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			return fmt.Errorf("not a host name, network, *.domain, * or %s: %s", InCluster, strings.Join(errs, "; "))
		}
		l.names[name] = true
	}
	return nil
}

// String is the allow-list as Parse reads it.
func (l *List) String() string {
	if l == nil {
		return Default
	}
	return strings.Join(l.entries, ",")
}

// orDefault returns l, or the Default list when l is nil.
func (l *List) orDefault() *List {
	if l == nil {
		return MustParse(Default)
	}
	return l
}

// Check says why host (a URL's host name or IP address, without port) is
// not allowed, or returns nil when it is.
func (l *List) Check(host string) error {
	l = l.orDefault()
	h := normalize(host)
	if h == "" {
		return errors.New("no host")
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if l.allowsIP(a) {
			return nil
		}
		return fmt.Errorf("the IP address %s is not in an allowed network (allowed: %s)", h, l.describe())
	}
	if l.anyName || l.names[h] || l.matchesSuffix(h) {
		return nil
	}
	if l.inCluster {
		if _, ok := serviceName(h, l.Cluster.domain()); ok {
			return nil
		}
	}
	return fmt.Errorf("the host %s is not allowed (allowed: %s)", h, l.describe())
}

// Allows reports whether host may be requested; see Check.
func (l *List) Allows(host string) bool { return l.Check(host) == nil }

func (l *List) allowsIP(a netip.Addr) bool {
	a = a.Unmap()
	return slices.ContainsFunc(l.nets, func(p netip.Prefix) bool { return p.Contains(a) })
}

func (l *List) matchesSuffix(h string) bool {
	return slices.ContainsFunc(l.suffixes, func(s string) bool { return strings.HasSuffix(h, s) })
}

func (l *List) describe() string {
	if len(l.entries) == 0 {
		return "nothing"
	}
	return strings.Join(l.entries, ",")
}

// service is a Kubernetes Service named in a host.
type service struct {
	name, namespace string // namespace is empty for a single-label name
}

// serviceName reads a Service name: name, name.namespace,
// name.namespace.svc or name.namespace.svc.<domain>.
func serviceName(h, domain string) (service, bool) {
	rest, full := strings.CutSuffix(h, ".svc."+domain)
	if !full {
		rest = strings.TrimSuffix(h, ".svc")
	}
	labels := strings.Split(rest, ".")
	if len(labels) > 2 || (full || rest != h) && len(labels) != 2 {
		return service{}, false
	}
	for _, label := range labels {
		if len(validation.IsDNS1123Label(label)) > 0 {
			return service{}, false
		}
	}
	if len(labels) == 1 {
		return service{name: labels[0]}, true
	}
	return service{name: labels[0], namespace: labels[1]}, true
}

// normalize lower-cases a host and drops the brackets of an IPv6 address
// and a trailing dot.
func normalize(host string) string {
	h := strings.ToLower(strings.TrimSpace(host))
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(h, ".")
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return err == nil
}
