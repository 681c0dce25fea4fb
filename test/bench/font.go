package main

import (
	_ "embed"
	"image"
	"image/color"
	"strings"
	"unicode/utf8"
)

// The chart writes its labels with this 5×7 bitmap font, so that it needs
// nothing beyond the standard library: font5x7.txt holds each glyph as its
// character on one line followed by seven rows of '#' and '.'.
//
//go:embed font5x7.txt
var fontData string

const glyphW, glyphH = 5, 7

var glyphs = parseFont(fontData)

func parseFont(data string) map[rune][glyphH]string {
	lines := strings.Split(strings.TrimSpace(data), "\n")
	out := map[rune][glyphH]string{}
	for i := 0; i+glyphH < len(lines); i += glyphH + 1 {
		r, _ := utf8.DecodeRuneInString(lines[i])
		var g [glyphH]string
		copy(g[:], lines[i+1:i+1+glyphH])
		out[r] = g
	}
	return out
}

// drawText draws s with its top-left corner at (x, y), each font pixel
// scale×scale screen pixels; letters print as capitals. It returns the width drawn.
func drawText(img *image.RGBA, x, y, scale int, c color.Color, s string) int {
	start := x
	for _, r := range strings.ToUpper(s) {
		g, ok := glyphs[r]
		if ok {
			for row, bits := range g {
				for col, bit := range bits {
					if bit == '#' {
						fillRect(img, x+col*scale, y+row*scale, scale, scale, c)
					}
				}
			}
		}
		x += (glyphW + 1) * scale
	}
	return x - start
}

// textWidth is the width drawText would draw.
func textWidth(s string, scale int) int { return utf8.RuneCountInString(s) * (glyphW + 1) * scale }

func fillRect(img *image.RGBA, x, y, w, h int, c color.Color) {
	for yy := y; yy < y+h; yy++ {
		for xx := x; xx < x+w; xx++ {
			img.Set(xx, yy, c)
		}
	}
}
