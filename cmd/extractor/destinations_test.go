package main

import (
	"errors"
	"net/netip"
	"testing"
)

func TestAddressClass(t *testing.T) {
	tests := []struct {
		name, addr, want string
	}{
		{"the AWS, GCP and Azure metadata address is cloud metadata", "169.254.169.254", "cloud metadata (link-local)"},
		{"the AWS IPv6 metadata address is cloud metadata", "fd00:ec2::254", "cloud metadata (private)"},
		{"the metadata address written as IPv4-mapped IPv6 is cloud metadata", "::ffff:169.254.169.254", "cloud metadata (link-local)"},
		{"the metadata address behind the NAT64 prefix is cloud metadata", "64:ff9b::a9fe:a9fe", "cloud metadata (link-local)"},
		{"127.0.0.1 is loopback", "127.0.0.1", "loopback"},
		{"all of 127/8 is loopback", "127.1.2.3", "loopback"},
		{"::1 is loopback", "::1", "loopback"},
		{"IPv4-mapped loopback is loopback", "::ffff:127.0.0.1", "loopback"},
		{"another IPv4 link-local address is link-local", "169.254.10.1", "link-local"},
		{"an IPv6 link-local address is link-local", "fe80::1", "link-local"},
		{"an IPv6 link-local address with a zone is link-local", "fe80::1%eth0", "link-local"},
		{"a Service ClusterIP in 10/8 is private", "10.96.0.1", "private"},
		{"IPv4-mapped 10/8 is private", "::ffff:10.96.0.1", "private"},
		{"172.16/12 is private", "172.31.255.254", "private"},
		{"192.168/16 is private", "192.168.1.1", "private"},
		{"a unique local IPv6 address is private", "fd12:3456::1", "private"},
		{"fc00::/7 is private in full", "fc00::1", "private"},
		{"carrier-grade NAT is its own class", "100.64.0.1", "carrier-grade NAT"},
		{"the top of carrier-grade NAT", "100.127.255.255", "carrier-grade NAT"},
		{"0.0.0.0 is unspecified", "0.0.0.0", "unspecified"},
		{"0/8 is unspecified", "0.1.2.3", "unspecified"},
		{":: is unspecified", "::", "unspecified"},
		{"an IPv4 multicast address is multicast", "224.0.0.1", "multicast"},
		{"an IPv6 multicast address is multicast", "ff02::1", "multicast"},
		{"a public IPv4 address is no internal class", "192.0.2.10", ""},
		{"just below carrier-grade NAT is public", "100.63.255.255", ""},
		{"just above 172.16/12 is public", "172.32.0.1", ""},
		{"a public IPv6 address is no internal class", "2001:db8::1", ""},
		{"a public IPv4 address behind NAT64 is public", "64:ff9b::c000:20a", ""},
		{"a public IPv4-mapped address is public", "::ffff:192.0.2.10", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := addressClass(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Errorf("addressClass(%s) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
}

func TestParseDestinations(t *testing.T) {
	t.Run("networks, addresses and host names are read, with spaces and empty entries ignored", func(t *testing.T) {
		allowed, err := parseDestinations(" 10.20.0.0/16, fd00:1::/64,,192.168.7.7 , MinIO.Storage.svc. ")
		if err != nil {
			t.Fatal(err)
		}
		for _, addr := range []string{"10.20.3.4", "fd00:1::9", "192.168.7.7", "::ffff:10.20.0.1"} {
			if !allowed.allowsAddr(netip.MustParseAddr(addr)) {
				t.Errorf("%s is not allowed", addr)
			}
		}
		for _, addr := range []string{"10.21.0.1", "192.168.7.8", "fd00:2::1"} {
			if allowed.allowsAddr(netip.MustParseAddr(addr)) {
				t.Errorf("%s is allowed", addr)
			}
		}
		if !allowed.allowsHost("minio.storage.svc") || !allowed.allowsHost("MINIO.storage.svc.") || allowed.allowsHost("storage.svc") {
			t.Errorf("host names are matched exactly, without regard to case or a final dot: %v", allowed.hosts)
		}
	})
	t.Run("an entry that is neither a network, an address nor a host name is refused", func(t *testing.T) {
		for _, list := range []string{"10.0.0.0/33", "10.0.0.1:80", "a host"} {
			if _, err := parseDestinations(list); err == nil {
				t.Errorf("%q was accepted", list)
			}
		}
	})
	t.Run("nothing is allowed by default", func(t *testing.T) {
		allowed, err := parseDestinations("")
		if err != nil || len(allowed.networks) != 0 || len(allowed.hosts) != 0 {
			t.Errorf("got %+v, %v", allowed, err)
		}
	})
}

// The dialer's Control function gets the resolved address and port, just
// before connect; these call the check it runs without dialing anything.
func TestDestinationCheck(t *testing.T) {
	tests := []struct {
		name, allowed, address string
		wantClass              string // "" allows the connection
	}{
		{"a public address is allowed without an allow-list", "", "192.0.2.10:443", ""},
		{"the metadata service is refused", "", "169.254.169.254:80", "cloud metadata (link-local)"},
		{"the API server's ClusterIP is refused", "", "10.96.0.1:443", "private"},
		{"an IPv6 address with a zone is refused by its class", "", "[fe80::1%eth0]:80", "link-local"},
		{"an allowed network lets its addresses through", "10.96.0.0/12", "10.96.0.1:443", ""},
		{"an allowed network lets their IPv4-mapped form through", "10.96.0.0/12", "[::ffff:10.96.0.1]:443", ""},
		{"an allowed network does not let others through", "10.96.0.0/12", "10.244.0.5:80", "private"},
		{"allowing loopback does not allow the metadata service", "127.0.0.0/8,::1", "169.254.169.254:80", "cloud metadata (link-local)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allowed, err := parseDestinations(tt.allowed)
			if err != nil {
				t.Fatal(err)
			}
			err = allowed.check(tt.address)
			var refused *refusedDestination
			switch {
			case tt.wantClass == "" && err != nil:
				t.Errorf("check(%s) = %v, want it allowed", tt.address, err)
			case tt.wantClass != "" && (!errors.As(err, &refused) || refused.class != tt.wantClass):
				t.Errorf("check(%s) = %v, want a refusal of a %s address", tt.address, err, tt.wantClass)
			}
		})
	}
}
