package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/pybase/extraction-operator/api/podcontract"
)

// internalNetworks are the addresses the extractor refuses to connect to
// unless the administrator allows them, with the class a refusal names.
// The job's author chooses the URL and the Pod connects from inside the
// cluster, so without this the author could read what the Pod may reach and
// they may not: a cloud metadata service (credentials), the API server,
// a kubelet, other tenants' Services. The metadata addresses come first, so
// a refusal says what they are.
var internalNetworks = []struct {
	network netip.Prefix
	class   string
}{
	{netip.MustParsePrefix("169.254.169.254/32"), "cloud metadata (link-local)"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata (private)"},
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("fc00::/7"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// nat64 is the well-known NAT64 prefix (RFC 6052): its addresses reach the
// IPv4 address in their last 32 bits, through a translator.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// ipv4Of is the IPv4 address an IPv6 address stands for, if it stands for
// one: IPv4-mapped (::ffff:a.b.c.d) or NAT64. Any other address is itself.
func ipv4Of(addr netip.Addr) netip.Addr {
	addr = addr.Unmap()
	if nat64.Contains(addr) {
		b := addr.As16()
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return addr
}

// addressClass names the internal class of an address, or "" for an
// address outside them all.
func addressClass(addr netip.Addr) string {
	addr = ipv4Of(addr.WithZone(""))
	for _, n := range internalNetworks {
		if n.network.Contains(addr) {
			return n.class
		}
	}
	return ""
}

// destinations is the administrator's allow-list,
// podcontract.EnvAllowedDestinations.
type destinations struct {
	networks []netip.Prefix
	hosts    map[string]bool
}

// parseDestinations reads the allow-list: comma-separated networks, IP
// addresses and host names.
func parseDestinations(list string) (destinations, error) {
	allowed := destinations{hosts: map[string]bool{}}
	for entry := range strings.SplitSeq(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if network, err := netip.ParsePrefix(entry); err == nil {
			allowed.networks = append(allowed.networks, network.Masked())
			continue
		}
		if addr, err := netip.ParseAddr(entry); err == nil {
			allowed.networks = append(allowed.networks, netip.PrefixFrom(addr, addr.BitLen()))
			continue
		}
		if strings.ContainsAny(entry, "/: ") {
			return destinations{}, fmt.Errorf("%q is neither an IP network, an IP address nor a host name", entry)
		}
		allowed.hosts[strings.ToLower(strings.TrimSuffix(entry, "."))] = true
	}
	return allowed, nil
}

func (d destinations) allowsHost(host string) bool {
	return d.hosts[strings.ToLower(strings.TrimSuffix(host, "."))]
}

func (d destinations) allowsAddr(addr netip.Addr) bool {
	addr = addr.WithZone("")
	for _, network := range d.networks {
		if network.Contains(addr) || network.Contains(ipv4Of(addr)) {
			return true
		}
	}
	return false
}

// refusedDestination is the error of a connection the extractor would not
// make. It names the class of the address, not the address: for a host name
// the address is the resolver's answer, which the job's author should not
// learn from the job's status.
type refusedDestination struct{ class string }

func (r *refusedDestination) Error() string {
	article := "a "
	if strings.ContainsAny(r.class[:1], "aeiou") {
		article = "an "
	}
	return "refused to connect to " + article + r.class + " address"
}

// check decides about one connection, to the resolved address the dialer is
// about to connect to.
func (d destinations) check(address string) error {
	addrPort, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("the dialer gave an address that is no IP address and port: %w", err)
	}
	class := addressClass(addrPort.Addr())
	if class == "" || d.allowsAddr(addrPort.Addr()) {
		return nil
	}
	return &refusedDestination{class: class}
}

// guardedDialer connects only to destinations the allow-list permits. The
// check runs in the dialer's Control function, on the address of each
// connection after name resolution and right before connect, so a host
// name that resolves to an internal address, or that resolves differently
// on a second lookup (DNS rebinding), is caught: what is checked is what is
// connected to. A host name on the allow-list is dialed without the check.
type guardedDialer struct {
	allowed   destinations
	guarded   *net.Dialer
	unchecked *net.Dialer
}

func newGuardedDialer(allowed destinations) *guardedDialer {
	// As http.DefaultTransport's dialer.
	base := net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	guarded, unchecked := base, base
	guarded.Control = func(_, address string, _ syscall.RawConn) error { return allowed.check(address) }
	return &guardedDialer{allowed: allowed, guarded: &guarded, unchecked: &unchecked}
}

func (g *guardedDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if host, _, err := net.SplitHostPort(address); err == nil && g.allowed.allowsHost(host) {
		return g.unchecked.DialContext(ctx, network, address)
	}
	return g.guarded.DialContext(ctx, network, address)
}

// newHTTPClient is the client of every fetch, HTTP and S3 alike, and of
// every redirect: each connection goes through the guarded dialer. It uses
// no proxy from the environment: a proxy would connect in the extractor's
// place, past the check, and the job's Secret, which becomes the
// environment, could name one.
func newHTTPClient(allowed destinations) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	transport.DialContext = newGuardedDialer(allowed).DialContext
	return &http.Client{Transport: transport, CheckRedirect: checkRedirect}
}

// destinationFailure is the DestinationNotAllowed failure of a refused
// connection, or nil when err is none.
func destinationFailure(err error, what string) *failure {
	var refused *refusedDestination
	if !errors.As(err, &refused) {
		return nil
	}
	return fail(podcontract.DestinationNotAllowed, nil,
		"%s: %s (the source, a redirect or the S3 endpoint led there); an administrator can allow internal destinations with %s in the ExtractorClass's env",
		what, refused.Error(), podcontract.EnvAllowedDestinations)
}
