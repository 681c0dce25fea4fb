package main

import (
	"bytes"
	"regexp"
	"strconv"
)

const (
	pdfMagic = "%PDF-"
	// pdfHeaderWindow is where the header may be: PDF readers accept up to
	// 1 KiB of junk before it (mail gateways prepend some), so this does too.
	pdfHeaderWindow = 1024
	// pdfTrailerWindow is where the last %%EOF must be. Readers look in the
	// last 1 KiB; twice that leaves room for trailing padding.
	pdfTrailerWindow = 2048
)

// pdfWhite is PDF's white space; pdfNameChar a byte that continues a name.
const (
	pdfWhite    = `\x00\t\n\f\r `
	pdfNameChar = `[^\x00\t\n\f\r ()<>\[\]{}/%]`
)

var (
	pdfVersion = regexp.MustCompile(`%PDF-(\d+\.\d+)`)
	// A page object is "/Type /Page"; the name must end there, so that the
	// "/Type /Pages" of the page tree's nodes does not count. The name run is
	// matched and checked afterwards because Go's regexps have no lookahead.
	pdfPageType = regexp.MustCompile(`/Type[` + pdfWhite + `]{0,16}/Page` + pdfNameChar + `*`)
	// Pages inside compressed object streams cannot be counted cheaply.
	pdfObjectStream = regexp.MustCompile(`/ObjStm`)
	pdfEncrypt      = regexp.MustCompile(`/Encrypt`)
	pdfStartXref    = regexp.MustCompile(`startxref[` + pdfWhite + `]+(\d{1,20})[` + pdfWhite + `]*$`)
)

// pdfSummary is what a PDF shows without parsing it: pages counts the
// uncompressed page objects, so with objectStreams true it may count too few.
type pdfSummary struct {
	Version       string `json:"version,omitempty"`
	Pages         int    `json:"pages"`
	Encrypted     bool   `json:"encrypted,omitempty"`
	ObjectStreams bool   `json:"objectStreams,omitempty"`
}

type pdfInspector struct {
	head                          headBuffer
	tail                          tailBuffer
	headerAt                      int // offset of %PDF- in head, or -1 while unknown
	pages, objectStreams, encrypt streamCounter
}

func newPDFInspector() *pdfInspector {
	return &pdfInspector{
		head:     headBuffer{max: pdfHeaderWindow},
		tail:     tailBuffer{max: pdfTrailerWindow},
		headerAt: -1,
		pages: streamCounter{re: pdfPageType, overlap: 64, accept: func(m []byte) bool {
			return bytes.HasSuffix(m, []byte("/Page"))
		}},
		objectStreams: streamCounter{re: pdfObjectStream, overlap: 16},
		encrypt:       streamCounter{re: pdfEncrypt, overlap: 16},
	}
}

func (p *pdfInspector) Write(data []byte) (int, error) {
	// The head keeps growing after the header was found: the version follows it.
	p.head.write(data)
	if p.headerAt < 0 {
		p.headerAt = bytes.Index(p.head.data, []byte(pdfMagic))
		if p.headerAt < 0 && p.head.full() {
			return 0, missingMagic("a PDF", p.head.data, pdfMagic)
		}
	}
	p.tail.write(data)
	p.pages.write(data)
	p.objectStreams.write(data)
	p.encrypt.write(data)
	return len(data), nil
}

func (p *pdfInspector) finish(size int64) (any, error) {
	if p.headerAt < 0 {
		return nil, missingMagic("a PDF", p.head.data, pdfMagic)
	}
	for _, c := range []*streamCounter{&p.pages, &p.objectStreams, &p.encrypt} {
		c.flush(' ')
	}

	// The trailer is written last, so a file cut short has lost it.
	eof := bytes.LastIndex(p.tail.data, []byte("%%EOF"))
	if eof < 0 {
		return nil, fail(typeCorruptedFile, nil, "the PDF has no %%%%EOF marker in its last %d bytes: it is truncated", pdfTrailerWindow)
	}
	m := pdfStartXref.FindSubmatch(p.tail.data[:eof])
	if m == nil {
		return nil, fail(typeCorruptedFile, nil, "the PDF has no startxref before its final %%%%EOF: its trailer is broken")
	}
	if offset, err := strconv.ParseInt(string(m[1]), 10, 64); err != nil || offset >= size {
		return nil, fail(typeCorruptedFile, nil, "the PDF's startxref points to byte %s of a %d-byte file", m[1], size)
	}

	summary := pdfSummary{
		Pages:         p.pages.count,
		Encrypted:     p.encrypt.count > 0,
		ObjectStreams: p.objectStreams.count > 0,
	}
	if v := pdfVersion.FindSubmatch(p.head.data[p.headerAt:]); v != nil {
		summary.Version = string(v[1])
	}
	return summary, nil
}
