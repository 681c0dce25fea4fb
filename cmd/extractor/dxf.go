package main

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pybase/extraction-operator/api/podcontract"
)

const (
	// dxfMaxLine bounds a line: DXF values are at most a few hundred bytes
	// (text strings 2049 characters), so a longer line means a broken file.
	dxfMaxLine = 16 << 10
	// dxfMaxSections bounds the section names kept for the summary.
	dxfMaxSections = 16
	// dxfTopTypes is how many entity types the summary lists.
	dxfTopTypes = 16
	// dxfComment is the group code of comments, which may appear anywhere.
	dxfComment = 999
)

// dxfReleases names the AutoCAD releases behind the $ACADVER codes.
var dxfReleases = map[string]string{
	"AC1009": "R12", "AC1012": "R13", "AC1014": "R14", "AC1015": "2000", "AC1018": "2004",
	"AC1021": "2007", "AC1024": "2010", "AC1027": "2013", "AC1032": "2018",
}

// dxfSummary counts the entities of the ENTITIES section by type, as they
// appear (a POLYLINE's VERTEX and SEQEND records count as entities too).
type dxfSummary struct {
	Version            string         `json:"version,omitempty"`
	Release            string         `json:"release,omitempty"`
	Sections           []string       `json:"sections"`
	Entities           int            `json:"entities"`
	EntityTypes        map[string]int `json:"entityTypes"`
	OmittedEntityTypes int            `json:"omittedEntityTypes,omitempty"`
}

type dxfState int

const (
	dxfOutside dxfState = iota // between sections
	dxfNaming                  // after 0/SECTION, waiting for 2/name
	dxfInside                  // inside a section
	dxfDone                    // after 0/EOF; the rest is ignored
)

// dxfInspector checks a DXF file: pairs of a group code and a value, grouped
// into SECTION … ENDSEC blocks, ending with EOF. ASCII DXF writes each code
// and each value on a line of its own; binary DXF (dxf_binary.go) writes
// them in binary after a sentinel. Both give the same pairs, and so the same
// summary.
type dxfInspector struct {
	head      headBuffer // for describing a file that is not DXF
	undecided []byte     // the first bytes, until they show whether the file is binary
	decided   bool
	binary    *dxfBinaryDecoder // nil for ASCII DXF
	partial   []byte            // the current line, until its newline arrives
	line      int               // number of the last complete line
	code      int               // group code waiting for its value
	haveCode  bool
	started   bool // a first 0/SECTION was seen: this is DXF
	state     dxfState
	section   string
	variable  string // the last header variable, whose value may follow
	summary   dxfSummary
	counts    map[string]int
	err       error
}

func newDXFInspector() *dxfInspector {
	return &dxfInspector{head: headBuffer{max: 512}, counts: map[string]int{}, summary: dxfSummary{Sections: []string{}}}
}

func (d *dxfInspector) Write(data []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n := len(data)
	d.head.write(data)
	if !d.decided {
		// The binary sentinel is 22 bytes, which may arrive in pieces.
		d.undecided = append(d.undecided, data...)
		if len(d.undecided) < len(dxfBinarySentinel) && strings.HasPrefix(dxfBinarySentinel, string(d.undecided)) {
			return n, nil
		}
		d.decided, data = true, d.undecided
		if strings.HasPrefix(string(data), dxfBinarySentinel) {
			d.binary = &dxfBinaryDecoder{offset: len(dxfBinarySentinel)}
			data = data[len(dxfBinarySentinel):]
		}
	}
	if d.binary != nil {
		d.err = d.binary.write(data, func(code int, value string) (bool, error) {
			err := d.pair(code, value)
			return d.state != dxfDone, err
		})
		if d.err != nil {
			return 0, d.err
		}
		return n, nil
	}
	for len(data) > 0 && d.state != dxfDone {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			d.partial = append(d.partial, data...)
			if len(d.partial) > dxfMaxLine {
				d.err = d.badLine("line %d is longer than %d bytes", d.line+1, dxfMaxLine)
				return 0, d.err
			}
			break
		}
		d.partial = append(d.partial, data[:i]...)
		data = data[i+1:]
		if d.err = d.processLine(); d.err != nil {
			return 0, d.err
		}
	}
	return n, nil
}

func (d *dxfInspector) processLine() error {
	d.line++
	raw := d.partial
	if d.line == 1 {
		raw = trimBOM(raw)
	}
	text := strings.TrimSuffix(string(raw), "\r")
	d.partial = d.partial[:0]
	if !d.haveCode {
		code, err := strconv.Atoi(strings.TrimSpace(text))
		if err != nil {
			return d.badLine("line %d should be a group code, not %s", d.line, describeText(text))
		}
		d.code, d.haveCode = code, true
		return nil
	}
	d.haveCode = false
	return d.pair(d.code, strings.TrimSpace(text))
}

// badLine is CorruptedFile in a file known to be DXF (by a first SECTION, or
// by the binary sentinel), and InvalidFileType in a file that has not yet
// shown that it is one.
func (d *dxfInspector) badLine(format string, args ...any) *failure {
	if d.started || d.binary != nil {
		return fail(podcontract.CorruptedFile, nil, format, args...)
	}
	f := fail(podcontract.InvalidFileType, nil, format, args...)
	f.message = "the file is not DXF: " + f.message + " (it looks like " + describeContent(d.head.data) + ")"
	return f
}

func (d *dxfInspector) pair(code int, value string) error {
	if code == dxfComment {
		return nil
	}
	if !d.started {
		if code != 0 || value != "SECTION" {
			return d.badLine("it does not start with a SECTION but with group %d, %s", code, describeText(value))
		}
		d.started = true
	}
	switch d.state {
	case dxfOutside:
		switch {
		case code == 0 && value == "SECTION":
			d.state = dxfNaming
		case code == 0 && value == "EOF":
			d.state = dxfDone
		default:
			return fail(podcontract.CorruptedFile, nil, "%s: group %d, %s, outside any section", d.where(), code, describeText(value))
		}
	case dxfNaming:
		if code != 2 {
			return fail(podcontract.CorruptedFile, nil, "%s: a SECTION without a name", d.where())
		}
		d.section, d.state = value, dxfInside
		if len(d.summary.Sections) < dxfMaxSections {
			d.summary.Sections = append(d.summary.Sections, displayName(value))
		}
	case dxfInside:
		return d.pairInSection(code, value)
	}
	return nil
}

func (d *dxfInspector) pairInSection(code int, value string) error {
	if code == 0 {
		switch value {
		case "ENDSEC":
			d.state = dxfOutside
			return nil
		case "SECTION", "EOF":
			return fail(podcontract.CorruptedFile, nil, "%s: %s inside section %s, which has no ENDSEC", d.where(), value, sectionName(d.section))
		}
	}
	switch d.section {
	case "HEADER":
		switch {
		case code == 9:
			d.variable = value
		case code == 1 && d.variable == "$ACADVER":
			d.summary.Version = displayName(value)
			d.summary.Release = dxfReleases[value]
		}
	case "ENTITIES":
		if code == 0 {
			d.summary.Entities++
			countType(d.counts, displayName(value))
		}
	}
	return nil
}

// where names the place of the current pair in messages.
func (d *dxfInspector) where() string {
	if d.binary != nil {
		return fmt.Sprintf("byte %d", d.binary.pairAt)
	}
	return fmt.Sprintf("line %d", d.line)
}

// displayName shows a name from the file as it is when it looks like a name,
// so that a hostile file cannot fill the result with junk.
func displayName(s string) string {
	if isIdentifier(s) {
		return s
	}
	return otherTypes
}

// dxfSections are the sections the DXF reference defines.
var dxfSections = []string{"HEADER", "CLASSES", "TABLES", "BLOCKS", "ENTITIES", "OBJECTS", "THUMBNAILIMAGE", "ACDSDATA"}

// sectionName names a section in a failure's message: by its name when the
// DXF reference defines it, else not at all, since a failure's message
// carries nothing of the file's content.
func sectionName(s string) string {
	if slices.Contains(dxfSections, s) {
		return s
	}
	return "(of another name)"
}

func (d *dxfInspector) finish(int64) (any, error) {
	if d.err != nil {
		return nil, d.err
	}
	if !d.decided && len(d.undecided) > 0 {
		// Too short to tell, and the start of the binary sentinel.
		return nil, fail(podcontract.CorruptedFile, nil, "the file ends inside its header")
	}
	if d.binary != nil && d.state != dxfDone && d.binary.midPair() {
		return nil, fail(podcontract.CorruptedFile, nil, "the binary DXF ends inside the group at byte %d: it is truncated", d.binary.pairAt)
	}
	if len(d.partial) > 0 && d.state != dxfDone {
		if err := d.processLine(); err != nil {
			return nil, err
		}
	}
	switch {
	case !d.decided:
		return nil, fail(podcontract.CorruptedFile, nil, "the file is empty")
	case !d.started && d.haveCode && d.code == 0:
		return nil, fail(podcontract.CorruptedFile, nil, "the DXF ends after its first line")
	case !d.started:
		return nil, d.badLine("it has no SECTION")
	case d.state == dxfDone:
	case d.haveCode:
		return nil, fail(podcontract.CorruptedFile, nil, "the DXF ends with group code %d and no value: it is truncated", d.code)
	case d.state == dxfOutside:
		return nil, fail(podcontract.CorruptedFile, nil, "the DXF has no EOF marker after section %s: it is truncated", sectionName(d.section))
	default:
		return nil, fail(podcontract.CorruptedFile, nil, "the DXF ends inside section %s (%s): it is truncated", sectionName(d.section), d.where())
	}
	d.summary.EntityTypes, d.summary.OmittedEntityTypes = topTypes(d.counts, dxfTopTypes)
	return d.summary, nil
}
