package main

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"strings"

	"github.com/pybase/extraction-operator/api/podcontract"
)

const (
	pngMagic  = "\x89PNG\r\n\x1a\n"
	jpegMagic = "\xFF\xD8\xFF"
	// pngEnd is the IEND chunk every PNG ends with: length 0, type, CRC.
	pngEnd = "\x00\x00\x00\x00IEND\xAE\x42\x60\x82"
	// jpegEnd is the end-of-image marker. Some cameras append data after it,
	// so it is looked for near the end rather than at the very end.
	jpegEnd = "\xFF\xD9"
	// drawingHeadMax holds an image's header: a JPEG's size comes after its
	// metadata segments, which may reach some tens of KiB.
	drawingHeadMax = 256 << 10
	drawingTailMax = 1024
	// drawingMagicLen is enough bytes to tell the three formats apart.
	drawingMagicLen = len(pngMagic)
)

// drawingSummary describes a Werk24 drawing: an image, or a PDF with the
// PDF's own summary.
type drawingSummary struct {
	DrawingType string `json:"drawingType"`
	Width       int    `json:"width,omitempty"`
	Height      int    `json:"height,omitempty"`
}

type pdfDrawingSummary struct {
	DrawingType string `json:"drawingType"`
	pdfSummary
}

// drawingInspector accepts what Werk24 reads: PNG, JPEG or PDF, told apart
// by their magic bytes.
type drawingInspector struct {
	ctx  context.Context // for the PDF inspector
	head headBuffer
	tail tailBuffer
	kind string // "png", "jpeg" or "pdf" once known
	pdf  *pdfInspector
}

func newDrawingInspector(ctx context.Context) *drawingInspector {
	return &drawingInspector{ctx: ctx, head: headBuffer{max: drawingHeadMax}, tail: tailBuffer{max: drawingTailMax}}
}

// Close releases the PDF inspector's scratch file, if there is one.
func (d *drawingInspector) Close() error {
	if d.pdf == nil {
		return nil
	}
	return d.pdf.Close()
}

func (d *drawingInspector) Write(data []byte) (int, error) {
	if d.kind == "pdf" {
		return d.pdf.Write(data)
	}
	d.head.write(data)
	d.tail.write(data)
	if d.kind == "" && len(d.head.data) >= drawingMagicLen {
		if err := d.decide(); err != nil {
			return 0, err
		}
	}
	return len(data), nil
}

// decide names the kind of drawing from its first bytes.
func (d *drawingInspector) decide() error {
	head := d.head.data
	switch {
	case bytes.HasPrefix(head, []byte(pngMagic)):
		d.kind = "png"
	case bytes.HasPrefix(head, []byte(jpegMagic)):
		d.kind = "jpeg"
	case bytes.HasPrefix(head, []byte(pdfMagic)):
		d.kind = "pdf"
		d.pdf = newPDFInspector(d.ctx)
		// The PDF inspector has to see the file from its first byte.
		if _, err := d.pdf.Write(head); err != nil {
			return err
		}
	default:
		for _, magic := range []string{pngMagic, jpegMagic, pdfMagic} {
			if len(head) < len(magic) && len(head) > 0 && magic[:len(head)] == string(head) {
				return fail(podcontract.CorruptedFile, nil, "the file ends inside its header")
			}
		}
		if len(head) == 0 {
			return fail(podcontract.CorruptedFile, nil, "the file is empty")
		}
		return fail(podcontract.InvalidFileType, nil, "a Werk24 drawing must be a PNG, JPEG or PDF, but the file looks like %s", describeContent(head))
	}
	return nil
}

func (d *drawingInspector) finish(size int64) (any, error) {
	if d.kind == "" {
		if err := d.decide(); err != nil {
			return nil, err
		}
	}
	switch d.kind {
	case "pdf":
		summary, err := d.pdf.finish(size)
		if err != nil {
			return nil, err
		}
		return pdfDrawingSummary{DrawingType: "pdf", pdfSummary: summary.(pdfSummary)}, nil
	case "png":
		if !bytes.HasSuffix(d.tail.data, []byte(pngEnd)) {
			return nil, fail(podcontract.CorruptedFile, nil, "the PNG does not end with an IEND chunk: it is truncated")
		}
		return d.imageSummary(png.DecodeConfig)
	default:
		if !bytes.Contains(d.tail.data, []byte(jpegEnd)) {
			return nil, fail(podcontract.CorruptedFile, nil, "the JPEG has no end-of-image marker near its end: it is truncated")
		}
		return d.imageSummary(jpeg.DecodeConfig)
	}
}

// imageSummary reads the image's size from its header. A header that does
// not fit in the kept head of a larger file only costs the size; within a
// file that was read whole, a broken header is a broken file.
func (d *drawingInspector) imageSummary(decodeConfig func(io.Reader) (image.Config, error)) (any, error) {
	summary := drawingSummary{DrawingType: d.kind}
	config, err := decodeConfig(bytes.NewReader(d.head.data))
	switch {
	case err == nil:
		summary.Width, summary.Height = config.Width, config.Height
	case !d.head.full():
		return nil, fail(podcontract.CorruptedFile, err, "the %s header is broken: it cannot be decoded", strings.ToUpper(d.kind))
	}
	return summary, nil
}
