package measure

import (
	"net/http"
	"net/url"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
)

// RequestKey names API requests the way kube-apiserver's
// apiserver_request_total labels them, so the harness's own requests can be
// subtracted from the server's counters key by key.
type RequestKey struct {
	Verb        string `json:"verb"`
	Group       string `json:"group"`
	Resource    string `json:"resource"`
	Subresource string `json:"subresource,omitempty"`
}

func (k RequestKey) String() string {
	s := k.Verb + " " + k.Resource
	if k.Group != "" {
		s += "." + k.Group
	}
	if k.Subresource != "" {
		s += "/" + k.Subresource
	}
	return s
}

// Counts holds request counts by key.
type Counts map[RequestKey]float64

// namespaceSubresources are the subresources of a namespace itself; the API
// server's request parser treats /namespaces/NAME/status as one of them
// rather than as a resource called "status" in namespace NAME.
var namespaceSubresources = map[string]bool{"status": true, "finalize": true}

// requestKeyOf mirrors k8s.io/apiserver's RequestInfoFactory closely enough
// for the requests clients send: it returns ok=false for non-resource paths
// such as /metrics or /version, which the API server counts without a resource.
func requestKeyOf(method string, u *url.URL, contentType string) (RequestKey, bool) {
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	var key RequestKey
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		key.Group = parts[1]
		parts = parts[3:]
	default:
		return RequestKey{}, false
	}
	watchPath := false
	if len(parts) > 0 && parts[0] == "watch" {
		watchPath, parts = true, parts[1:]
	}
	if len(parts) == 0 {
		return RequestKey{}, false // discovery
	}
	if parts[0] == "namespaces" && len(parts) > 1 {
		if len(parts) > 2 && !namespaceSubresources[parts[2]] {
			parts = parts[2:]
		}
	}
	key.Resource = parts[0]
	named := len(parts) > 1
	if len(parts) > 2 {
		key.Subresource = parts[2]
	}
	q := u.Query()
	watch := watchPath || q.Get("watch") == "true" || q.Get("watch") == "1"
	switch method {
	case http.MethodGet, http.MethodHead:
		switch {
		case watch:
			key.Verb = "WATCH"
		case named:
			key.Verb = "GET"
		default:
			key.Verb = "LIST"
		}
	case http.MethodPost:
		key.Verb = "POST"
	case http.MethodPut:
		key.Verb = "PUT"
	case http.MethodPatch:
		key.Verb = "PATCH"
		if strings.HasPrefix(contentType, "application/apply-patch") {
			key.Verb = "APPLY"
		}
	case http.MethodDelete:
		key.Verb = "DELETE"
		if !named {
			key.Verb = "DELETECOLLECTION"
		}
	default:
		key.Verb = method
	}
	return key, true
}

// RequestCounter counts the requests one client of the harness sends, so
// that they can be subtracted from the API server's counters.
type RequestCounter struct {
	mu     sync.Mutex
	counts Counts
}

func NewRequestCounter() *RequestCounter { return &RequestCounter{counts: Counts{}} }

// Snapshot returns a copy of the counts so far.
func (c *RequestCounter) Snapshot() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(Counts, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

func (c *RequestCounter) add(key RequestKey) {
	c.mu.Lock()
	c.counts[key]++
	c.mu.Unlock()
}

// Wrap returns a copy of cfg whose requests are counted.
func (c *RequestCounter) Wrap(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			// Counted when sent: the API server counts every request it
			// answers, failed ones included.
			if key, ok := requestKeyOf(req.Method, req.URL, req.Header.Get("Content-Type")); ok {
				c.add(key)
			}
			return rt.RoundTrip(req)
		})
	})
	return out
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
