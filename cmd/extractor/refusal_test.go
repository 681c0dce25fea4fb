package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pybase/extraction-operator/api/podcontract"
)

// refusal is one fetch the extractor must refuse.
type refusal struct {
	name   string
	source string
	// allowed is the class's allow-list, env the job's Secret.
	allowed string
	env     map[string]string
	// wantClass is the class the message names; notInMessage what it
	// must not say, such as the address a host name resolved to.
	wantClass    string
	notInMessage []string
}

// s3Credentials are what a job's Secret gives an s3:// source.
func s3Credentials(endpoint string) map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID": testAccessKey, "AWS_SECRET_ACCESS_KEY": testSecretKey,
		"AWS_REGION": testRegion, "AWS_ENDPOINT_URL": endpoint,
	}
}

// runSource runs the extractor on a source with the class's allow-list and
// more environment (the job's Secret, another format than PDF).
func runSource(t *testing.T, source, allowed string, more map[string]string) outcome {
	t.Helper()
	env := map[string]string{
		podcontract.EnvFormat: "pdf", podcontract.EnvSourceURL: source, podcontract.EnvAttempt: "1",
		podcontract.EnvAllowedDestinations: allowed,
	}
	for name, value := range more {
		env[name] = value
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	got := runExtractor(t, ctx, env)
	t.Logf("exit code %d, termination message: %s", got.exitCode, got.message)
	checkContract(t, got)
	return got
}

func (r refusal) check(t *testing.T) {
	t.Helper()
	got := runSource(t, r.source, r.allowed, r.env)
	if got.errorType() != podcontract.DestinationNotAllowed || got.exitCode != 77 {
		t.Fatalf("got %q exiting %d, want DestinationNotAllowed exiting 77", got.message, got.exitCode)
	}
	if want := " " + r.wantClass + " address"; !strings.Contains(got.message, "refused to connect to") || !strings.Contains(got.message, want) {
		t.Errorf("the message %q does not say it refused a%s", got.message, want)
	}
	for _, secret := range r.notInMessage {
		if strings.Contains(got.message+got.stderr, secret) {
			t.Errorf("%q appears in the message or the logs: %q", secret, got.message)
		}
	}
}

// countingServer is a loopback server that counts the requests it gets, to
// show that a refused one never arrived.
func countingServer(t *testing.T, listen string, handler http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", listen)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", listen, err)
	}
	var hits atomic.Int32
	server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		handler(w, r)
	}))
	server.Listener.Close()
	server.Listener = l
	server.Start()
	t.Cleanup(server.Close)
	return server, &hits
}

func redirectTo(location string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, location, http.StatusFound)
	}
}

func servesMarker(w http.ResponseWriter, _ *http.Request) {
	w.Write([]byte(marker))
}

// Loopback cannot leave the machine, so these run everywhere, against live
// servers that would answer: what is refused never reaches them.
func TestRefusedLoopbackDestinations(t *testing.T) {
	internal, internalHits := countingServer(t, "127.0.0.2:0", servesMarker)
	local, localHits := countingServer(t, "127.0.0.1:0", servesMarker)
	source, _ := countingServer(t, "127.0.0.1:0", redirectTo(internal.URL+"/latest/meta-data/"))
	localhost := strings.Replace(local.URL, "127.0.0.1", "localhost", 1)
	tests := []refusal{
		{name: "a loopback address is refused without an allow-list", source: internal.URL + "/a.pdf",
			wantClass: "loopback"},
		{name: "a host name that resolves to loopback is refused at connect time, and the message names no address",
			source: localhost + "/a.pdf", wantClass: "loopback", notInMessage: []string{"127.0.0"}},
		{name: "a redirect from an allowed source to a loopback address is refused", source: source.URL + "/a.pdf",
			allowed: "127.0.0.1", wantClass: "loopback", notInMessage: []string{"127.0.0.2", "/latest/meta-data/"}},
		{name: "an S3 endpoint at a loopback host name is refused", source: "s3://bucket/a.pdf",
			env: s3Credentials(localhost), wantClass: "loopback"},
		{name: "allowing one loopback address does not allow the others", source: internal.URL + "/a.pdf",
			allowed: "127.0.0.1", wantClass: "loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
	if n := internalHits.Load() + localHits.Load(); n != 0 {
		t.Errorf("the refused servers got %d requests", n)
	}

	t.Run("an allowed host name is fetched", func(t *testing.T) {
		got := runSource(t, localhost+"/a.pdf", "localhost", nil)
		if got.errorType() != podcontract.InvalidFileType {
			t.Errorf("got %q, want the marker page refused as InvalidFileType", got.message)
		}
	})
	t.Run("an allowed network is fetched", func(t *testing.T) {
		got := runSource(t, internal.URL+"/a.pdf", "127.0.0.0/8", nil)
		if got.errorType() != podcontract.InvalidFileType {
			t.Errorf("got %q, want the marker page refused as InvalidFileType", got.message)
		}
	})
}

// These aim at addresses off the machine: the metadata service, a Service
// ClusterIP, every internal class; they run only in an isolated network.
func TestRefusedDestinationsInAnIsolatedNetwork(t *testing.T) {
	if !runIsolated(t) {
		return
	}
	source, _ := countingServer(t, "127.0.0.1:0", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	})
	redirect := func(to string) string { return source.URL + "/redirect?to=" + to }
	metadata := []string{"169.254", "a9fe", "fd00:ec2"}
	cluster := []string{"10.96"}
	tests := []refusal{
		{name: "the metadata service is refused", source: "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
			wantClass: "cloud metadata (link-local)"},
		{name: "the IPv6 metadata service is refused", source: "http://[fd00:ec2::254]/latest/meta-data/",
			wantClass: "cloud metadata (private)"},
		{name: "the metadata service written as IPv4-mapped IPv6 is refused", source: "http://[::ffff:169.254.169.254]/latest/meta-data/",
			wantClass: "cloud metadata (link-local)"},
		{name: "the metadata service behind NAT64 is refused", source: "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
			wantClass: "cloud metadata (link-local)"},
		{name: "another link-local address is refused", source: "http://169.254.10.1/", wantClass: "link-local"},
		{name: "an IPv6 link-local address is refused", source: "http://[fe80::1]/", wantClass: "link-local"},
		{name: "the API server's ClusterIP is refused", source: "https://10.96.0.1/api/v1/secrets", wantClass: "private"},
		{name: "a ClusterIP written as IPv4-mapped IPv6 is refused", source: "https://[::ffff:10.96.0.1]/", wantClass: "private"},
		{name: "172.16/12 is refused", source: "http://172.16.0.1/", wantClass: "private"},
		{name: "192.168/16 is refused", source: "http://192.168.0.1/", wantClass: "private"},
		{name: "a unique local IPv6 address is refused", source: "http://[fd12:3456::1]/", wantClass: "private"},
		{name: "a carrier-grade NAT address is refused", source: "http://100.64.0.1/", wantClass: "carrier-grade NAT"},
		{name: "0.0.0.0 is refused", source: "http://0.0.0.0/", wantClass: "unspecified"},
		{name: ":: is refused", source: "http://[::]/", wantClass: "unspecified"},
		{name: "an IPv4 multicast address is refused", source: "http://224.0.0.1/", wantClass: "multicast"},
		{name: "an IPv6 multicast address is refused", source: "http://[ff02::1]/", wantClass: "multicast"},
		{name: "a host name that resolves to the metadata service is refused, and the message names no address",
			source: "http://metadata.test/latest/meta-data/", wantClass: "cloud metadata (link-local)", notInMessage: metadata},
		{name: "a host name that resolves to the IPv6 metadata service is refused",
			source: "http://metadata6.test/latest/meta-data/", wantClass: "cloud metadata (private)", notInMessage: metadata},
		{name: "a host name that resolves to a ClusterIP is refused", source: "https://kubernetes.test/api",
			wantClass: "private", notInMessage: cluster},
		{name: "a redirect to the metadata service is refused, and the message names neither it nor the redirect",
			source: redirect("http://169.254.169.254/latest/meta-data/" + marker), allowed: "127.0.0.1",
			wantClass: "cloud metadata (link-local)", notInMessage: append(metadata, marker)},
		{name: "a redirect to a host name that resolves to a ClusterIP is refused",
			source: redirect("https://kubernetes.test/api"), allowed: "127.0.0.1", wantClass: "private", notInMessage: cluster},
		{name: "a second redirect to the metadata service is refused",
			source: redirect(source.URL + "/redirect?to=http://metadata.test/"), allowed: "127.0.0.1",
			wantClass: "cloud metadata (link-local)", notInMessage: metadata},
		{name: "an S3 endpoint at the metadata service is refused", source: "s3://bucket/a.pdf",
			env: s3Credentials("http://169.254.169.254"), wantClass: "cloud metadata (link-local)"},
		{name: "an S3 endpoint at a host name that resolves to a ClusterIP is refused", source: "s3://bucket/a.pdf",
			env: s3Credentials("http://kubernetes.test:9000"), wantClass: "private", notInMessage: cluster},
		{name: "allowing loopback does not allow the metadata service", source: "http://169.254.169.254/",
			allowed: "127.0.0.0/8,::1", wantClass: "cloud metadata (link-local)"},
		{name: "allowing a network does not allow the metadata service", source: "http://169.254.169.254/",
			allowed: "10.0.0.0/8", wantClass: "cloud metadata (link-local)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}

	t.Run("a proxy in the environment, which the job's Secret could name, is not used", func(t *testing.T) {
		proxy, proxyHits := countingServer(t, "127.0.0.1:0", servesMarker)
		got := runSource(t, "http://192.0.2.10/a.pdf", "127.0.0.1", map[string]string{
			"HTTP_PROXY": proxy.URL, "http_proxy": proxy.URL, "HTTPS_PROXY": proxy.URL,
		})
		if got.errorType() != podcontract.ConnectionError || proxyHits.Load() != 0 {
			t.Errorf("got %q and %d requests to the proxy, want a direct attempt that finds no route", got.message, proxyHits.Load())
		}
	})

	// The kernel finds no route: the extractor tried, so the allow-list
	// worked, and nothing left.
	for _, tt := range []struct{ name, source, allowed string }{
		{"an allowed network is connected to", "https://10.96.0.1/", "10.96.0.0/12"},
		{"an allowed host name is connected to, whatever it resolves to", "http://metadata.test/", "metadata.test"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := runSource(t, tt.source, tt.allowed, nil)
			if got.errorType() != podcontract.ConnectionError || !strings.Contains(got.message, "network is unreachable") {
				t.Errorf("got %q, want a ConnectionError of an unreachable network", got.message)
			}
		})
	}
}
