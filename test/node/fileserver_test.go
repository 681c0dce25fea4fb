//go:build node

package node

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// answer is what the file server answers to one request of a route: a
// status (with a Retry-After header if retryAfter is set), or, with hang,
// nothing until the client goes away: a source that never finishes.
type answer struct {
	status     int
	retryAfter time.Duration
	hang       bool
}

// route serves a file after answering its first requests as its answers
// say, one answer per request.
type route struct {
	body    []byte
	answers []answer
}

// request is one request a route received, and what it was answered.
type request struct {
	at     time.Time
	status int // 0 for a hang
}

// fileServer is the HTTP server on this machine that the extractors of the
// real node fetch their sources from, through the Pods' bridge. It serves
// real files, made by real tools, and answers 503, 429 or nothing on
// request. The standard library's server does all the HTTP; the only logic
// here is which answer a request gets.
type fileServer struct {
	server *http.Server
	base   string

	mu       sync.Mutex
	routes   map[string]*route
	requests map[string][]request
	hanging  sync.WaitGroup
	stop     chan struct{}
}

// startFileServer listens on address (host:port, port 0 for any).
func startFileServer(address string) (*fileServer, error) {
	l, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("listening for the file server on %s: %w", address, err)
	}
	s := &fileServer{
		base:     "http://" + l.Addr().String(),
		routes:   map[string]*route{},
		requests: map[string][]request{},
		stop:     make(chan struct{}),
	}
	s.server = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.server.Serve(l) }()
	return s, nil
}

// serveFile makes path answer as the answers say, then with the file's
// content, cut to its first cut bytes if cut is positive. It returns the
// URL a Pod fetches it from.
func (s *fileServer) serveFile(path, file string, cut int, answers ...answer) (string, error) {
	body, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading the file to serve at %s: %w", path, err)
	}
	if cut > 0 {
		body = body[:cut]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes[path] = &route{body: body, answers: answers}
	return s.base + path, nil
}

// received lists the requests of a route so far.
func (s *fileServer) received(path string) []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.requests[path]...)
}

func (s *fileServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rt, ok := s.routes[r.URL.Path]
	if !ok {
		s.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	n := len(s.requests[r.URL.Path])
	next := answer{status: http.StatusOK}
	if n < len(rt.answers) {
		next = rt.answers[n]
	}
	s.requests[r.URL.Path] = append(s.requests[r.URL.Path], request{at: time.Now(), status: next.status})
	if next.hang {
		s.hanging.Add(1)
		defer s.hanging.Done()
	}
	s.mu.Unlock()

	switch {
	case next.hang:
		select {
		case <-r.Context().Done():
		case <-s.stop:
		}
	case next.status != http.StatusOK:
		if next.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(next.retryAfter.Seconds())))
		}
		http.Error(w, http.StatusText(next.status), next.status)
	default:
		w.Header().Set("Content-Length", strconv.Itoa(len(rt.body)))
		_, _ = w.Write(rt.body)
	}
}

// close releases hanging requests and stops the server.
func (s *fileServer) close() {
	close(s.stop)
	s.hanging.Wait()
	_ = s.server.Close()
}
