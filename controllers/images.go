package controllers

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// ExtractorImages chooses the extractor image by format. It is a flag.Value:
// "--extractor-image=pdf=registry/pdf:1" sets one format's image and
// "--extractor-image=registry/extractor:1" the default for all the others.
type ExtractorImages struct {
	Default  string
	ByFormat map[ejv1.Format]string
}

// Set parses one --extractor-image flag.
func (i *ExtractorImages) Set(value string) error {
	format, image, perFormat := strings.Cut(value, "=")
	if !perFormat {
		if value == "" {
			return fmt.Errorf("--extractor-image needs an image, or FORMAT=IMAGE")
		}
		i.Default = value
		return nil
	}
	if !slices.Contains(ejv1.Formats, ejv1.Format(format)) {
		return fmt.Errorf("--extractor-image: unknown format %q, want one of %v", format, ejv1.Formats)
	}
	if image == "" {
		return fmt.Errorf("--extractor-image: format %q needs an image", format)
	}
	if i.ByFormat == nil {
		i.ByFormat = map[ejv1.Format]string{}
	}
	i.ByFormat[ejv1.Format(format)] = image
	return nil
}

// String lists the configured images in flag syntax.
func (i *ExtractorImages) String() string {
	if i == nil {
		return ""
	}
	var parts []string
	if i.Default != "" {
		parts = append(parts, i.Default)
	}
	for format, image := range i.ByFormat {
		parts = append(parts, string(format)+"="+image)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// For returns the image for a format, or "" when none is configured.
func (i *ExtractorImages) For(format ejv1.Format) string {
	if image, ok := i.ByFormat[format]; ok {
		return image
	}
	return i.Default
}
