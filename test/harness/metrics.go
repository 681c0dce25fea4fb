package harness

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"time"
)

// metricsClient talks to the operator's metrics endpoint, which serves a
// self-signed certificate.
var metricsClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // self-signed test endpoint
}

// Scrape gets the operator's metrics at url (https://…/metrics) with a
// bearer token, or anonymously when token is empty, and returns the status
// code and the body.
func Scrape(url, token string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := metricsClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}
