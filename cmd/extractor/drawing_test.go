package main

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	"github.com/pybase/extraction-operator/api/podcontract"
)

func TestDrawingInspector(t *testing.T) {
	png, jpg, pdf := pngFile(t, 40, 30), jpegFile(t, 64, 48), minimalPDF(3)
	tests := []struct {
		name        string
		data        []byte
		want        any
		wantType    string
		wantMessage string
	}{
		{name: "a PNG reports its dimensions", data: png, want: drawingSummary{DrawingType: "png", Width: 40, Height: 30}},
		{name: "a JPEG reports its dimensions", data: jpg, want: drawingSummary{DrawingType: "jpeg", Width: 64, Height: 48}},
		{
			name: "a PDF reports what a PDF job would",
			data: pdf, want: pdfDrawingSummary{DrawingType: "pdf", pdfSummary: pdfSummary{Version: "1.7", Pages: ptr.To(3)}},
		},
		{name: "a truncated PNG is CorruptedFile", data: png[:len(png)-1], wantType: podcontract.CorruptedFile, wantMessage: "IEND"},
		{name: "a truncated JPEG is CorruptedFile", data: jpg[:len(jpg)/2], wantType: podcontract.CorruptedFile, wantMessage: "end-of-image"},
		{name: "a truncated PDF is CorruptedFile", data: pdf[:len(pdf)-10], wantType: podcontract.CorruptedFile, wantMessage: "%%EOF"},
		{
			name:     "a PNG whose header is broken is CorruptedFile",
			data:     append(append([]byte(pngMagic), "\x00\x00\x00\x0dIHDR broken!"...), pngEnd...),
			wantType: podcontract.CorruptedFile, wantMessage: "PNG header is broken",
		},
		{name: "a GIF is InvalidFileType", data: []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), wantType: podcontract.InvalidFileType, wantMessage: "image/gif"},
		{name: "an empty file is CorruptedFile", data: nil, wantType: podcontract.CorruptedFile, wantMessage: "empty"},
		{name: "a file cut inside the PNG magic is CorruptedFile", data: []byte(pngMagic[:4]), wantType: podcontract.CorruptedFile, wantMessage: "inside its header"},
	}
	for _, tt := range tests {
		for _, piece := range pieceSizes {
			t.Run(fmt.Sprintf("%s, in pieces of %d", tt.name, piece), func(t *testing.T) {
				got, err := inspectInPieces(newDrawingInspector(t.Context()), tt.data, piece)
				if tt.wantType != "" {
					wantFailure(t, err, tt.wantType, tt.wantMessage)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(pdfDrawingSummary{})); diff != "" {
					t.Errorf("summary (-want +got):\n%s", diff)
				}
			})
		}
	}
}
