package main

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
	"strings"

	"github.com/pybase/extraction-operator/api/podcontract"
)

// dxfBinarySentinel starts every binary DXF file.
const dxfBinarySentinel = "AutoCAD Binary DXF\r\n\x1a\x00"

// dxfBinaryDecoder turns the binary encoding of DXF into the same group code
// and value pairs as ASCII DXF, as the DXF reference describes it ("Binary DXF
// Files"; ezdxf's binary loader reads it the same way): a group code of two
// bytes, little-endian, or in R12 files of one byte (255 announcing a
// two-byte code after it); then the value, whose type the group code
// determines. It is written here because no Go DXF library reads binary DXF
// as a stream: yofu/dxf reads ASCII only, and ixmilia/dxf-go, which reads
// both, loads a whole drawing into typed entities (the summary counts every
// entity type, known or not) and is not served by the Go module proxy.
type dxfBinaryDecoder struct {
	pending   []byte // bytes of an incomplete pair, until the rest arrives
	offset    int    // of pending[0] in the file
	pairAt    int    // offset of the pair being decoded, for messages
	pairs     int
	shortCode bool // R12: one-byte group codes
	done      bool // EOF was read; the rest is ignored
}

// dxfValueKind is how binary DXF encodes the value of a group code.
type dxfValueKind int

const (
	dxfString dxfValueKind = iota // zero-terminated
	dxfDouble                     // 8 bytes, IEEE 754
	dxfInt16
	dxfInt32
	dxfInt64
	dxfBool  // 1 byte
	dxfChunk // a length byte, then that many bytes
)

// dxfBinaryKind is the value type of a group code, by the ranges of the DXF
// reference's "Group Code Value Types".
func dxfBinaryKind(code int) dxfValueKind {
	switch {
	case 10 <= code && code <= 59, 110 <= code && code <= 149, 210 <= code && code <= 239,
		460 <= code && code <= 469, 1010 <= code && code <= 1059:
		return dxfDouble
	case 60 <= code && code <= 79, 170 <= code && code <= 179, 270 <= code && code <= 289,
		370 <= code && code <= 389, 400 <= code && code <= 409, 1060 <= code && code <= 1070:
		return dxfInt16
	case 90 <= code && code <= 99, 420 <= code && code <= 429, 440 <= code && code <= 459, code == 1071:
		return dxfInt32
	case 160 <= code && code <= 169:
		return dxfInt64
	case 290 <= code && code <= 299:
		return dxfBool
	case 310 <= code && code <= 319, code == 1004:
		return dxfChunk
	default:
		return dxfString
	}
}

var dxfFixedSizes = map[dxfValueKind]int{dxfDouble: 8, dxfInt16: 2, dxfInt32: 4, dxfInt64: 8, dxfBool: 1}

// write decodes the pairs that data completes and hands each to pair, until
// pair says that no more are wanted (after EOF); the bytes of a pair still
// incomplete wait for the next write.
func (b *dxfBinaryDecoder) write(data []byte, pair func(code int, value string) (more bool, err error)) error {
	if b.done {
		return nil
	}
	b.pending = append(b.pending, data...)
	consumed := 0
	for consumed < len(b.pending) {
		b.pairAt = b.offset + consumed
		code, value, n, err := b.decode(b.pending[consumed:])
		if err != nil || n == 0 {
			b.keep(consumed)
			return err
		}
		consumed += n
		b.pairs++
		more, err := pair(code, value)
		if err != nil || !more {
			b.done = !more
			b.keep(consumed)
			return err
		}
	}
	b.keep(consumed)
	return nil
}

// keep drops the consumed bytes and keeps the rest for the next write.
func (b *dxfBinaryDecoder) keep(consumed int) {
	b.offset += consumed
	b.pending = append(b.pending[:0], b.pending[consumed:]...)
}

// midPair reports whether the data so far ends inside a pair.
func (b *dxfBinaryDecoder) midPair() bool { return !b.done && len(b.pending) > 0 }

// decode reads the pair at the start of buf and says how many bytes it took,
// or 0 when buf ends before the pair does.
func (b *dxfBinaryDecoder) decode(buf []byte) (code int, value string, n int, err error) {
	if b.pairs == 0 {
		// The first pair is 0/SECTION: "\x00\x00SECTION\x00" with two-byte
		// codes, "\x00SECTION\x00" with one-byte codes.
		if len(buf) < 2 {
			return 0, "", 0, nil
		}
		b.shortCode = buf[1] != 0
	}
	switch {
	case !b.shortCode:
		if len(buf) < 2 {
			return 0, "", 0, nil
		}
		code, n = int(int16(binary.LittleEndian.Uint16(buf))), 2
	case buf[0] == 255:
		if len(buf) < 3 {
			return 0, "", 0, nil
		}
		code, n = int(int16(binary.LittleEndian.Uint16(buf[1:]))), 3
	default:
		code, n = int(buf[0]), 1
	}
	rest := buf[n:]
	switch kind := dxfBinaryKind(code); kind {
	case dxfString:
		end := bytes.IndexByte(rest, 0)
		if end < 0 {
			if len(rest) > dxfMaxLine {
				return 0, "", 0, fail(podcontract.CorruptedFile, nil, "byte %d: group %d has a string longer than %d bytes", b.pairAt, code, dxfMaxLine)
			}
			return 0, "", 0, nil
		}
		return code, strings.TrimSpace(string(rest[:end])), n + end + 1, nil
	case dxfChunk:
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return 0, "", 0, nil
		}
		return code, "", n + 1 + int(rest[0]), nil
	default:
		size := dxfFixedSizes[kind]
		if len(rest) < size {
			return 0, "", 0, nil
		}
		return code, dxfNumber(kind, rest[:size]), n + size, nil
	}
}

// dxfNumber shows a binary number as ASCII DXF would write it.
func dxfNumber(kind dxfValueKind, raw []byte) string {
	switch kind {
	case dxfDouble:
		return strconv.FormatFloat(math.Float64frombits(binary.LittleEndian.Uint64(raw)), 'g', -1, 64)
	case dxfInt16:
		return strconv.Itoa(int(int16(binary.LittleEndian.Uint16(raw))))
	case dxfInt32:
		return strconv.Itoa(int(int32(binary.LittleEndian.Uint32(raw))))
	case dxfInt64:
		return strconv.FormatInt(int64(binary.LittleEndian.Uint64(raw)), 10)
	default:
		return strconv.Itoa(int(raw[0]))
	}
}
