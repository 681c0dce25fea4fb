package controllers

import (
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/pybase/extraction-operator/api/podcontract"
)

// cleanText bounds any text the operator copies from a Pod or an error into
// status, as the Pod contract does with a failure's message.
func cleanText(s string) string {
	return podcontract.Sanitize(s, podcontract.MaxMessageBytes)
}

// parseResult reads a successful extractor's result under the Pod contract
// into the form status.result holds. An empty message is no result and no
// error.
func parseResult(raw string) (*runtime.RawExtension, error) {
	result, err := podcontract.ParseResult(raw)
	if err != nil || result == nil {
		return nil, err
	}
	return &runtime.RawExtension{Raw: result}, nil
}
