package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	"github.com/pybase/extraction-operator/api/podcontract"
)

func TestEncodeResult(t *testing.T) {
	t.Run("the common fields and the format's summary make one flat object", func(t *testing.T) {
		raw, err := encodeResult("pdf", 1234, []byte{0xab, 0xcd}, pdfSummary{Version: "1.7", Pages: ptr.To(2)})
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"format": "pdf", "size": 1234.0, "sha256": "abcd", "version": "1.7", "pages": 2.0}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %s", raw)
		}
	})
	t.Run("names are not HTML-escaped, which would only lengthen them", func(t *testing.T) {
		raw, _ := encodeResult("step", 1, nil, stepSummary{Schema: "A<B>&C", EntityTypes: map[string]int{}})
		if !strings.Contains(string(raw), `"A<B>&C"`) {
			t.Errorf("got %s", raw)
		}
	})
	t.Run("the largest summaries the inspectors can make fit in 4 KiB", func(t *testing.T) {
		long := strings.Repeat("X", 64)
		types := map[string]int{}
		for i := range dxfTopTypes {
			types[long[:60]+string(rune('A'+i))+"___"] = 1 << 40
		}
		sections := make([]string, dxfMaxSections)
		for i := range sections {
			sections[i] = long
		}
		raw, err := encodeResult("dxf", 1<<40, make([]byte, 32), dxfSummary{
			Version: long, Release: "2018", Sections: sections, Entities: 1 << 40, EntityTypes: types, OmittedEntityTypes: maxTypes,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) > podcontract.MaxResultBytes {
			t.Errorf("%d bytes", len(raw))
		}
	})
	t.Run("a result over 4 KiB is refused as an InternalError", func(t *testing.T) {
		_, err := encodeResult("step", 1, nil, stepSummary{Schema: strings.Repeat("x", 5000)})
		wantFailure(t, err, podcontract.InternalError, "more than the 4096")
	})
}
