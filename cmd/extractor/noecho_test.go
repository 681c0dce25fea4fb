package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pybase/extraction-operator/api/podcontract"
)

// marker stands for what an internal service would answer (credentials,
// say). It is served in every kind of wrong answer; none of it may reach
// the termination message, which becomes the job's status, nor the logs,
// which become it when the termination message is lost.
const marker = "MARKER-f00dfeed-SECRET"

// markerServer answers every request with a wrong answer that carries the
// marker, as its route says.
func markerServer(t *testing.T, refused string) *httptest.Server {
	t.Helper()
	html := []byte("<!DOCTYPE html><html><body>" + marker + "</body></html>")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status/{code}/", func(w http.ResponseWriter, r *http.Request) {
		var code int
		fmt.Sscan(r.PathValue("code"), &code)
		w.Header().Set("Retry-After", marker)
		w.Header().Set("Content-Type", marker)
		w.WriteHeader(code)
		w.Write(html)
	})
	mux.HandleFunc("GET /file/{kind}/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; "+marker)
		w.Write(markerFiles[r.PathValue("kind")])
	})
	mux.HandleFunc("GET /redirect/{kind}/", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("kind") {
		case "scheme":
			w.Header().Set("Location", "gopher://"+marker+"/")
		case "refused":
			w.Header().Set("Location", refused+"/"+marker)
		case "loop":
			w.Header().Set("Location", "/redirect/loop/"+marker)
		case "unresolvable":
			w.Header().Set("Location", "http://"+marker+".invalid/")
		}
		w.WriteHeader(http.StatusFound)
		w.Write(html)
	})
	mux.HandleFunc("GET /raw/{kind}/", func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		switch r.PathValue("kind") {
		case "not-http":
			buf.WriteString(marker + " this is no HTTP\r\n\r\n")
		case "bad-status":
			buf.WriteString("HTTP/1.1 2" + marker + " OK\r\n\r\n")
		case "bad-header":
			buf.WriteString("HTTP/1.1 200 OK\r\n" + marker + "\r\n\r\n")
		case "bad-length":
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: " + marker + "\r\n\r\n")
		case "short":
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n%PDF-1.7\n" + marker)
		}
		buf.Flush()
	})
	// An S3-compatible store's error answers, path-style: the bucket says
	// which.
	mux.HandleFunc("GET /s3/{bucket}/{key...}", func(w http.ResponseWriter, r *http.Request) {
		s3Error := func(status int, code string) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(status)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><Resource>%s</Resource></Error>`,
				code, marker, marker)
		}
		switch r.PathValue("bucket") {
		case "unknown-code":
			s3Error(http.StatusBadRequest, marker)
		case "known-code":
			s3Error(http.StatusForbidden, "AccessDenied")
		case "throttled":
			w.Header().Set("Retry-After", marker)
			s3Error(http.StatusServiceUnavailable, "SlowDown")
		case "not-xml":
			w.WriteHeader(http.StatusInternalServerError)
			w.Write(html)
		case "not-found-html":
			w.WriteHeader(http.StatusNotFound)
			w.Write(html)
		case "html-object":
			w.Header().Set("Content-Length", fmt.Sprint(len(html)))
			w.Write(html)
		}
	})
	server := httptest.NewServer(mux)
	t.Cleanup(server.Close)
	return server
}

// markerFiles are files of each format broken in ways that put the marker
// where a message might quote it.
var markerFiles = map[string][]byte{
	"html":               []byte("<!DOCTYPE html><html><body>" + marker + "</body></html>"),
	"text":               []byte(marker + "\n"),
	"dxf-group-code":     []byte("0\nSECTION\n2\nENTITIES\n" + marker + "\nLINE\n"),
	"dxf-first-group":    []byte("0\n" + marker + "\n"),
	"dxf-outside":        []byte("0\nSECTION\n2\nENTITIES\n0\nENDSEC\n0\n" + marker + "\n"),
	"dxf-section-no-end": []byte("0\nSECTION\n2\n" + strings.ReplaceAll(marker, "-", "_") + "\n0\nEOF\n"),
	"dxf-truncated":      []byte("0\nSECTION\n2\n" + strings.ReplaceAll(marker, "-", "_") + "\n0\nLINE\n"),
	"dxf-no-eof":         []byte("0\nSECTION\n2\n" + strings.ReplaceAll(marker, "-", "_") + "\n0\nENDSEC\n"),
	"dxf-binary":         []byte(dxfBinarySentinel + "\x00\x00" + marker + "\x00"),
	"step-header":        []byte("ISO-10303-21;\n" + marker + ";\n"),
	"step-section":       []byte("ISO-10303-21;\nHEADER;\nFILE_SCHEMA(('IFC4'));\nENDSEC;\n" + marker + ";\n"),
	"step-data":          []byte("ISO-10303-21;\nHEADER;\nFILE_SCHEMA(('IFC4'));\nENDSEC;\nDATA;\n" + marker + ";\nENDSEC;\nEND-ISO-10303-21;\n"),
	"step-schema":        []byte("ISO-10303-21;\nHEADER;\nFILE_SCHEMA(('" + marker + "'));\nENDSEC;\nDATA;\nENDSEC;\nEND-ISO-10303-21;\n"),
	"pdf-broken":         []byte("%PDF-1.7\n1 0 obj\n<< /Type /" + marker + " /Pages " + marker + " >>\nendobj\nxref\n" + marker + "\ntrailer\n<< /Root " + marker + " >>\nstartxref\n9\n%%EOF\n"),
	"pdf-version":        []byte("%PDF-" + marker + "\n%%EOF\n"),
	"png-broken":         []byte(pngMagic + marker + pngEnd),
}

// tlsMarkerServer serves TLS with a certificate that names the marker, as
// TLS errors quote a certificate's names.
func tlsMarkerServer(t *testing.T) *httptest.Server {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: marker, Organization: []string{marker}},
		DNSNames: []string{marker + ".example"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(marker))
	}))
	server.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	server.StartTLS()
	t.Cleanup(server.Close)
	return server
}

func TestNoRemoteBytesInTheTerminationMessage(t *testing.T) {
	refused, _ := countingServer(t, "127.0.0.2:0", servesMarker)
	server := markerServer(t, refused.URL)
	tlsServer := tlsMarkerServer(t)
	s3 := s3Credentials(server.URL + "/s3")
	tests := []struct {
		name, format, source string
		env                  map[string]string
		wantType             string
	}{
		{"a 404 with a body", "pdf", "/status/404/", nil, podcontract.SourceNotFound},
		{"a 401 with a body", "pdf", "/status/401/", nil, podcontract.AuthenticationFailed},
		{"a 403 with a body", "pdf", "/status/403/", nil, podcontract.PermissionDenied},
		{"a 408 with a body", "pdf", "/status/408/", nil, podcontract.TimeoutError},
		{"a 429 with a body and a Retry-After that does not parse", "pdf", "/status/429/", nil, podcontract.RateLimitExceeded},
		{"a 500 with a body", "pdf", "/status/500/", nil, podcontract.ServiceUnavailable},
		{"a 503 with a body", "pdf", "/status/503/", nil, podcontract.ServiceUnavailable},
		{"an unexpected status with a body", "pdf", "/status/418/", nil, podcontract.UnexpectedResponse},
		{"a redirect without a Location", "pdf", "/status/302/", nil, podcontract.UnexpectedResponse},
		{"HTML instead of a PDF", "pdf", "/file/html/", nil, podcontract.InvalidFileType},
		{"HTML instead of a DXF", "dxf", "/file/html/", nil, podcontract.InvalidFileType},
		{"HTML instead of an IFC model", "ifc", "/file/html/", nil, podcontract.InvalidFileType},
		{"HTML instead of a STEP part", "step", "/file/html/", nil, podcontract.InvalidFileType},
		{"HTML instead of a Werk24 drawing", "werk24", "/file/html/", nil, podcontract.InvalidFileType},
		{"text instead of a DXF", "dxf", "/file/text/", nil, podcontract.InvalidFileType},
		{"a DXF whose group code is the marker", "dxf", "/file/dxf-group-code/", nil, podcontract.CorruptedFile},
		{"a DXF that starts with the marker", "dxf", "/file/dxf-first-group/", nil, podcontract.InvalidFileType},
		{"a DXF with the marker outside any section", "dxf", "/file/dxf-outside/", nil, podcontract.CorruptedFile},
		{"a DXF section named the marker without ENDSEC", "dxf", "/file/dxf-section-no-end/", nil, podcontract.CorruptedFile},
		{"a DXF cut short in a section named the marker", "dxf", "/file/dxf-truncated/", nil, podcontract.CorruptedFile},
		{"a DXF without EOF after a section named the marker", "dxf", "/file/dxf-no-eof/", nil, podcontract.CorruptedFile},
		{"a binary DXF that starts with the marker", "dxf", "/file/dxf-binary/", nil, podcontract.CorruptedFile},
		{"a STEP file with the marker for its header", "step", "/file/step-header/", nil, podcontract.CorruptedFile},
		{"a STEP file with the marker for a section", "step", "/file/step-section/", nil, podcontract.CorruptedFile},
		{"a STEP file with the marker in its data", "step", "/file/step-data/", nil, podcontract.CorruptedFile},
		{"an IFC job given the marker for a schema", "ifc", "/file/step-schema/", nil, podcontract.InvalidFileType},
		{"a PDF whose objects are the marker", "pdf", "/file/pdf-broken/", nil, podcontract.CorruptedFile},
		{"a PDF whose version is the marker", "pdf", "/file/pdf-version/", nil, podcontract.CorruptedFile},
		{"a PNG whose header is the marker", "werk24", "/file/png-broken/", nil, podcontract.CorruptedFile},
		{"an answer that is not HTTP", "pdf", "/raw/not-http/", nil, podcontract.ConnectionError},
		{"a status line with the marker", "pdf", "/raw/bad-status/", nil, podcontract.ConnectionError},
		{"a header line with the marker", "pdf", "/raw/bad-header/", nil, podcontract.ConnectionError},
		{"a Content-Length that is the marker", "pdf", "/raw/bad-length/", nil, podcontract.ConnectionError},
		{"a body cut short after the marker", "pdf", "/raw/short/", nil, podcontract.ConnectionError},
		{"a redirect to another URL scheme", "pdf", "/redirect/scheme/", nil, podcontract.UnexpectedResponse},
		{"a redirect to a refused address", "pdf", "/redirect/refused/", nil, podcontract.DestinationNotAllowed},
		{"redirects without end", "pdf", "/redirect/loop/", nil, podcontract.UnexpectedResponse},
		{"a redirect to a host name that does not resolve", "pdf", "/redirect/unresolvable/", nil, podcontract.ConnectionError},
		{"a TLS certificate that names the marker", "pdf", tlsServer.URL + "/a.pdf", nil, podcontract.ConnectionError},
		{"an S3 error of an unknown code", "pdf", "s3://unknown-code/a.pdf", s3, podcontract.UnexpectedResponse},
		{"an S3 error of a known code with the marker for a message", "pdf", "s3://known-code/a.pdf", s3, podcontract.PermissionDenied},
		{"an S3 throttling answer", "pdf", "s3://throttled/a.pdf", s3, podcontract.RateLimitExceeded},
		{"an S3 error that is not XML", "pdf", "s3://not-xml/a.pdf", s3, podcontract.ServiceUnavailable},
		{"an S3 404 that is HTML", "pdf", "s3://not-found-html/a.pdf", s3, podcontract.SourceNotFound},
		{"an S3 object that is HTML", "pdf", "s3://html-object/a.pdf", s3, podcontract.InvalidFileType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			source := tt.source
			if strings.HasPrefix(source, "/") {
				source = server.URL + source
			}
			env := map[string]string{podcontract.EnvFormat: tt.format}
			for name, value := range tt.env {
				env[name] = value
			}
			// Only the test servers' own address: the redirect to
			// 127.0.0.2 is refused.
			got := runSource(t, source, "127.0.0.1", env)
			if got.errorType() != tt.wantType {
				t.Errorf("error type %q, want %q: %q", got.errorType(), tt.wantType, got.message)
			}
			if strings.Contains(got.message, marker) || strings.Contains(got.stderr, marker) {
				t.Errorf("the remote answer reached the termination message or the logs:\n%s\n%s", got.message, got.stderr)
			}
		})
	}
}
