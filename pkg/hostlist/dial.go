package hostlist

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
)

// Dialer returns a dial function for an http.Transport that connects only
// where the list allows:
//
//   - the host of addr must pass Check;
//   - an in-cluster Service name is dialed as the Service's full name
//     (name.namespace.svc.<domain>., with a trailing dot), so the resolver's
//     other search domains never turn it into an outside host;
//   - the address connected to, after DNS, must not be a loopback,
//     link-local (such as a cloud metadata server), multicast or
//     unspecified address unless an allowed network holds it.
//
// d is copied; nil means a zero net.Dialer.
func (l *List) Dialer(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	l = l.orDefault()
	var dialer net.Dialer
	if d != nil {
		dialer = *d
	}
	dialer.Control = func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("connecting to %s: not an IP address and port", address)
		}
		return l.checkConnect(ap.Addr())
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("dialing %s: %w", addr, err)
		}
		if err := l.Check(host); err != nil {
			return nil, fmt.Errorf("dialing %s: %w", addr, err)
		}
		return dialer.DialContext(ctx, network, net.JoinHostPort(l.DialHost(host), port))
	}
}

// checkConnect refuses the special-purpose addresses a name may resolve to,
// unless an allowed network holds them.
func (l *List) checkConnect(a netip.Addr) error {
	a = a.Unmap()
	if l.allowsIP(a) {
		return nil
	}
	if a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() ||
		a.IsMulticast() || a.IsUnspecified() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return fmt.Errorf("connecting to %s refused: loopback, link-local, multicast and unspecified addresses are reached only when an allowed network holds them", a)
	}
	return nil
}

// DialHost is the name or address to dial for an allowed host: an
// in-cluster Service name becomes the Service's full name with a trailing
// dot; a single-label name without a known namespace, an IP address and a
// name allowed by its own entry stay as they are.
func (l *List) DialHost(host string) string {
	l = l.orDefault()
	h := normalize(host)
	if isIP(h) || l.anyName || l.names[h] || l.matchesSuffix(h) || !l.inCluster {
		return host
	}
	svc, ok := serviceName(h, l.Cluster.domain())
	if !ok {
		return host
	}
	ns := svc.namespace
	if ns == "" {
		ns = l.Cluster.Namespace
	}
	if ns == "" {
		return host
	}
	return svc.name + "." + ns + ".svc." + l.Cluster.domain() + "."
}

// ReadClusterDNS reads the cluster domain and the pod's namespace from the
// search line of a pod's resolv.conf ("search <ns>.svc.<domain>
// svc.<domain> <domain>"). A file without such a line gives the zero
// ClusterDNS.
func ReadClusterDNS(path string) (ClusterDNS, error) {
	f, err := os.Open(path) //nolint:gosec // a path chosen by the operator or the default /etc/resolv.conf
	if err != nil {
		return ClusterDNS{}, fmt.Errorf("reading the cluster's DNS settings: %w", err)
	}
	defer f.Close()
	var c ClusterDNS
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "search" {
			continue
		}
		for _, s := range fields[1:] {
			if d, ok := strings.CutPrefix(strings.TrimSuffix(s, "."), "svc."); ok && d != "" {
				c.Domain = d
			}
		}
		for _, s := range fields[1:] {
			if ns, ok := strings.CutSuffix(strings.TrimSuffix(s, "."), ".svc."+c.domain()); ok && !strings.Contains(ns, ".") {
				c.Namespace = ns
			}
		}
	}
	if err := sc.Err(); err != nil {
		return ClusterDNS{}, fmt.Errorf("reading %s: %w", path, err)
	}
	return c, nil
}
