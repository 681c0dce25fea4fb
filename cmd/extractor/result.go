package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/pybase/extraction-operator/api/podcontract"
)

// encodeResult builds the success summary: the fields every format has, and
// the format's own summary flattened beside them.
func encodeResult(format string, size int64, sha256 []byte, summary any) ([]byte, error) {
	fields := map[string]any{}
	if summary != nil {
		raw, err := podcontract.MarshalResult(summary)
		if err != nil {
			return nil, fail(podcontract.InternalError, err, "encoding the %s summary: %v", format, err)
		}
		var summaryFields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &summaryFields); err != nil {
			return nil, fail(podcontract.InternalError, err, "the %s summary is not a JSON object: %v", format, err)
		}
		for key, value := range summaryFields {
			fields[key] = value
		}
	}
	fields["format"], fields["size"], fields["sha256"] = format, size, hex.EncodeToString(sha256)
	// The summaries are bounded by construction; the contract's check guards
	// the bound.
	result, err := podcontract.MarshalResult(fields)
	if err != nil {
		return nil, fail(podcontract.InternalError, err, "encoding the result: %v", err)
	}
	return result, nil
}

// writeTerminationMessage writes the message where the kubelet reads it, or
// to stdout for "-", which is handy when running the extractor by hand.
func writeTerminationMessage(path string, message []byte, stdout io.Writer) error {
	if path == "-" {
		_, err := fmt.Fprintf(stdout, "%s\n", bytes.TrimSuffix(message, []byte("\n")))
		return err
	}
	if err := os.WriteFile(path, message, 0o644); err != nil {
		return fmt.Errorf("writing the termination message: %w", err)
	}
	return nil
}
