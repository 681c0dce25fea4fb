package main

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/pybase/extraction-operator/api/podcontract"
)

func TestTopTypes(t *testing.T) {
	t.Run("the most frequent types are kept, ties broken by name, and the rest counted", func(t *testing.T) {
		top, omitted := topTypes(map[string]int{"A": 1, "B": 5, "C": 3, "D": 3, "E": 1}, 3)
		if want := map[string]int{"B": 5, "C": 3, "D": 3}; !reflect.DeepEqual(top, want) || omitted != 2 {
			t.Errorf("got %v and %d omitted", top, omitted)
		}
	})
	t.Run("no types give an empty map, which encodes as {}", func(t *testing.T) {
		top, omitted := topTypes(map[string]int{}, 3)
		if top == nil || len(top) != 0 || omitted != 0 {
			t.Errorf("got %#v and %d omitted", top, omitted)
		}
	})
	t.Run("past maxTypes distinct types, new ones count as (other)", func(t *testing.T) {
		counts := map[string]int{}
		for i := range maxTypes + 10 {
			countType(counts, fmt.Sprint("T", i))
		}
		if len(counts) != maxTypes+1 || counts[otherTypes] != 10 {
			t.Errorf("%d types, %d other", len(counts), counts[otherTypes])
		}
	})
}

func TestTailBuffer(t *testing.T) {
	for _, piece := range []int{1, 3, 10, 100} {
		t.Run(fmt.Sprintf("the last bytes are kept when written in pieces of %d", piece), func(t *testing.T) {
			data := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
			tail := tailBuffer{max: 8}
			for rest := data; len(rest) > 0; rest = rest[min(piece, len(rest)):] {
				tail.write(rest[:min(piece, len(rest))])
			}
			if string(tail.data) != "stuvwxyz" {
				t.Errorf("got %q", tail.data)
			}
		})
	}
}

func TestNewInspector(t *testing.T) {
	for _, format := range []string{"pdf", "dxf", "ifc", "step", "werk24"} {
		t.Run(format+" is a known format", func(t *testing.T) {
			if _, err := newInspector(t.Context(), format); err != nil {
				t.Error(err)
			}
		})
	}
	t.Run("an unknown format is UnsupportedFormat", func(t *testing.T) {
		_, err := newInspector(t.Context(), "PDF")
		wantFailure(t, err, podcontract.UnsupportedFormat, `"PDF"`)
	})
}
