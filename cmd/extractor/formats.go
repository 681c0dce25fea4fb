package main

import (
	"bytes"
	"cmp"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/pybase/extraction-operator/api/podcontract"
)

// An inspector reads a file once, front to back, and checks, as far as that
// is cheap, that it is of its format. It reads from a stream rather than a
// file on disk because the Pod's only writable place is a small emptyDir, and
// memory stays bounded whatever the size of the file.
//
// Write fails early with InvalidFileType once the start of the file rules the
// format out, so that a large download that cannot succeed stops. finish is
// called after the last Write with the file's size; it checks what only the
// whole file can tell (truncation, above all) and returns a summary that
// encodes to a flat JSON object.
type inspector interface {
	io.Writer
	finish(size int64) (summary any, err error)
}

// formats are the formats of the ExtractionJob API.
// The context bounds the work an inspector does after the last Write (the
// PDF inspector's, above all).
var formats = map[string]func(ctx context.Context) inspector{
	"pdf":    func(ctx context.Context) inspector { return newPDFInspector(ctx) },
	"dxf":    func(context.Context) inspector { return newDXFInspector() },
	"ifc":    func(context.Context) inspector { return newSTEPInspector(true) },
	"step":   func(context.Context) inspector { return newSTEPInspector(false) },
	"werk24": func(ctx context.Context) inspector { return newDrawingInspector(ctx) },
}

func newInspector(ctx context.Context, format string) (inspector, error) {
	if newFormat, ok := formats[format]; ok {
		return newFormat(ctx), nil
	}
	return nil, fail(podcontract.UnsupportedFormat, nil, "format %q is not one of pdf, dxf, ifc, step, werk24", oneLine(format, 40))
}

// headBuffer keeps the first bytes of a stream.
type headBuffer struct {
	data []byte
	max  int
}

func (h *headBuffer) write(p []byte) {
	if room := h.max - len(h.data); room > 0 {
		h.data = append(h.data, p[:min(room, len(p))]...)
	}
}

func (h *headBuffer) full() bool { return len(h.data) >= h.max }

// tailBuffer keeps the last bytes of a stream.
type tailBuffer struct {
	data []byte
	max  int
}

func (t *tailBuffer) write(p []byte) {
	if len(p) >= t.max {
		t.data = append(t.data[:0], p[len(p)-t.max:]...)
		return
	}
	if drop := len(t.data) + len(p) - t.max; drop > 0 {
		t.data = append(t.data[:0], t.data[drop:]...)
	}
	t.data = append(t.data, p...)
}

// missingMagic explains why a file without the expected magic bytes at its
// start is refused: an empty file or one that ends inside the magic was cut
// short, anything else is some other kind of file.
func missingMagic(format string, head []byte, magic string) *failure {
	switch {
	case len(head) == 0:
		return fail(podcontract.CorruptedFile, nil, "the file is empty")
	case len(head) < len(magic) && strings.HasPrefix(magic, string(head)):
		return fail(podcontract.CorruptedFile, nil, "the file ends inside its header")
	default:
		return fail(podcontract.InvalidFileType, nil, "the file is not %s: it has no %q header (it looks like %s)",
			format, magic, describeContent(head))
	}
}

// describeContent names what a file seems to be, for messages: the most
// common surprise is an HTML error page served with 200 OK.
func describeContent(head []byte) string {
	if len(head) == 0 {
		return "an empty file"
	}
	mediaType, _, _ := strings.Cut(http.DetectContentType(head), ";")
	if mediaType == "application/octet-stream" {
		return "unrecognised binary data"
	}
	return mediaType
}

// maxTypes bounds the distinct entity types tracked, so that a hostile file
// cannot grow the counts without limit; further types count as otherTypes.
const (
	maxTypes   = 4096
	otherTypes = "(other)"
)

// countType adds one of typeName to counts, within maxTypes.
func countType(counts map[string]int, typeName string) {
	if _, seen := counts[typeName]; !seen && len(counts) >= maxTypes {
		typeName = otherTypes
	}
	counts[typeName]++
}

// topTypes keeps the n most frequent types (ties by name, so results are
// stable) and says how many types it left out; it keeps results well below
// the 4 KiB the operator accepts.
func topTypes(counts map[string]int, n int) (top map[string]int, omitted int) {
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(counts[b], counts[a]), strings.Compare(a, b))
	})
	top = make(map[string]int, min(n, len(names)))
	for _, name := range names[:min(n, len(names))] {
		top[name] = counts[name]
	}
	return top, len(names) - len(top)
}

// isIdentifier reports whether s can be shown as an entity type or section
// name as it is: short, and of the characters these formats use for names.
func isIdentifier(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '$' || c == '-' || c == '.' || c == '*') {
			return false
		}
	}
	return true
}

// trimBOM drops a UTF-8 byte order mark, which text formats written on
// Windows often start with.
func trimBOM(data []byte) []byte {
	return bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
}
