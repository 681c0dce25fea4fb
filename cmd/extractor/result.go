package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// maxResultBytes is the largest result the operator keeps in status.
const maxResultBytes = 4096

// encodeResult builds the success summary: the fields every format has, and
// the format's own summary flattened beside them.
func encodeResult(format string, size int64, sha256 []byte, summary any) ([]byte, error) {
	fields := map[string]json.RawMessage{}
	if summary != nil {
		raw, err := marshal(summary)
		if err != nil {
			return nil, fail(typeInternal, err, "encoding the %s summary", format)
		}
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, fail(typeInternal, err, "the %s summary is not a JSON object", format)
		}
	}
	for key, value := range map[string]any{"format": format, "size": size, "sha256": hex.EncodeToString(sha256)} {
		raw, err := marshal(value)
		if err != nil {
			return nil, fail(typeInternal, err, "encoding %s", key)
		}
		fields[key] = raw
	}
	result, err := marshal(fields)
	if err != nil {
		return nil, fail(typeInternal, err, "encoding the result")
	}
	// The summaries are bounded by construction; this guards the bound.
	if len(result) > maxResultBytes {
		return nil, fail(typeInternal, nil, "the result is %d bytes, more than the %d the operator keeps", len(result), maxResultBytes)
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

// marshal is json.Marshal without HTML escaping: names from files are shown
// as they are, and escaping would only make them longer.
func marshal(v any) ([]byte, error) {
	var out bytes.Buffer
	encoder := json.NewEncoder(&out)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}
